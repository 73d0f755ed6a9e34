"""`python -m bench [--quick] [--only NAME ...]`: every benchmark, one summary.

Runs each suite below (each measures its figures and their baselines in the
same run), prints the table and writes it, with the machine, the date and the
command, at the top of `bench/RESULTS.md` (between the summary markers; the
history below them is kept as it is).
"""

from __future__ import annotations

import argparse
import importlib
import os
import shlex
import sys
import time
from pathlib import Path

from bench.report import Figure, machine, now, table

# In the order they run: the cheap ones first, so a broken set-up fails early.
SUITES = [
    "e2e_latency",
    "submission",
    "broadcast",
    "streaming",
    "recorder",
    "idle_memory",
    "worker_throughput",
    "replicated_publish",
]
RESULTS = Path(__file__).with_name("RESULTS.md")
BEGIN = "<!-- summary: begin (written by python -m bench) -->"
END = "<!-- summary: end -->"


def write_summary(text: str, path: Path = RESULTS) -> None:
    old = path.read_text() if path.exists() else "# Benchmark results\n"
    if BEGIN in old and END in old:
        head, rest = old.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
    else:  # first summary: after the title and its paragraph
        title, _, body = old.partition("\n\n")
        head, tail = title + "\n\n", "\n\n" + body
    path.write_text(head + BEGIN + "\n" + text.strip() + "\n" + END + tail)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    ap.add_argument("--quick", action="store_true", help="short runs of every path")
    ap.add_argument("--only", nargs="*", choices=SUITES, help="run only these suites")
    ap.add_argument("--no-write", action="store_true", help="print, do not touch RESULTS.md")
    args = ap.parse_args(argv)
    chosen = args.only or SUITES
    figures: list[Figure] = []
    failed: list[str] = []
    started = time.monotonic()
    for name in chosen:
        module = importlib.import_module(f"bench.{name}")
        print(f"\n==> {name}", flush=True)
        environ = dict(os.environ)
        try:
            got = module.figures(args.quick)
        except Exception as exc:  # one broken suite must not hide the others' figures
            print(f"{name} failed: {exc!r}", file=sys.stderr)
            failed.append(name)
            continue
        finally:  # a suite that pointed REDIS_URL at its own, stopped, server leaves no trace
            os.environ.clear()
            os.environ.update(environ)
        figures.extend(got)
        print(table(got), flush=True)
    command = "python -m bench " + shlex.join(argv if argv is not None else sys.argv[1:])
    summary = "\n".join(
        [
            "## Summary of the latest run",
            "",
            f"`{command.strip()}` on {machine()}, {now()}, "
            f"{(time.monotonic() - started) / 60:.0f} min"
            + (f"; failed: {', '.join(failed)}" if failed else "")
            + ".",
            "",
            table(figures),
        ]
    )
    print("\n" + summary)
    if not args.no_write and not args.only:
        write_summary(summary)
    return 1 if failed or any(f.ok is False for f in figures) else 0


if __name__ == "__main__":
    raise SystemExit(main())
