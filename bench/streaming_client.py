"""The streaming benchmark's clients: one asyncio process of them (bench/streaming.py
starts several and adds up what they print).

    python -m bench.streaming_client ws URL TOKEN JOBS WATCHED WATCHERS TOPIC_CLIENTS TIMEOUT
    python -m bench.streaming_client redis URL FIRST LAST WATCHERS TOPIC_CLIENTS TIMEOUT
    python -m bench.streaming_client publish URL CHANNELS RATE SECONDS START_AT

`ws`: WATCHERS sockets per job of WATCHED (comma-separated ids, some of JOBS) on
`job:<id>` from seq 0, and TOPIC_CLIENTS sockets on `jobs`, each reading until all of
JOBS are final. `redis`: the baseline, the same shape on bare Redis pub/sub (WATCHERS
connections per channel of FIRST..LAST-1, TOPIC_CLIENTS on every channel), fed by
`publish`. Prints "ready" once every client is subscribed (or, after SUBSCRIBE_WAIT,
why some are not, on stderr), then one JSON line: the latencies (receipt minus the
event's `ts`, of the events created after every client was subscribed) as a histogram,
how many events were delivered, and how many were duplicated, out of order or missing.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

import orjson
import redis

from bench.ws_reader import RawWebSocket

FINAL = ("SUCCESS", "FAILURE", "REVOKED")
# The baseline's `jobs`: one message per stream as it ends, as `jobs` carries each
# job's final event live (its earlier lifecycle events come before the clients are on).
LIFECYCLE = "bench-stream:jobs"
OPEN_TIMEOUT = 60.0  # s for a handshake: a thousand at once queue at the server
SUBSCRIBE_WAIT = 120.0  # s for every client to be subscribed


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)  # ms, live events only
    delivered: int = 0
    duplicated: int = 0
    out_of_order: int = 0
    missing: int = 0
    unfinished: int = 0
    live_from: float = 0.0  # events with ts before this were made before all subscribed

    def see(self, now: float, ts: float) -> None:
        self.delivered += 1
        if ts >= self.live_from:
            self.latencies.append((now - ts) * 1000)


def bucket(ms: float) -> str:
    """A latency's histogram bucket: three significant digits (under 0.5% off)."""
    return f"{ms:.3g}"


def pct(hist: dict[str, int], p: float) -> float:
    """The p-th percentile of a histogram of `bucket`s."""
    total = sum(hist.values())
    if not total:
        return float("nan")
    seen = 0
    for key in sorted(hist, key=float):
        seen += hist[key]
        if seen > p / 100 * total:
            return float(key)
    return float(max(hist, key=float))


def histogram(values: list[float]) -> dict[str, int]:
    out: dict[str, int] = {}
    for ms in values:
        key = bucket(ms)
        out[key] = out.get(key, 0) + 1
    return out


# -- Agentdeck over WebSockets -----------------------------------------------------------
@dataclass
class Why:
    """What became of one client before its `subscribed`: to say why it never got one."""

    stage: str = "connecting"  # connecting, open (subscribe sent), subscribed
    frames: list[str] = field(default_factory=list)  # types of the frames before `subscribed`
    close: str = ""  # the close code and reason, once the socket closed
    error: str = ""  # what the client raised

    def reason(self) -> str:
        parts = [self.stage]
        if self.frames:
            parts.append("frames " + ",".join(self.frames[:3]))
        if self.close:
            parts.append("closed " + self.close)
        if self.error:
            parts.append(self.error)
        return "; ".join(parts)


def _closed(ws: RawWebSocket) -> str:
    code, reason = ws.close_code, ws.close_reason
    return f"{code} {reason!r}" if code is not None else "without a close frame"


async def _ws_open(url: str, token: str, frame: dict[str, Any], why: Why) -> RawWebSocket:
    ws = await RawWebSocket.connect(url, {"Authorization": f"Bearer {token}"}, timeout=OPEN_TIMEOUT)
    await ws.send_text(json.dumps(frame))
    why.stage = "open"
    return ws


def _noted(why: Why, frame: dict[str, Any]) -> None:
    """Keep the frames before `subscribed`; a `reset` or an `error` there ends the client
    (the server dropped the subscription: no `subscribed` will come)."""
    if why.stage == "subscribed":
        return
    kind = str(frame.get("type"))
    why.frames.append(kind)
    if kind in ("reset", "error"):
        raise ConnectionError(f"{kind} instead of subscribed: {json.dumps(frame)[:120]}")


async def _ws_job(
    url: str, token: str, job: str, tally: Tally, ready: asyncio.Event, why: Why
) -> None:
    ws = await _ws_open(url, token, {"op": "subscribe", "topic": f"job:{job}", "since": 0}, why)
    try:
        last = 0
        async for now, msg in ws.messages():
            frame = orjson.loads(msg)
            if frame.get("type") == "subscribed" and why.stage != "subscribed":
                why.stage = "subscribed"
                ready.set()
            _noted(why, frame)
            for ev in frame.get("events", ()):
                seq = ev["seq"]
                if seq <= last:
                    tally.duplicated += 1
                    continue
                if seq != last + 1:
                    tally.out_of_order += 1
                    tally.missing += seq - last - 1
                last = seq
                tally.see(now, ev["ts"])
                if ev["state"] in FINAL and ev["type"].startswith("job."):
                    return
        raise ConnectionError(f"closed {_closed(ws)} before the job ended")
    finally:
        why.close = _closed(ws)
        await ws.close()


