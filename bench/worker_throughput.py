"""Worker throughput on a no-op task: bare Celery vs. Celery with Agentdeck's receivers.

    python -m bench.worker_throughput [--tasks 10000] [--rounds 3] [--concurrency 2]

(`python -m bench` runs it through `figures`: 16 rounds of 3,000 tasks.)

Each round fills the queue with N no-op tasks, starts a worker (bare, then
with `import workers.monitoring`, alternating in the same run) and times
the drain: from the first message taken to an empty queue with nothing
unacked. Worker start-up is not timed. A round is a pair of drains run
back to back (bare first in odd rounds, second in even ones); the ratio is
the median of the rounds' ratios, since this machine's speed drifts by
±10% between minutes. Prints tasks/s per drain, the medians and the ratio;
the target is a cost under 10% (exit status 1 otherwise).

Uses REDIS_URL (default redis://127.0.0.1:6379/0) with its own queue and key
prefix, and deletes only those keys.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
import redis

from bench.report import Figure

ROOT = Path(__file__).resolve().parent.parent
PREFIX = "agentdeck-bench:"
QUEUE = "agentdeck-bench"


MODE = "1"


def _env(monitor: bool) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    env["AGENTDECK_KEY_PREFIX"] = PREFIX
    env["BENCH_MONITOR"] = MODE if monitor else "0"
    return env


def _clean(r: redis.Redis) -> None:
    keys = list(r.scan_iter(match=f"{PREFIX}*", count=1000))
    for i in range(0, len(keys), 1000):
        r.delete(*keys[i : i + 1000])
    r.delete(QUEUE, "unacked", "unacked_index", "unacked_mutex")


def _fill(n: int, monitor: bool) -> None:
    code = (
        "from bench.noop_app import noop\n"
        f"for _ in range({n}): noop.apply_async()\n"
        "import workers.publisher as p\n"
        "if p._publisher: p._publisher.flush(30)\n"
    )
    subprocess.run([sys.executable, "-c", code], env=_env(monitor), check=True, cwd=ROOT)


def _cpu(proc: psutil.Process) -> tuple[float, float]:
    """CPU seconds so far of the worker's main process, and of its pool processes."""
    main, pool = 0.0, 0.0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            t = p.cpu_times()
        except psutil.Error:
            continue
        if p.pid == proc.pid:
            main = t.user + t.system
        else:
            pool += t.user + t.system
    return main, pool


def _redis_cpu(r: redis.Redis) -> float:
    info = r.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def _drain(
    r: redis.Redis, n: int, args: argparse.Namespace, monitor: bool
) -> tuple[float, float, float, float]:
    """(wall seconds, CPU seconds of the worker's main process, of its pool, of Redis)."""
    cmd = [
        sys.executable, "-m", "celery", "-A", "bench.noop_app", "worker",
        "-c", str(args.concurrency), "-P", args.pool, "-Q", QUEUE, "--loglevel=WARNING",
        "--without-gossip", "--without-mingle", "--without-heartbeat", "-n", "bench@%h",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, env=_env(monitor), cwd=ROOT, stdout=subprocess.DEVNULL)
    ps = psutil.Process(proc.pid)
    try:
        deadline = time.monotonic() + 60
        while r.llen(QUEUE) >= n:  # the worker is starting
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("the worker did not start")
            time.sleep(0.002)
        t0, c0, rc0 = time.perf_counter(), _cpu(ps), _redis_cpu(r)
        while r.llen(QUEUE) or r.hlen("unacked"):
            if time.monotonic() > deadline + 600:
                raise RuntimeError("the queue did not drain")
            time.sleep(0.005)
        wall, c1 = time.perf_counter() - t0, _cpu(ps)
        return wall, c1[0] - c0[0], c1[1] - c0[1], _redis_cpu(r) - rc0
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--tasks", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--concurrency", type=int, default=2)
    ap.add_argument("--pool", default="prefork")
    ap.add_argument("--prefetch", type=int, default=4, help="worker_prefetch_multiplier")
    ap.add_argument(
        "--celery-events",
        action="store_true",
        help="measure Celery's own task events (-E, what Flower needs) instead of"
        " Agentdeck, for comparison",
    )
    return ap


