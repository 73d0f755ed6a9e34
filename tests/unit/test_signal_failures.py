"""What Celery does with a receiver that raises: it logs it and goes on (so Agentdeck's
receivers need no wrapper of their own)."""

from __future__ import annotations

import logging

import pytest
from celery.utils.dispatch import Signal


def test_a_failing_receiver_is_logged_and_the_others_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # given a signal with a receiver that raises, then one that works
    signal = Signal(name="probe")
    ran: list[str] = []

    def broken(**kwargs: object) -> None:
        raise RuntimeError("receiver bug")

    def fine(**kwargs: object) -> None:
        ran.append("fine")

    signal.connect(broken, weak=False)
    signal.connect(fine, weak=False)
    # when it is sent
    with caplog.at_level(logging.ERROR):
        responses = signal.send(sender=None)
    # then the failure is logged with its traceback, and the next receiver ran
    assert ran == ["fine"]
    assert isinstance(responses[0][1], RuntimeError)
    record = next(r for r in caplog.records if "receiver bug" in r.getMessage())
    assert record.levelno == logging.ERROR and record.exc_info is not None
