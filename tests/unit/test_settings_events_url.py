"""AGENTDECK_EVENTS_URL: the event bus's Redis, REDIS_URL's unless set."""

from __future__ import annotations

from workers.settings import Settings


def test_the_event_bus_shares_the_brokers_redis_unless_told_otherwise() -> None:
    # given only REDIS_URL, when settings are read, then the events go there too
    s = Settings.from_env({"REDIS_URL": "redis://broker:6379/2"})
    assert (s.redis_url, s.events_url) == ("redis://broker:6379/2", "redis://broker:6379/2")
    # and an empty AGENTDECK_EVENTS_URL counts as unset
    s = Settings.from_env({"REDIS_URL": "redis://broker:6379/2", "AGENTDECK_EVENTS_URL": ""})
    assert s.events_url == "redis://broker:6379/2"


def test_agentdeck_events_url_moves_only_the_event_bus() -> None:
    # given both, then the broker stays where REDIS_URL says and the events move
    s = Settings.from_env(
        {"REDIS_URL": "redis://broker:6379/2", "AGENTDECK_EVENTS_URL": "redis://events:6380/0"}
    )
    assert (s.redis_url, s.events_url) == ("redis://broker:6379/2", "redis://events:6380/0")
    # and one built in code defaults the same way
    assert Settings(redis_url="redis://x:1/3").events_url == "redis://x:1/3"
