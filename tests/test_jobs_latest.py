"""`jobs:latest` end to end: a burst of jobs reaches a client as a few frames a second,
and every job's final state is in them."""

from __future__ import annotations

import time

from tests.support import WebService, WorkerService, http
from tests.support.ws import WsClient, is_final

ECHO = {"agent": "echo", "input": {"text": "x", "steps": 2, "delay": 0}}
JOBS = 40


def test_a_burst_of_jobs_arrives_coalesced_with_every_final_state(
    web: WebService, worker: WorkerService
) -> None:
    # given a client on jobs:latest
    ws = WsClient(web.url)
    try:
        ws.send({"op": "subscribe", "topic": "jobs:latest"})
        ws.wait_for(lambda f: f["type"] == "subscribed")
        subscribed = time.monotonic()
        # when a burst of jobs is submitted and run
        ids = set()
        for _ in range(JOBS):
            r = http.post(f"{web.url}/api/jobs", json=ECHO)
            assert r.status_code == 202, r.text
            ids.add(r.json()["id"])
        # then each job's entries end in its final state, with seqs that only grow
        final: dict[str, str] = {}
        last_seq: dict[str, int] = {}
        arrivals: list[float] = []
        deadline = time.monotonic() + 60
        while not ids <= final.keys():
            frame = ws.recv(timeout=max(deadline - time.monotonic(), 0.01))
            if frame["type"] != "latest":
                continue
            arrivals.append(time.monotonic())
            assert frame["topic"] == "jobs:latest"
            assert len({e["id"] for e in frame["jobs"]}) == len(frame["jobs"])  # once a frame
            for entry in frame["jobs"]:
                assert entry["seq"] > last_seq.get(entry["id"], 0)
                last_seq[entry["id"]] = entry["seq"]
                if is_final(entry):
                    final[entry["id"]] = entry["state"]
        assert {final[j] for j in ids} == {"SUCCESS"}
        # and frames came at most ten a second (one tick's, not one per event: the
        # burst's lifecycle events alone are JOBS * 4, and frames queued while the test
        # was submitting arrive together, so count them over the whole window)
        elapsed = arrivals[-1] - subscribed
        assert len(arrivals) <= elapsed / 0.1 + 2, (len(arrivals), elapsed)
    finally:
        ws.close()