@dataclass
class Rounds:
    rates: dict[str, list[float]]  # tasks/s per drain, "bare" and "agentdeck"
    cpu: dict[str, list[float]]  # µs of CPU per task per drain

    @property
    def ratios(self) -> list[float]:
        return [
            ours / bare
            for bare, ours in zip(self.rates["bare"], self.rates["agentdeck"], strict=True)
        ]


def run(args: argparse.Namespace) -> Rounds:
    """Every round's pair of drains, printed as they go."""
    global MODE
    MODE = "celery-events" if args.celery_events else "1"
    os.environ["BENCH_PREFETCH"] = str(args.prefetch)
    r = redis.Redis.from_url(os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0")
    rounds = Rounds({"bare": [], "agentdeck": []}, {"bare": [], "agentdeck": []})
    n = args.tasks
    measured = "Celery's own events (-E)" if args.celery_events else "import workers.monitoring"
    print(
        f"{n} no-op tasks, pool {args.pool} x{args.concurrency}, prefetch x{args.prefetch},"
        f" {args.rounds} rounds; with: {measured}"
    )
    try:
        for i in range(args.rounds):
            # Each round is a pair, run back to back; the order alternates so that a
            # machine slowing down or speeding up over the run favours neither side.
            for label in ("bare", "agentdeck") if i % 2 == 0 else ("agentdeck", "bare"):
                monitor = label == "agentdeck"
                _clean(r)
                _fill(n, monitor)
                wall, main_cpu, pool_cpu, redis_cpu = _drain(r, n, args, monitor)
                rounds.rates[label].append(n / wall)
                rounds.cpu[label].append((main_cpu + pool_cpu + redis_cpu) / n * 1e6)
                print(
                    f"round {i + 1} {label:>9}: {n / wall:7.0f} tasks/s, CPU per task: "
                    f"worker main {main_cpu / n * 1e6:5.0f} us + pool {pool_cpu / n * 1e6:4.0f} us"
                    f" + Redis {redis_cpu / n * 1e6:4.0f} us",
                    flush=True,
                )
    finally:
        _clean(r)
    return rounds


def figures(quick: bool) -> list[Figure]:
    """The median of the rounds' throughput ratios (≥ 16 rounds; quick: 4 short ones)."""
    rounds_n, tasks = (4, 500) if quick else (16, 3000)
    args = _parser().parse_args(["--rounds", str(rounds_n), "--tasks", str(tasks)])
    rounds = run(args)
    ratio = statistics.median(rounds.ratios)
    bare = statistics.median(rounds.rates["bare"])
    ours = statistics.median(rounds.rates["agentdeck"])
    return [
        Figure(
            f"worker throughput, no-op tasks: median ratio of {rounds_n} rounds",
            ratio,
            "×",
            1.0,
            f"bare Celery, {bare:.0f} tasks/s (Agentdeck {ours:.0f})",
            "≥ 0.95",
            ratio >= 0.95,
        )
    ]


def main() -> int:
    args = _parser().parse_args()
    rounds = run(args)
    rates, cpu = rounds.rates, rounds.cpu
    pairs = rounds.ratios
    ratio = statistics.median(pairs)
    bare, ours = statistics.median(rates["bare"]), statistics.median(rates["agentdeck"])
    cbare, cours = statistics.median(cpu["bare"]), statistics.median(cpu["agentdeck"])
    print(f"median bare Celery:  {bare:7.0f} tasks/s, {cbare:5.0f} us CPU per task")
    print(f"median with it:      {ours:7.0f} tasks/s, {cours:5.0f} us CPU per task")
    print("ratio per round: " + " ".join(f"{p:.3f}" for p in pairs))
    print(f"throughput ratio (median of rounds): {ratio:.3f} (cost {100 * (1 - ratio):.1f}%)")
    print(f"CPU per task ratio: {cours / cbare:.3f}")
    return 0 if ratio > 0.9 else 1


if __name__ == "__main__":
    raise SystemExit(main())
