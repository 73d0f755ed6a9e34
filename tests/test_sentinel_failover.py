"""Redis Sentinel: the primary SIGKILLed mid-stream, a replica promoted, nothing lost.

The platform of this module runs everything Redis does through a Sentinel set
of its own (tests/support/sentinel.py): the Celery broker, the results and
Agentdeck's events all take the set's `sentinel://` URL. A client watches a
job stream while the primary is killed; the Sentinels promote the replica and
every process finds it through them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from launcher.net import wait_until
from tests.support import Platform, WebService, WorkerService, http
from tests.support.follow import JobView
from tests.support.jobs import state_is, submit
from tests.support.own_redis import own_redis_environ
from tests.support.platform import OUTPUT_ROOT, start_platform
from tests.support.sentinel import SentinelSet
from tests.support.services import running
from tests.support.ws import WsClient
from workers.envelope import read_seq
from workers.keys import Keys
from workers.models import EventRow, make_engine
from workers.replay_log import read_log

pytestmark = pytest.mark.deployment
log = logging.getLogger("agentdeck.tests")
COUNT = 150


@pytest.fixture
def sentinels(platform: Platform) -> Iterator[SentinelSet]:
    group = SentinelSet(platform.output_dir).start()
    yield group
    group.stop()


@pytest.fixture
def ha(platform: Platform, sentinels: SentinelSet) -> Iterator[Platform]:
    own = start_platform(own_redis_environ(os.environ), redis_url=sentinels.url)
    own.output_dir.rmdir()  # its logs go with the session's
    own.output_dir = platform.output_dir
    latest = OUTPUT_ROOT / "latest"
    with contextlib.suppress(OSError):
        latest.unlink()
        latest.symlink_to(platform.output_dir.name)
    yield own
    own.close()


@pytest.fixture
def stack(ha: Platform) -> Iterator[tuple[WorkerService, WebService]]:
    worker, web = WorkerService(ha, name="sentinel-worker"), WebService(ha, name="sentinel-web")
    with running(worker, web):
        yield worker, web


def outputs(view: JobView) -> list[str]:
    return [e["data"]["text"] for _, e in sorted(view.events.items()) if e["type"] == "output"]


def types(view: JobView) -> list[str]:
    return [e["type"] for _, e in sorted(view.events.items())]


@pytest.mark.parametrize("fault", ["sigkill", "sentinel_failover"])
def test_primary_lost_mid_stream_the_platform_fails_over_with_nothing_lost(
    fault: str, stack: tuple[WorkerService, WebService], sentinels: SentinelSet, ha: Platform
) -> None:
    worker, web = stack
    # given a client watching a job that streams 150 chunks, on a platform behind Sentinel
    old = sentinels.primary_port()
    assert old == sentinels.ports["primary"]
    job_id = submit(web.url, "chatty", count=COUNT, delay=0.04)
    ws = WsClient(web.url)
    view = JobView(web.url, job_id)
    view.subscribe(ws)
    view.run(ws, until=lambda v: v.last >= 30, timeout=30)
    # when the primary is SIGKILLed mid-stream (or a failover is forced: it becomes a replica)
    seen_at_kill = max(view.events)
    lost_at = sentinels.kill("primary") if fault == "sigkill" else sentinels.force_failover()
    # then the first event published after the kill reaches the client (time to recover)
    view.run(ws, until=lambda v: max(v.events) > seen_at_kill + 1, timeout=60)
    recovered_in = time.monotonic() - lost_at
    # and the Sentinels promoted the replica
    assert wait_until(lambda: sentinels.primary_port() not in (None, old), 30)
    assert sentinels.name_of(sentinels.primary_port() or 0) == "replica"
    # and the client, still connected, ends with seq 1..N, each event exactly once
    view.run(ws, timeout=120)
    ws.close()
    assert (view.gaps, view.dups, view.resets) == (0, 0, 0)
    assert view.seqs() == list(range(1, view.last + 1))
    lost = COUNT - len(outputs(view))
    assert outputs(view) == [f"chunk {i}\n" for i in range(1, COUNT + 1)]
    # and the job ran once, on the same worker, and succeeded
    assert types(view).count("job.started") == 1 and "job.lost" not in types(view)
    assert view.events[view.last]["type"] == "job.succeeded"
    assert worker.running
    # and the new primary's replay log holds every event: none was taken by the old
    # primary alone (a failed-over primary that runs on is demoted, its writes dropped)
    if fault == "sentinel_failover":
        old_primary = sentinels.client("primary")
        assert wait_until(lambda: old_primary.info("replication")["role"] == "slave", 30)
        old_primary.close()
    primary = sentinels.client(sentinels.name_of(sentinels.primary_port() or 0))
    _, logged = read_log(primary, Keys(), job_id, 0)
    primary.close()
    assert [read_seq(e) for e in logged] == list(range(1, view.last + 1))
    # and SQL holds every event once
    engine = make_engine(ha.database_url)
    n = view.last

    def recorded() -> list[int]:
        with Session(engine) as s:
            q = select(EventRow.seq).where(EventRow.job_id == job_id).order_by(EventRow.seq)
            return list(s.scalars(q))

    assert wait_until(lambda: recorded() == list(range(1, n + 1)), 30), recorded()
    engine.dispose()
    # and new jobs run on the new primary
    after = submit(web.url, "echo", text="after", steps=1, delay=0)
    assert state_is(web.url, after, "SUCCESS", timeout=60)["state"] == "SUCCESS"
    # and the broker page reads the broker's queues on the new primary
    r = http.get(f"{web.url}/api/monitor/broker", timeout=10)
    assert r.status_code == 200 and r.json()["broker"].startswith("sentinel://"), r.text
    assert "celery" in {q["name"] for q in r.json()["queues"]}
    figures: dict[str, Any] = {
        "fault": fault,
        "recovered_in_s": round(recovered_in, 3),
        "events": n,
        "outputs_lost": lost,
        "gaps": view.gaps,
        "duplicates": view.dups,
    }
    (ha.output_dir / f"sentinel-{fault}.json").write_text(json.dumps(figures))
    log.warning("Sentinel failover: %s", figures)
    print(f"\nSentinel failover: {figures}")
