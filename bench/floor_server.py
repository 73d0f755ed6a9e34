"""The floor the web process is judged against: Redis pub/sub relayed by a bare
asyncio `websockets` server with `websockets.broadcast` (each message framed once).

    python -m bench.floor_server --port 8765 --redis redis://127.0.0.1:6379/0 --channel C

Every connected client gets every message published on the channel, as one text
frame, unchanged. No compression (`websockets.broadcast` frames once only without
it), no auth, no topics: the least a relay can do.
"""

from __future__ import annotations

import argparse
import asyncio

import redis.asyncio as aioredis
from websockets.asyncio.server import Server, ServerConnection, broadcast, serve


async def _hold(conn: ServerConnection) -> None:
    await conn.wait_closed()  # clients only listen


async def _relay(url: str, channel: str, server: Server) -> None:
    client = aioredis.Redis.from_url(url)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(channel)
    async for msg in pubsub.listen():
        if msg["type"] == "message":
            data = msg["data"]
            broadcast(
                server.connections,  # a fresh set: those open now
                data.decode() if isinstance(data, bytes) else data,
            )


async def main(port: int, url: str, channel: str) -> None:
    async with serve(_hold, "127.0.0.1", port, compression=None, ping_interval=25) as server:
        print("floor ready", flush=True)
        await _relay(url, channel, server)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--redis", required=True)
    ap.add_argument("--channel", required=True)
    args = ap.parse_args()
    asyncio.run(main(args.port, args.redis, args.channel))
