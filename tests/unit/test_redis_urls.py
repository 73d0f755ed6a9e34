"""Redis and broker URLs: Sentinel URLs in kombu's form, what Celery is given, what is shown."""

from __future__ import annotations

import pytest

from workers.redis_urls import (
    RedisUrlError,
    SentinelUrl,
    celery_sentinel_options,
    is_amqp,
    is_redis,
    is_sentinel,
    parse_sentinel,
    without_credentials,
)

THREE = "sentinel://:pw@10.0.0.1:26379/2;sentinel://10.0.0.2:26380/2;sentinel://h3/2?master_name=ad"


def test_a_sentinel_url_names_every_sentinel_the_master_the_db_and_the_password() -> None:
    assert parse_sentinel(THREE) == SentinelUrl(
        sentinels=(("10.0.0.1", 26379), ("10.0.0.2", 26380), ("h3", 26379)),
        master_name="ad",
        db=2,
        username=None,
        password="pw",
    )


def test_a_sentinel_url_without_master_name_watches_mymaster_on_db_0() -> None:
    s = parse_sentinel("sentinel://127.0.0.1:26379")
    assert (s.master_name, s.db, s.password) == ("mymaster", 0, None)


@pytest.mark.parametrize(
    "url", ["sentinel://", "sentinel://h:1;redis://h:2", "sentinel://h:1/x", ";"]
)
def test_a_bad_sentinel_url_is_refused(url: str) -> None:
    with pytest.raises(RedisUrlError):
        parse_sentinel(url)


def test_celery_gets_the_url_bare_and_the_master_name_as_a_transport_option() -> None:
    url, options = celery_sentinel_options(THREE)
    assert url == "sentinel://:pw@10.0.0.1:26379/2;sentinel://10.0.0.2:26380/2;sentinel://h3/2"
    assert options == {"master_name": "ad"}
    assert celery_sentinel_options("redis://h:6379/0") == ("redis://h:6379/0", {})


def test_schemes_tell_redis_sentinel_and_amqp_apart() -> None:
    assert is_redis("redis://h") and is_redis("rediss://h") and is_redis(THREE)
    assert is_sentinel(THREE) and not is_sentinel("redis://h")
    assert is_amqp("amqp://u:p@h//") and is_amqp("pyamqp://h") and not is_redis("amqp://h")


def test_shown_urls_carry_no_credentials() -> None:
    assert without_credentials("amqp://guest:secret@h:5672/v") == "amqp://h:5672/v"
    shown = without_credentials(THREE)
    assert "pw" not in shown and shown.startswith("sentinel://10.0.0.1:26379/2;")
    assert without_credentials("redis://h:6379/0") == "redis://h:6379/0"
