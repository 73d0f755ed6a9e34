"""The web's client on the event bus under a burst of callers: past its pool's size they
wait for a connection instead of failing (redis-py's default pool fails them at once)."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import redis

from tests.support import Platform
from workers.events_redis import events_redis
from workers.redis_urls import redis_client
from workers.settings import Settings

CALLERS = 40
POOL = 5


def burst(client: redis.Redis) -> list[str]:
    """CALLERS callers at once, each holding a connection for 0.1 s (a BLPOP that times
    out); what each got: "ok", or the error that failed it."""
    key = f"pool-test-{uuid.uuid4().hex}"

    def call(_: int) -> str:
        try:
            client.blpop([key], timeout=0.1)
            return "ok"
        except redis.RedisError as exc:
            return str(exc)

    with ThreadPoolExecutor(CALLERS) as pool:
        return list(pool.map(call, range(CALLERS)))


def test_callers_past_the_pool_wait_for_a_connection(platform: Platform) -> None:
    # given the web's client with a pool of 5 connections
    settings = Settings.from_env({**platform.env(), "AGENTDECK_REDIS_CONNECTIONS": str(POOL)})
    client = events_redis(settings, socket_timeout=10, pooled_for_many=True)
    try:
        # when 40 callers use it at once
        got = burst(client)
        # then every one of them is served, in turn
        assert got == ["ok"] * CALLERS
    finally:
        client.close()


def test_a_plain_pool_of_the_same_size_fails_the_burst(platform: Platform) -> None:
    # given a client whose pool does not wait (redis-py's default, 100 connections, here 5)
    client = redis_client(platform.redis_url, max_connections=POOL)
    try:
        # when the same burst comes
        got = burst(client)
        # then callers past the pool fail at once: what the web's client is spared
        assert any("Too many connections" in g for g in got)
        assert got.count("ok") >= POOL
    finally:
        client.close()
