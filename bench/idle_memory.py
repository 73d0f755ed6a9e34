"""Web memory with N idle clients subscribed to `jobs`: Agentdeck's web process against
the floor (bench/floor_server.py), in one run.

    python -m bench.idle_memory [--quick]

Both servers as in bench/broadcast.py; the clients connect (Agentdeck's subscribe to
`jobs`), then nothing is published. The figure is the resident memory of the web
process in total (gunicorn's master and its worker) once every client is in.
"""

from __future__ import annotations

import argparse
import time

from bench.broadcast import Clients, Server, agentdeck_server, floor_server
from bench.report import Figure, table

MB = 1024 * 1024
LIMIT_MB = 250


def idle_rss(server: Server, n: int) -> tuple[float, float]:
    """(RSS before the clients, RSS with them), in MB."""
    before = server.rss() / MB
    clients = Clients(server, n)
    try:
        time.sleep(2)  # let the last handshakes' garbage go
        return before, server.rss() / MB
    finally:
        clients.close()


def figures(quick: bool) -> list[Figure]:
    n = 500 if quick else 5_000
    with agentdeck_server() as ours, floor_server() as floor:
        base_before, base = idle_rss(floor, n)
        mine_before, mine = idle_rss(ours, n)
    per_client = (mine - mine_before) * 1024 / n
    print(
        f"idle N={n:,}: agentdeck {mine_before:.0f} -> {mine:.0f} MB"
        f" ({per_client:.1f} KB a client), floor {base_before:.0f} -> {base:.0f} MB",
        flush=True,
    )
    return [
        Figure(
            f"web RSS with {n:,} idle clients on jobs",
            mine,
            "MB",
            base,
            "floor: asyncio websockets",
            f"< {LIMIT_MB} MB" if not quick else "",
            mine < LIMIT_MB if not quick else None,
        ),
        Figure(f"web RSS per idle client (N={n:,})", per_client, "KB"),
    ]


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    print(table(figures(ap.parse_args().quick)))
