"""The `agentdeck` command and `agentdeck.client` against the real platform (docs/cli.md).

The CLI runs in-process through Click's CliRunner (and once as a real
`python -m agentdeck` subprocess); the client is the one scripts import.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from typing import Any

import pytest
import redis
from click.testing import CliRunner, Result

from agentdeck.cli import cli
from agentdeck.client import Client, EventStream, InvalidInput, NotFound, Unauthorized
from launcher.commands import REPO_ROOT
from launcher.net import wait_until
from tests.support import WebService, WorkerService


def deck(web: WebService, token: str, *args: str) -> Result:
    """`agentdeck --url <web> --token <token> ARGS...`, in-process."""
    runner = CliRunner()
    return runner.invoke(
        cli,
        ["--url", web.url, "--token", token, *args],
        catch_exceptions=False,
    )


def state_of(client: Client, job_id: str, *states: str, timeout: float = 30) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def reached() -> bool:
        seen.update(client.get(job_id))
        return seen["state"] in states

    assert wait_until(reached, timeout), f"{job_id} is {seen.get('state')}, not {states}"
    return seen


def cut(stream: EventStream) -> None:
    """Shut the stream's socket down under it, as a network failure would."""
    conn = stream.connection
    assert conn is not None and conn.sock is not None
    conn.sock.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def client(web: WebService, admin_token: str) -> Client:
    return Client(web.url, admin_token)


def test_submit_follow_streams_the_output_and_exits_0_on_success(
    web: WebService, worker: WorkerService, admin_token: str
) -> None:
    # given a running platform
    # when an echo job is submitted and followed
    result = deck(
        web, admin_token, "submit", "echo", "text=hello from the terminal", "steps=2", "--follow"
    )
    # then its streamed output is on stdout, its steps and outcome on stderr, and it exits 0
    assert result.exit_code == 0, result.output
    assert "hello from the terminal" in result.stdout
    assert "✓ step 1" in result.stderr and "✓ step 2" in result.stderr
    assert "progress 2/2" in result.stderr  # no terminal here: progress as lines
    assert "SUCCESS" in result.stderr


def test_submit_follow_exits_1_when_the_job_fails(
    web: WebService, worker: WorkerService, admin_token: str
) -> None:
    # given the fail agent
    # when it is submitted and followed
    result = deck(web, admin_token, "submit", "fail", "message=no way", "-f")
    # then the failure and its reason are shown and the exit code is 1
    assert result.exit_code == 1, result.output
    assert "FAILURE" in result.stderr and "no way" in result.stderr
    assert "[warning] failing on purpose" in result.stderr