async def _ws_jobs_topic(
    url: str, token: str, jobs: set[str], tally: Tally, ready: asyncio.Event, why: Why
) -> None:
    ws = await _ws_open(url, token, {"op": "subscribe", "topic": "jobs"}, why)
    try:
        last: dict[str, int] = {}
        left = set(jobs)
        async for now, msg in ws.messages():
            frame = orjson.loads(msg)
            if frame.get("type") == "subscribed" and why.stage != "subscribed":
                why.stage = "subscribed"
                ready.set()
            _noted(why, frame)
            for ev in frame.get("events", ()):
                job, seq = ev["job"], ev["seq"]
                if job not in jobs:
                    continue
                if seq <= last.get(job, 0):  # lifecycle events only: seqs grow, with gaps
                    tally.duplicated += 1
                    continue
                last[job] = seq
                tally.see(now, ev["ts"])
                if ev["state"] in FINAL and ev["type"].startswith("job."):
                    left.discard(job)
                    if not left:
                        return
        raise ConnectionError(f"closed {_closed(ws)} before every job ended")
    finally:
        why.close = _closed(ws)
        await ws.close()


# -- the baseline: bare Redis pub/sub -------------------------------------------------------
def _command(*parts: str) -> bytes:
    out = [f"*{len(parts)}\r\n".encode()]
    for part in parts:
        b = part.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


def _pushes(buf: bytearray) -> list[list[bytes | int]]:
    """The whole RESP arrays at the front of `buf` (removed from it); a partial one stays."""
    out: list[list[bytes | int]] = []
    pos = 0
    while True:
        start = pos
        if pos >= len(buf) or buf[pos] != ord("*"):
            break
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            break
        n = int(buf[pos + 1 : eol])
        pos = eol + 2
        items: list[bytes | int] = []
        for _ in range(n):
            eol = buf.find(b"\r\n", pos)
            if eol < 0:
                break
            kind, head = buf[pos], buf[pos + 1 : eol]
            pos = eol + 2
            if kind == ord(":"):
                items.append(int(head))
                continue
            size = int(head)
            if pos + size + 2 > len(buf):
                break
            items.append(bytes(buf[pos : pos + size]))
            pos += size + 2
        if len(items) < n:
            pos = start
            break
        out.append(items)
    del buf[:pos]
    return out


async def _redis_sub(url: str, channels: list[str], tally: Tally, ready: asyncio.Event) -> None:
    """A bare subscriber: its own connection, a minimal RESP reader (no client library
    cost on top of what any pub/sub reader pays)."""
    u = urlsplit(url)
    reader, writer = await asyncio.open_connection(u.hostname, u.port or 6379)
    if u.password:
        writer.write(_command("AUTH", unquote(u.password)))
        await writer.drain()
        await reader.readline()
    writer.write(_command("SUBSCRIBE", *channels))
    await writer.drain()
    last = dict.fromkeys(channels, 0)
    left = set(channels)
    confirmed = 0
    buf = bytearray()
    try:
        while left:
            chunk = await reader.read(1 << 16)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            now = time.time()
            buf += chunk
            for push in _pushes(buf):
                if push[0] == b"subscribe":
                    confirmed += 1
                    if confirmed == len(channels):
                        ready.set()
                    continue
                chan = push[1].decode()  # type: ignore[union-attr]
                ev = orjson.loads(push[2])  # type: ignore[arg-type]
                seq = ev["seq"]
                if seq <= last[chan]:
                    tally.duplicated += 1
                    continue
                if seq != last[chan] + 1:
                    tally.out_of_order += 1
                    tally.missing += seq - last[chan] - 1
                last[chan] = seq
                if ev.get("end"):
                    left.discard(chan)
                    continue
                tally.see(now, ev["ts"])
    finally:
        writer.close()


def publish(url: str, channels: list[str], rate: float, seconds: float, start_at: float) -> None:
    """Each channel gets `rate` messages a second for `seconds`, then an end marker."""
    r = redis.Redis.from_url(url)
    pad = "chunk 000000 of the stream, about as long as a line of model output"
    count = int(rate * seconds)
    time.sleep(max(0.0, start_at - time.time()))
    begun = time.monotonic()
    for i in range(1, count + 2):
        pipe = r.pipeline(transaction=False)
        ts = time.time()
        for n, ch in enumerate(channels):
            body: dict[str, Any] = {"job": ch, "seq": i, "type": "output", "ts": ts}
            if i > count:
                body["end"] = True
            else:
                body["data"] = {"text": pad}
            pipe.publish(ch, json.dumps({**body, "state": "STARTED"}))
            if i == count:
                final = {"job": ch, "seq": n + 1, "type": "job.succeeded", "ts": ts}
                pipe.publish(LIFECYCLE, json.dumps({**final, "state": "SUCCESS"}))
        if i > count:
            pipe.publish(LIFECYCLE, json.dumps({"seq": len(channels) + 1, "end": True}))
        pipe.execute()
        pause = begun + i / rate - time.monotonic()
        if pause > 0:
            time.sleep(pause)


