"""The fixtures' own isolation helpers: Redis database claims, throwaway PostgreSQL databases."""

from __future__ import annotations

import socket

import pytest
import redis
from sqlalchemy import text

from tests.support import Platform
from tests.support.redis_db import CLAIM_KEY, claim_redis_db, with_db
from tests.support.sql_db import create_test_database
from workers.models import make_engine


def test_with_db_replaces_the_database_index() -> None:
    assert with_db("redis://h:1/0", 7) == "redis://h:1/7"
    assert with_db("redis://:pw@h:1", 3) == "redis://:pw@h:1/3"


def test_claims_take_distinct_empty_databases_and_release_flushes(platform: Platform) -> None:
    first, release_first = claim_redis_db(platform.redis_url)
    second, release_second = claim_redis_db(platform.redis_url)
    try:
        assert first != second
        client = redis.Redis.from_url(first, decode_responses=True)
        client.set("leftover", "1")
        release_first()
        assert client.dbsize() == 0
        client.close()
    finally:
        release_first()
        release_second()


def test_a_claim_left_by_a_dead_process_on_this_host_is_taken_over(platform: Platform) -> None:
    url, release = claim_redis_db(platform.redis_url)
    client = redis.Redis.from_url(url, decode_responses=True)
    try:
        # a session that died: its claim and some keys stay behind
        client.set(CLAIM_KEY, f"{socket.gethostname()}:999999999:dead")
        client.set("agentdeck:cancel:x", "1")
        again, release_again = claim_redis_db(platform.redis_url)
        try:
            assert again == url
            assert client.dbsize() == 1 and client.get(CLAIM_KEY) != "dead"
        finally:
            release_again()
    finally:
        release()
        client.close()


def test_throwaway_postgresql_database(platform: Platform) -> None:
    if not platform.database_url.startswith("postgresql"):
        pytest.skip("only with DATABASE_URL on PostgreSQL")
    url, drop = create_test_database(platform.database_url)
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            assert str(conn.execute(text("SELECT current_database()")).scalar()) in url
    finally:
        engine.dispose()
        drop()
    drop()  # dropping twice is harmless
