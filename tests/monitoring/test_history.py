"""Task history lives in SQL: it survives SIGKILL of the web process, and tasks that ran
while no web process was up appear once one is back."""

from __future__ import annotations

from tests.monitoring import plain_app
from tests.monitoring.conftest import PlainWorker
from tests.monitoring.helpers import Api, eventually, wait_final
from tests.support import WebService


def test_history_survives_sigkill_of_the_web_process(
    api: Api, web: WebService, online_plain_worker: PlainWorker
) -> None:
    # given tasks the web has recorded
    before = [plain_app.add.delay(i, 100) for i in range(3)]
    for r in before:
        wait_final(api, r.id)
    # when the web process is SIGKILLed, and tasks run while it is down
    web.kill()
    during = [plain_app.add.delay(i, 200) for i in range(3)]
    for r in during:
        r.get(timeout=20)  # ran to the end while no web process was up
    # then, once it is back, every task is listed, with its final state and result
    web.start()
    ids = {r.id for r in [*before, *during]}
    listed = eventually(
        lambda: api.get("/api/tasks", params={"search": "name:plain.add", "limit": 1000}),
        lambda tasks: ids <= set(tasks) and all(tasks[i]["state"] == "SUCCESS" for i in ids),
        timeout=20,
    )
    assert {listed[r.id]["result"] for r in during} == {"200", "201", "202"}