def test_the_cli_as_a_real_process_submits_follows_and_lists(
    web: WebService, worker: WorkerService, admin_token: str
) -> None:
    # given the server and token in the environment only
    env = {**os.environ, "AGENTDECK_URL": web.url, "AGENTDECK_TOKEN": admin_token}
    command = [sys.executable, "-m", "agentdeck"]
    # when a job is submitted and followed by a real `python -m agentdeck` process
    run = subprocess.run(
        [*command, "submit", "echo", "text=from a subprocess", "steps=1", "--follow"],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    # then it prints the output and exits 0
    assert run.returncode == 0, run.stderr
    assert "from a subprocess" in run.stdout
    job_id = run.stderr.splitlines()[0].split()[-1]
    # and `jobs` in another process lists it as a table row
    listed = subprocess.run(
        [*command, "jobs", "-q", job_id],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert listed.returncode == 0, listed.stderr
    row = next(line for line in listed.stdout.splitlines() if job_id in line)
    assert "echo" in row and "SUCCESS" in row


def test_jobs_lists_a_submitted_job_in_a_table_with_filters(
    web: WebService, worker: WorkerService, admin_token: str, client: Client
) -> None:
    # given a finished echo job, submitted with the plain `submit` (which prints only its id)
    submitted = deck(web, admin_token, "submit", "echo", "text=list me", "steps=1", "delay=0")
    assert submitted.exit_code == 0, submitted.output
    job_id = submitted.stdout.strip()
    assert client.wait(job_id, timeout=30)["state"] == "SUCCESS"
    # (the list filters on the SQL row, which trails the live state by a moment)
    assert wait_until(lambda: job_id in {j["id"] for j in client.jobs("SUCCESS", "echo")}, 10)
    # when the jobs are listed by agent and state
    result = deck(
        web, admin_token, "jobs", "--agent", "echo", "--state", "success", "--limit", "50"
    )
    # then the job is a row of the table, with its agent and state
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0].split()[:3] == ["id", "agent", "state"]
    rows = [line for line in result.stdout.splitlines() if job_id in line]
    assert rows, result.stdout
    assert "echo" in rows[0] and "SUCCESS" in rows[0]
    # and a filter that excludes it leaves it out
    other = deck(web, admin_token, "jobs", "--agent", "fail", "--limit", "50")
    assert other.exit_code == 0 and job_id not in other.stdout


def test_tail_follows_from_the_start_or_resumes_after_since(
    web: WebService, worker: WorkerService, admin_token: str, client: Client
) -> None:
    # given a finished echo job with a known history
    job_id = client.submit("echo", {"text": "tail me", "steps": 2, "delay": 0})["id"]
    client.wait(job_id, timeout=30)
    history = client.history(job_id)["events"]
    first_output = next(e["seq"] for e in history if e["type"] == "output")
    # when it is tailed from the start
    whole = deck(web, admin_token, "tail", job_id)
    # then every event is shown, from the queueing on, and the exit code says SUCCESS
    assert whole.exit_code == 0, whole.output
    assert "queued on" in whole.stderr and "tail me" in whole.stdout
    # when it is tailed from just before its output
    resumed = deck(web, admin_token, "tail", job_id, "--since", str(first_output - 1))
    # then only what came after is shown
    assert resumed.exit_code == 0, resumed.output
    assert "queued on" not in resumed.stderr and "step 1" not in resumed.stderr
    assert "tail me" in resumed.stdout and "SUCCESS" in resumed.stderr
    # and from past its end, it ends at once
    past = deck(web, admin_token, "tail", job_id, "--since", str(history[-1]["seq"]))
    assert past.exit_code == 0 and past.stdout == ""


def test_cancel_ends_a_running_job_and_tail_exits_2(
    web: WebService, worker: WorkerService, admin_token: str, client: Client
) -> None:
    # given a long job that has started
    job_id = client.submit("sleep", {"seconds": 30})["id"]
    state_of(client, job_id, "STARTED")
    # when it is cancelled from the CLI
    result = deck(web, admin_token, "cancel", job_id)
    # then it ends REVOKED, and following it exits 2
    assert result.exit_code == 0, result.output
    assert client.wait(job_id, timeout=30)["state"] == "REVOKED"
    tailed = deck(web, admin_token, "tail", job_id)
    assert tailed.exit_code == 2 and "REVOKED" in tailed.stderr
    # and cancelling it again is a clear error, not a traceback
    again = deck(web, admin_token, "cancel", job_id)
    assert again.exit_code == 3
    assert "error:" in again.stderr and "409 already_finished" in again.stderr


def test_retry_from_failure_resumes_a_durable_run_where_it_failed(
    web: WebService, worker: WorkerService, admin_token: str, redis_client: redis.Redis
) -> None:
    # given a durable run whose second step failed
    marker = uuid.uuid4().hex
    failed = deck(web, admin_token, "submit", "fails_at_two", f"marker={marker}", "--follow")
    assert failed.exit_code == 1, failed.output
    job_id = failed.stderr.splitlines()[0].split()[-1]
    # when the step is fixed and the job retried from its failure, followed
    redis_client.set(f"durable:{marker}:fixed", "1")
    retried = deck(web, admin_token, "retry", job_id, "--from-failure", "--follow")
    # then the new run succeeds and its first step was not run again
    assert retried.exit_code == 0, retried.output
    assert int(redis_client.get(f"durable:{marker}:one") or 0) == 1
    # and a plain retry prints the new job's id, a retry of the old one
    plain = deck(web, admin_token, "retry", job_id)
    assert plain.exit_code == 0, plain.output
    new_id = plain.stdout.strip()
    assert Client(web.url, admin_token).get(new_id)["retry_of"] == job_id


@pytest.mark.parametrize(
    ("typed", "expected"), [('{"go": true, "n": 2}', {"go": True, "n": 2}), ("go on", "go on")]
)
def test_answer_resumes_a_waiting_job_with_json_or_text(
    web: WebService,
    worker: WorkerService,
    admin_token: str,
    client: Client,
    typed: str,
    expected: Any,
) -> None:
    # given a job that asked a question and is WAITING (its run suspended, the worker free)
    job_id = client.submit("ask", {"question": "proceed?"})["id"]
    state_of(client, job_id, "WAITING")
    assert wait_until(
        lambda: any(s["status"] == "waiting" for s in client.get(job_id).get("steps") or []), 30
    )
    # when it is answered from the CLI
    result = deck(web, admin_token, "answer", job_id, typed)
    # then the run resumes and returns the answer, parsed as JSON when it is JSON
    assert result.exit_code == 0, result.output
    final = client.wait(job_id, timeout=30)
    assert final["state"] == "SUCCESS" and final["result"] == expected
    # and its events tell the story in order: asked, suspended, answered, resumed, done
    types = [e["type"] for e in client.events(job_id, timeout=30)]
    assert types.index("input.requested") < types.index("input.received")
    assert types.index("input.received") < types.index("job.succeeded")
    assert types[-1] == "job.succeeded"


def test_client_events_resume_by_seq_when_the_socket_is_cut_under_them(
    web: WebService, worker: WorkerService, client: Client
) -> None:
    # given a job streaming 60 chunks over about three seconds, followed by the client
    job_id = client.submit("chatty", {"count": 60, "delay": 0.05})["id"]
    stream = client.events(job_id, timeout=60)
    got: list[dict[str, Any]] = []
    for event in stream:
        got.append(event)
        # when its socket is cut mid-stream, twice: the second time with a stale epoch,
        # so that the server answers the resubscription with `reset`
        if event["type"] == "output" and event["data"]["text"].startswith(("chunk 10\n",)):
            cut(stream)
        if event["type"] == "output" and event["data"]["text"].startswith("chunk 30\n"):
            stream.epoch = "stale-" + uuid.uuid4().hex
            cut(stream)
    # then it reconnected, and every event came exactly once, in order, up to the final one
    assert stream.reconnects >= 2 and stream.resets >= 1
    assert [e["seq"] for e in got] == list(range(1, len(got) + 1))
    assert got[-1]["type"] == "job.succeeded"
    chunks = [e["data"]["text"] for e in got if e["type"] == "output"]
    assert chunks == [f"chunk {i}\n" for i in range(1, 61)]
    # and the stream agrees with the server's history
    assert [e["seq"] for e in client.history(job_id)["events"]] == [e["seq"] for e in got]


def test_client_wait_and_typed_errors(
    web: WebService, worker: WorkerService, client: Client
) -> None:
    # given a submitted echo job
    job = client.submit("echo", {"text": "waited", "steps": 1, "delay": 0})
    # when waited on, then the final job comes back with its result
    done = client.wait(job["id"], timeout=30)
    assert done["state"] == "SUCCESS" and done["result"] == "waited"
    assert done["finished_at"] is not None
    # and the contract's errors arrive typed, with code, message and field
    with pytest.raises(InvalidInput) as bad:
        client.submit("echo", {"text": "x", "steps": "many"})
    assert bad.value.status == 422 and bad.value.code == "invalid_input"
    assert bad.value.field == "input.steps" or bad.value.field == "steps"
    with pytest.raises(NotFound) as missing:
        client.submit("no_such_agent", {})
    assert missing.value.code == "unknown_agent"
    with pytest.raises(NotFound):
        list(client.events("no-such-job-" + uuid.uuid4().hex, timeout=10))
    assert "echo" in {a["name"] for a in client.agents()}


def test_a_wrong_token_is_a_clear_message_and_exit_code_4(
    web: WebService, worker: WorkerService, admin_token: str
) -> None:
    # given a token the server does not know
    wrong = "adk_" + uuid.uuid4().hex
    # when the CLI lists jobs with it, then it says so, says how to get one, and exits 4
    result = deck(web, wrong, "jobs")
    assert result.exit_code == 4
    assert "the server refused the token (401 unauthorized" in result.stderr
    assert "AGENTDECK_TOKEN" in result.stderr and "tokens create" in result.stderr
    assert "Traceback" not in result.output
    # and with no token at all, it says none was given
    none = deck(web, "", "agents")
    assert none.exit_code == 4 and "no token given" in none.stderr
    # and the client raises Unauthorized over HTTP and over the WebSocket alike
    client = Client(web.url, wrong)
    with pytest.raises(Unauthorized) as http_401:
        client.jobs()
    assert http_401.value.error["code"] == "unauthorized"
    job_id = Client(web.url, admin_token).submit("echo", {"text": "x", "steps": 1})["id"]
    with pytest.raises(Unauthorized):
        list(client.events(job_id, timeout=10))


def test_bad_input_is_refused_with_the_field_and_nothing_is_sent(
    web: WebService, worker: WorkerService, admin_token: str
) -> None:
    # given an input the echo schema refuses, and a line that is not key=value
    # when they are submitted, then each is a one-line error with its own exit code
    bad = deck(web, admin_token, "submit", "echo", "text=x", "steps=lots")
    assert bad.exit_code == 3 and "invalid_input" in bad.stderr and "steps" in bad.stderr
    malformed = deck(web, admin_token, "submit", "echo", "text")
    assert malformed.exit_code == 2 and "expected key=value" in malformed.stderr
    unreachable = CliRunner().invoke(
        cli,
        ["--url", "http://127.0.0.1:9", "--token", admin_token, "agents"],
    )
    assert unreachable.exit_code == 3 and "cannot reach Agentdeck" in unreachable.stderr


def test_account_commands_make_a_token_the_job_commands_accept(
    web: WebService, worker: WorkerService, admin_token: str
) -> None:
    # given the launcher's account commands mounted in agentdeck (on the platform's database)
    name = f"viewer-{uuid.uuid4().hex[:8]}"
    added = deck(web, admin_token, "users", "add", name, "--role", "viewer")
    assert added.exit_code == 0, added.output
    # when a token is made for the new viewer
    made = deck(web, admin_token, "tokens", "create", name, "--name", "cli test")
    assert made.exit_code == 0, made.output
    token = made.stdout.strip()
    # then it reads over the API, and a submission is refused as not allowed (exit 4)
    assert deck(web, token, "jobs").exit_code == 0
    refused = deck(web, token, "submit", "echo", "text=x")
    assert refused.exit_code == 4 and "not allowed" in refused.stderr
    # and a login link points at the server given with --url
    link = deck(web, admin_token, "login-link", name)
    assert link.exit_code == 0 and link.stdout.startswith(f"{web.url}/login?token=")
