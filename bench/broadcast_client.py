"""Many listening WebSocket clients in one asyncio process, for bench/broadcast.py.

    python -m bench.broadcast_client URL N [--subscribe] [--token T] [--deflate]

Opens N connections (in batches, so the server's backlog is not flooded); with
`--subscribe` each sends Agentdeck's subscribe op for `jobs` and waits for its
`subscribed`. Prints `ready` once all are in; then each line read from stdin
(`report`) is answered with one JSON line: per-client counts of envelopes
received, and how many clients saw one out of order. Envelopes are counted by
their `"seq":` field (an Agentdeck frame may merge several), their order by the
number in their job id (`b<n>`), which the publisher makes increase.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys

from websockets.asyncio.client import ClientConnection, connect

BATCH = 100
JOB_NUMBER = re.compile(r'"job":"b(\d+)"')


class Tally:
    def __init__(self, n: int) -> None:
        self.counts = [0] * n
        self.last = [-1] * n
        self.disordered = 0
        self.closed = 0


async def _listen(conn: ClientConnection, i: int, tally: Tally) -> None:
    try:
        async for message in conn:
            text = message if isinstance(message, str) else message.decode()
            numbers = JOB_NUMBER.findall(text)
            for n in map(int, numbers):
                if n <= tally.last[i]:
                    tally.disordered += 1
                tally.last[i] = n
            tally.counts[i] += len(numbers)
    except Exception:
        pass
    tally.closed += 1


async def _open(url: str, i: int, args: argparse.Namespace, tally: Tally) -> ClientConnection:
    headers = {"Authorization": f"Bearer {args.token}"} if args.token else None
    conn = await connect(
        url,
        additional_headers=headers,
        compression="deflate" if args.deflate else None,
        ping_interval=None,
        open_timeout=60,
        max_size=None,
    )
    if args.subscribe:
        await conn.send('{"op":"subscribe","topic":"jobs"}')
        while '"subscribed"' not in str(await conn.recv()):
            pass
    asyncio.get_running_loop().create_task(_listen(conn, i, tally))
    return conn


async def main(args: argparse.Namespace) -> None:
    tally = Tally(args.n)
    conns: list[ClientConnection] = []
    for start in range(0, args.n, BATCH):
        batch = range(start, min(args.n, start + BATCH))
        conns += await asyncio.gather(*(_open(args.url, i, args, tally) for i in batch))
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line or line.strip() == "quit":
            break
        report = {"counts": tally.counts, "disordered": tally.disordered, "closed": tally.closed}
        print(json.dumps(report), flush=True)
    for conn in conns:
        await conn.close()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("url")
    ap.add_argument("n", type=int)
    ap.add_argument("--subscribe", action="store_true")
    ap.add_argument("--token")
    ap.add_argument("--deflate", action="store_true", help="offer permessage-deflate")
    asyncio.run(main(ap.parse_args()))
