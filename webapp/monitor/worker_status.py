"""Workers as the web sees them: their last heartbeat, online or not, purge.

A worker is online while it beats. One that said goodbye (warm shutdown) is in
`workers_offline`; one whose beats stopped (SIGKILL, lost host) is marked in
`workers_expired` by `expire_silent`, which also PUBLISHes its
`worker.offline` so every page greys it at once. Times are Redis' clock.
"""

from __future__ import annotations

import json
import time
from typing import Any

import redis

from webapp.services import Services, text

CHECK_EVERY = 0.5


def silence_limit(svc: Services) -> float:
    """Beats missing this long mean offline. Checked every CHECK_EVERY, so a worker
    that dies just after a beat is shown offline within `worker_expiry_seconds` of its
    death, with a margin for the push; a beat may be late by twice its interval."""
    s = svc.settings
    return max(s.heartbeat_seconds * 1.5, s.worker_expiry_seconds - 2 * CHECK_EVERY)


def redis_now(client: redis.Redis) -> float:
    sec, micro = client.time()  # type: ignore[misc]
    return float(sec) + float(micro) / 1e6


def list_workers(svc: Services) -> list[dict[str, Any]]:
    """Every known worker: `hostname`, `online`, `last_heartbeat`, `offline_since`, `info`."""
    k = svc.settings.keys
    pipe = svc.redis.pipeline(transaction=False)
    pipe.zrange(k.worker_beats, 0, -1, withscores=True)
    pipe.hgetall(k.workers)
    pipe.hgetall(k.workers_offline)
    pipe.hgetall(k.workers_expired)
    pipe.time()
    beats, infos, offline, expired, (sec, micro) = pipe.execute()
    now = float(sec) + float(micro) / 1e6
    gone = {text(h): float(v) for h, v in {**offline, **expired}.items()}
    limit = silence_limit(svc)
    out = []
    for raw_host, last in beats:
        host = text(raw_host)
        raw = infos.get(raw_host)
        try:
            beat = json.loads(raw) if raw else {}
        except ValueError:
            beat = {}
        online = host not in gone and now - last <= limit
        out.append(
            {
                "hostname": host,
                "online": online,
                "last_heartbeat": last,
                "offline_since": gone.get(host) if not online else None,
                "info": beat.get("data") or {},
            }
        )
    out.sort(key=lambda w: (not w["online"], w["hostname"]))
    return out


def get_worker(svc: Services, host: str) -> dict[str, Any] | None:
    return next((w for w in list_workers(svc) if w["hostname"] == host), None)


def expire_silent(svc: Services, script: Any) -> list[str]:
    """Mark workers whose beats stopped offline (once, whichever web process is first)."""
    k = svc.settings.keys
    limit = silence_limit(svc)
    now = redis_now(svc.redis)
    stale = svc.redis.zrangebyscore(k.worker_beats, "-inf", now - limit)
    if not stale:
        return []
    pipe = svc.redis.pipeline(transaction=False)
    pipe.hkeys(k.workers_offline)
    pipe.hkeys(k.workers_expired)
    done = {text(h) for keys in pipe.execute() for h in keys}
    marked = []
    for raw_host in stale:
        host = text(raw_host)
        if host in done:
            continue
        payload = json.dumps(
            {
                "type": "worker.offline",
                "ts": time.time(),
                "worker": host,
                "data": {"hostname": host, "reason": "heartbeats stopped"},
            }
        )
        keys = [k.worker_beats, k.workers_offline, k.workers_expired]
        if script(keys=keys, args=[host, limit, k.workers_channel, payload]):
            marked.append(host)
    return marked


def purge_worker(svc: Services, host: str) -> bool:
    """Forget an offline worker; False if it is unknown or still online."""
    worker = get_worker(svc, host)
    if worker is None or worker["online"]:
        return False
    k = svc.settings.keys
    pipe = svc.redis.pipeline(transaction=True)
    pipe.zrem(k.worker_beats, host)
    pipe.hdel(k.workers, host)
    pipe.hdel(k.workers_offline, host)
    pipe.hdel(k.workers_expired, host)
    message = {
        "type": "worker.purged",
        "ts": time.time(),
        "worker": host,
        "data": {"hostname": host},
    }
    pipe.publish(k.workers_channel, json.dumps(message))
    pipe.execute()
    return True
