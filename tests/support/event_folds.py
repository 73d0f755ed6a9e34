"""The shared cases of how events change a job (tests/fixtures/event_folds.json).

Both folds run them: the Python one (`webapp.history.apply_event`, in
tests/test_event_fold.py) and the JavaScript one (`webapp/static/js/fold.js`, in
Chromium, tests/browser/test_event_fold.py). Both hand their jobs to
`differences`, so the two are held to one reading of the expectations.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "event_folds.json"


@cache
def _load() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(FIXTURE.read_text(encoding="utf-8"))
    return data


def fields() -> list[str]:
    """The job fields every case states: those both folds keep."""
    names: list[str] = _load()["fields"]
    return names


def not_folded() -> list[str]:
    """Job fields set at submit and never by an event."""
    names: list[str] = _load()["not_folded"]
    return names


def cases() -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = _load()["cases"]
    return found


def case_names() -> list[str]:
    return [case["name"] for case in cases()]


def case(name: str) -> dict[str, Any]:
    return next(c for c in cases() if c["name"] == name)


def differences(expected: dict[str, Any], job: dict[str, Any]) -> list[str]:
    """Each stated field whose folded value differs: 'field: expected ..., got ...'.
    A field the job lacks counts as null (a REST job says null)."""
    return [
        f"{name}: expected {want!r}, got {job.get(name)!r}"
        for name, want in expected.items()
        if job.get(name) != want
    ]
