"""Parsing a job submission's envelope (the agent's own input is checked by its schema)."""

from __future__ import annotations

from typing import Any

import pytest

from webapp.errors import ApiError
from webapp.jobs import Submission


def test_a_full_submission() -> None:
    sub = Submission.parse(
        {"agent": "echo", "input": {"text": "hi"}, "queue": "q", "priority": 3,
         "idempotency_key": "k"}
    )  # fmt: skip
    assert sub == Submission("echo", {"text": "hi"}, "q", 3, "k")


def test_input_defaults_to_empty() -> None:
    assert Submission.parse({"agent": "echo"}).input == {}


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ([1], 400, None),
        ({}, 422, "agent"),
        ({"agent": ""}, 422, "agent"),
        ({"agent": "echo", "input": "text"}, 422, "input"),
        ({"agent": "echo", "queue": ""}, 422, "queue"),
        ({"agent": "echo", "queue": "q" * 201}, 422, "queue"),
        ({"agent": "echo", "priority": 10}, 422, "priority"),
        ({"agent": "echo", "priority": True}, 422, "priority"),
        ({"agent": "echo", "priority": 1.5}, 422, "priority"),
        ({"agent": "echo", "idempotency_key": 7}, 422, "idempotency_key"),
    ],
)
def test_bad_submissions_name_their_field(body: Any, status: int, field: str | None) -> None:
    with pytest.raises(ApiError) as refused:
        Submission.parse(body)
    assert refused.value.status == status
    assert refused.value.extra.get("field") == field
