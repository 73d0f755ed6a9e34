"""Jobs over REST for tests: submit one, read it, wait for a state or for its recorded wait."""

from __future__ import annotations

from typing import Any

from launcher.net import wait_until
from tests.support import http


def submit(base: str, agent: str, **input: Any) -> str:
    r = http.post(f"{base}/api/jobs", json={"agent": agent, "input": input})
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


def job(base: str, job_id: str) -> dict[str, Any]:
    return dict(http.get(f"{base}/api/jobs/{job_id}").json())


def state_is(base: str, job_id: str, *states: str, timeout: float = 30) -> dict[str, Any]:
    """The job once its state is one of `states` (bounded by `timeout`)."""
    seen: dict[str, Any] = {}

    def reached() -> bool:
        seen.update(job(base, job_id))
        return seen["state"] in states

    assert wait_until(reached, timeout), f"{job_id} is {seen.get('state')}, not {states}"
    return seen


def suspended(base: str, job_id: str, timeout: float = 30) -> None:
    """A durable run has recorded its wait (it is answerable), not only said input.requested."""
    assert wait_until(
        lambda: any(s["status"] == "waiting" for s in job(base, job_id)["steps"]), timeout
    ), job(base, job_id)
