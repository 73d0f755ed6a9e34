"""`create_app` registers every background loop and hook in one place, and stops them."""

from __future__ import annotations

from launcher.net import wait_until
from webapp import create_app, stop_background
from webapp.services import Services

LOOPS = {"hub", "recorder", "janitor", "monitor", "socket-warden", "ws-pinger", "jobs-latest"}


def test_create_app_starts_every_loop_and_stops_them_in_one_place() -> None:
    # given an app built without its background threads
    app = create_app(background=False)
    svc: Services = app.extensions["agentdeck"]
    # then its five loops are registered and none runs
    assert {loop.name for loop in svc.loops.loops} == LOOPS
    assert not any(loop.running for loop in svc.loops.loops)
    # and its hooks are there: the recorder's wake-up and the latency on each event,
    # the lost-worker checks and the durable runs' waker on the janitor's tick, the
    # lost-worker scan
    assert len(svc.hooks._envelope) == 2 and len(svc.hooks._tick) == 2
    assert len(svc.hooks._scan) == 1
    # when they are started, they run (the hub subscribes to the session's Redis)
    svc.loops.start()
    try:
        assert wait_until(lambda: svc.hub.connected, 10)
        assert all(loop.running for loop in svc.loops.loops)
    finally:
        # and when the app's background is stopped, every thread has ended
        assert stop_background(app, timeout=5) == []
    assert not any(loop.running for loop in svc.loops.loops)