# -- running them -----------------------------------------------------------------------
async def _ready_even_if_failed(coro: Any, ready: asyncio.Event, why: Why) -> None:
    """A client that fails (its handshake refused, cut off) counts as failed, and as
    ready: the others do not wait for it."""
    try:
        await coro
    except Exception as exc:
        why.error = repr(exc)[:160]
        raise
    finally:
        ready.set()


def _reasons(whys: list[Why]) -> dict[str, int]:
    """How many clients ended up each way, most common first."""
    counts: dict[str, int] = {}
    for why in whys:
        counts[why.reason()] = counts.get(why.reason(), 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


async def run(mode: str, args: list[str]) -> dict[str, Any]:
    tally = Tally()
    readies: list[asyncio.Event] = []
    whys: list[Why] = []
    coros = []
    if mode == "ws":
        url, token, jobs_arg, watched_arg, watchers, topic_clients, timeout = args
        jobs = [j for j in jobs_arg.split(",") if j]
        for job in (j for j in watched_arg.split(",") if j):
            for _ in range(int(watchers)):
                readies.append(ev := asyncio.Event())
                whys.append(why := Why())
                coros.append(_ws_job(url, token, job, tally, ev, why))
        for _ in range(int(topic_clients)):
            readies.append(ev := asyncio.Event())
            whys.append(why := Why())
            coros.append(_ws_jobs_topic(url, token, set(jobs), tally, ev, why))
    else:
        url, first, last, watchers, topic_clients, timeout = args
        channels = [f"bench-stream:{i}" for i in range(int(first), int(last))]
        for ch in channels:
            for _ in range(int(watchers)):
                readies.append(ev := asyncio.Event())
                whys.append(Why())
                coros.append(_redis_sub(url, [ch], tally, ev))
        for _ in range(int(topic_clients)):
            readies.append(ev := asyncio.Event())
            whys.append(Why())
            coros.append(_redis_sub(url, [LIFECYCLE], tally, ev))
    tasks = []
    for coro, ready, why in zip(coros, readies, whys, strict=True):
        # connect a few at a time: a thousand handshakes at once time out
        tasks.append(asyncio.ensure_future(_ready_even_if_failed(coro, ready, why)))
        if len(tasks) % 50 == 0:
            await asyncio.sleep(0.05)
    waits = [asyncio.ensure_future(e.wait()) for e in readies]
    await asyncio.wait(waits, timeout=SUBSCRIBE_WAIT)
    for w in waits:
        w.cancel()
    waiting = [why for why, e in zip(whys, readies, strict=True) if not e.is_set()]
    if waiting:
        # Left waiting: counted as failed (below), and said why on stderr.
        print(
            f"{len(waiting)} of {len(readies)} clients not subscribed after {SUBSCRIBE_WAIT:.0f} s:"
            f" {_reasons(waiting)}",
            file=sys.stderr,
            flush=True,
        )
    tally.live_from = time.time()
    cpu0, wall0 = time.process_time(), time.monotonic()
    print("ready", flush=True)
    done, pending = await asyncio.wait(tasks, timeout=float(timeout))
    client_cores = (time.process_time() - cpu0) / (time.monotonic() - wall0)
    tally.unfinished = len(pending)
    for t in pending:
        t.cancel()
    failed = [why for t, why in zip(tasks, whys, strict=True) if t in done and t.exception()]
    unsubscribed = [why for why in whys if why.stage != "subscribed"] if mode == "ws" else []
    lat = tally.latencies
    return {
        "clients": len(tasks),
        "client_cores": round(client_cores, 3),
        "delivered": tally.delivered,
        "live": len(lat),
        "duplicated": tally.duplicated,
        "out_of_order": tally.out_of_order,
        "missing": tally.missing,
        "unfinished": tally.unfinished,
        "failed_clients": len(failed),
        "failed": _reasons(failed) if failed else {},
        "unsubscribed": len(unsubscribed),
        "unsubscribed_why": _reasons(unsubscribed) if unsubscribed else {},
        "latency_ms": histogram(lat),
        "max_ms": max(lat, default=float("nan")),
    }


def main() -> None:
    mode, args = sys.argv[1], sys.argv[2:]
    if mode == "publish":
        url, n, rate, seconds, start_at = args
        channels = [f"bench-stream:{i}" for i in range(int(n))]
        publish(url, channels, float(rate), float(seconds), float(start_at))
        return
    print(json.dumps(asyncio.run(run(mode, args))), flush=True)


if __name__ == "__main__":
    main()
