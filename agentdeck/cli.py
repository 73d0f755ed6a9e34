"""`agentdeck`: run the platform, submit and follow jobs, manage accounts (docs/cli.md).

The job commands (`submit`, `jobs`, `tail`, `cancel`, `retry`, `answer`,
`agents`, `show`) talk to a server over HTTP and WebSocket through
`agentdeck.client`; `run` and the account commands (`users`, `tokens`,
`login-link`) are the launcher's and work on this machine's platform. Those
are imported only when used, so the client commands start fast and need
none of the server's code.

Exit codes: 0 done (a followed job succeeded); 1 a followed job failed;
2 a followed job was cancelled (or ended otherwise), or the command line was
wrong; 3 the server refused the request or could not be reached; 4 no valid
token (401) or not allowed (403); 130 Ctrl-C while following (the job goes on).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from agentdeck.client import (
    DEFAULT_URL,
    AgentdeckError,
    Client,
    ConnectionFailed,
    EventStream,
    Forbidden,
    Unauthorized,
)

EXIT_OK, EXIT_FAILURE, EXIT_OTHER, EXIT_ERROR, EXIT_AUTH = 0, 1, 2, 3, 4
EXIT_INTERRUPTED = 130  # Ctrl-C while following: the job itself goes on
STATE_STYLES = {
    "PENDING": "#3B82F6",
    "RECEIVED": "#3B82F6",
    "STARTED": "#F59E0B",
    "RETRY": "#F59E0B",
    "WAITING": "magenta",
    "SUCCESS": "#10B981",
    "FAILURE": "#EF4444",
    "REVOKED": "grey50",
}
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
TOKEN_HELP = (
    "Send an API token with --token or AGENTDECK_TOKEN. Make one on the server's machine "
    "with `agentdeck tokens create USER --name WHAT` (or POST /api/tokens with another "
    "token); the server's AGENTDECK_ADMIN_TOKEN works too."
)


# -- errors: one line, no traceback -------------------------------------------------------
class CliError(click.ClickException):
    """An expected failure: printed as `error: ...` on stderr, with its exit code."""

    def __init__(self, message: str, exit_code: int = EXIT_ERROR, hint: str = "") -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.hint = hint

    def show(self, file: IO[Any] | None = None) -> None:
        console = Console(file=file, stderr=file is None, highlight=False)
        console.print(f"[bold red]error:[/] {escape(self.message)}", soft_wrap=True)
        if self.hint:
            console.print(escape(self.hint), style="dim", soft_wrap=True)


def cli_error(exc: AgentdeckError, token: str) -> CliError:
    if isinstance(exc, Unauthorized):
        what = "the server refused the token" if token else "no token given"
        return CliError(f"{what} ({exc.status} {exc.code}: {exc.message})", EXIT_AUTH, TOKEN_HELP)
    if isinstance(exc, Forbidden):
        return CliError(f"not allowed: {exc.message} ({exc.code})", EXIT_AUTH)
    if isinstance(exc, ConnectionFailed):
        hint = "Is the server running (`agentdeck run`)? Point at it with --url or AGENTDECK_URL."
        return CliError(str(exc), EXIT_ERROR, hint)
    return CliError(str(exc), EXIT_ERROR)


# -- the group: lazy launcher commands, client errors turned into CliError ------------------
LAZY_HELP = {
    "run": "Run the platform on this machine (what `python -m launcher` does).",
    "users": "Add, list and change users (on this machine's database).",
    "tokens": "Make, list and revoke API tokens (on this machine's database).",
    "login-link": "A one-time login link for USER (default admin), valid for a day.",
}


class DeckGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *LAZY_HELP])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in LAZY_HELP and cmd_name not in self.commands:
            if cmd_name == "run":
                return run_command()
            return account_command(cmd_name)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, LAZY_HELP.get(name, "")) for name in self.list_commands(ctx)]
        rows = [
            (name, help_ or self.commands[name].get_short_help_str(limit=70))
            for name, help_ in rows
        ]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except AgentdeckError as exc:
            config = ctx.obj if isinstance(ctx.obj, Config) else None
            raise cli_error(exc, config.token if config else "") from None


@dataclass
class Config:
    url: str
    token: str
    _client: Client | None = field(default=None, repr=False)

    @property
    def client(self) -> Client:
        if self._client is None:
            try:
                self._client = Client(self.url, self.token)
            except ValueError as exc:
                raise CliError(str(exc), EXIT_OTHER) from None
        return self._client


@click.group(cls=DeckGroup, context_settings=CONTEXT)
@click.option(
    "--url",
    envvar="AGENTDECK_URL",
    default=DEFAULT_URL,
    show_default=True,
    help="the Agentdeck server (AGENTDECK_URL)",
)
@click.option(
    "--token",
    envvar="AGENTDECK_TOKEN",
    default="",
    show_default=False,
    help="an API token, sent as a bearer token (AGENTDECK_TOKEN)",
)
@click.pass_context
def cli(ctx: click.Context, url: str, token: str) -> None:
    """Agentdeck from a terminal: run the platform, submit and follow agent jobs."""
    ctx.obj = Config(url, token)
    ctx.call_on_close(lambda: ctx.obj._client.close() if ctx.obj._client else None)


def main(argv: Sequence[str] | None = None) -> int:
    """The console script `agentdeck` (and `python -m agentdeck`)."""
    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="agentdeck")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0


# -- input parsing --------------------------------------------------------------------------
def _refuse_constant(name: str) -> Any:
    raise ValueError(name)


def parse_value(text: str) -> Any:
    """JSON when it parses as JSON (NaN and Infinity do not), else the text as a string."""
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except ValueError:
        return text


def parse_input(pairs: Sequence[str], json_file: str | None) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if json_file is not None:
        try:
            raw = sys.stdin.read() if json_file == "-" else Path(json_file).read_text("utf-8")
            loaded = json.loads(raw, parse_constant=_refuse_constant)
        except OSError as exc:
            raise CliError(f"cannot read {json_file}: {exc.strerror or exc}", EXIT_OTHER) from None
        except ValueError as exc:
            raise CliError(f"{json_file} is not JSON: {exc}", EXIT_OTHER) from None
        if not isinstance(loaded, dict):
            raise CliError(f"{json_file} must hold a JSON object (the input)", EXIT_OTHER)
        data.update(loaded)
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CliError(f"expected key=value, got {pair!r}", EXIT_OTHER)
        data[key] = parse_value(value)
    return data


# -- following a job -------------------------------------------------------------------------
def _short(value: Any, limit: int = 200) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


class Follower:
    """Prints a job's events as they come: `output` text on stdout as it arrives, the rest
    as lines on stderr, and `progress` as a bar on a terminal (as lines elsewhere).

    While the bar is drawn (stdout and stderr both a terminal), output is printed above
    it a line at a time, through the bar's console."""

    def __init__(self, job_id: str, out: Console, err: Console) -> None:
        self.job = job_id
        self.out = out
        self.err = err
        self.mid_line = False  # stdout holds output text not ended by a newline
        self.pending = ""  # output held back while the bar is drawn (whole lines only)
        self.bar: Progress | None = None
        self.task: Any = None
        self.state = ""

    def follow(self, stream: EventStream) -> str:
        try:
            for event in stream:
                self.show(event)
        finally:
            self.stop_bar()
            if self.mid_line:
                self.out.print()
                self.mid_line = False
        return self.state

    def show(self, event: dict[str, Any]) -> None:
        self.state = str(event.get("state") or self.state)
        kind = str(event.get("type"))
        data = event.get("data") or {}
        if kind == "output":
            self.text(str(data.get("text", "")))
        elif kind == "progress":
            self.progress(data.get("done"), data.get("total"))
        else:
            line = self.line(kind, data)
            if line is not None:
                self.say(line)

    def text(self, chunk: str) -> None:
        if self.bar is not None:
            self.pending += chunk
            whole, _, self.pending = self.pending.rpartition("\n")
            if whole:
                self.bar.console.print(Text(whole), highlight=False)
            return
        self.out.print(Text(chunk), end="", highlight=False, soft_wrap=True)
        self.out.file.flush()
        self.mid_line = not chunk.endswith("\n") if chunk else self.mid_line

    def progress(self, done: Any, total: Any) -> None:
        if not isinstance(done, int | float) or not isinstance(total, int | float):
            return
        if not (self.err.is_terminal and self.out.is_terminal):
            # the bar is for a person at a terminal; a pipe or a file gets lines
            self.say(Text(f"  progress {done:g}/{total:g}", style="dim"))
            return
        if self.bar is None:
            self.end_line()
            self.bar = Progress(
                TextColumn("[dim]progress"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=self.err,
                transient=True,
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self.bar.start()
            self.task = self.bar.add_task("progress", total=total)
        self.bar.update(self.task, completed=done, total=total)

    def stop_bar(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None
            if self.pending:
                self.out.print(Text(self.pending), end="", highlight=False, soft_wrap=True)
                self.mid_line = not self.pending.endswith("\n")
                self.pending = ""

    def end_line(self) -> None:
        if self.mid_line:
            self.out.print()
            self.mid_line = False

    def say(self, line: Text) -> None:
        self.end_line()
        if self.bar is not None:
            if self.pending:  # output not ended by a newline: it goes first, as a line
                self.bar.console.print(Text(self.pending), highlight=False)
                self.pending = ""
            self.bar.console.print(line, highlight=False)
        else:
            self.err.print(line, highlight=False)

    def line(self, kind: str, data: dict[str, Any]) -> Text | None:
        dim = "dim"
        if kind == "job.queued":
            return Text(f"queued on {data.get('queue') or 'celery'}", style=dim)
        if kind == "job.received":
            return Text(f"received by {data.get('worker', '?')}", style=dim)
        if kind == "job.started":
            return Text(f"started on {data.get('worker', '?')}", style=dim)
        if kind == "job.retrying":
            return Text(f"retrying: {_short(data.get('reason', ''))}", style="yellow")
        if kind == "step.started":
            return Text(f"▸ {data.get('name', '')}", style=dim)
        if kind == "step.finished":
            ms = data.get("duration_ms")
            took = f" ({ms:.0f} ms)" if isinstance(ms, int | float) else ""
            if data.get("error"):
                return Text(f"✗ {data.get('name', '')}{took}: {data['error']}", style="red")
            return Text(f"✓ {data.get('name', '')}{took}", style=dim)
        if kind == "log":
            level = str(data.get("level") or "info")
            style = {"warning": "yellow", "error": "red", "critical": "bold red"}.get(level, dim)
            return Text(f"[{level}] {data.get('message', '')}", style=style)
        if kind == "tool.called":
            return Text(f"→ {data.get('tool', '')}({_short(data.get('args'))})", style="cyan")
        if kind == "tool.returned":
            if "error" in data:
                return Text(f"← {data.get('tool', '')} raised {_short(data['error'])}", "red")
            return Text(f"← {data.get('tool', '')}: {_short(data.get('result'))}", style="cyan")
        if kind == "input.requested":
            return Text(
                f"? {_short(data.get('question', ''), 500)}\n"
                f"  answer with: agentdeck answer {self.job} VALUE",
                style="bold magenta",
            )
        if kind == "input.received":
            return Text(f"answered: {_short(data.get('answer'))}", style="magenta")
        if kind == "job.succeeded":
            return Text(f"SUCCESS  result: {_short(data.get('result'))}", style="bold #10B981")
        if kind == "job.failed":
            return Text(f"FAILURE  {data.get('error', '')}", style="bold #EF4444")
        if kind == "job.cancelled":
            return Text(f"REVOKED  {data.get('reason') or 'cancelled'}", style="bold")
        if kind == "job.lost":
            return Text(f"lost its worker: {data.get('error', '')}", style="yellow")
        if kind in ("job.waiting", "job.suspended", "job.resumed"):
            return Text(kind.split(".", 1)[1], style=dim)
        return Text(f"{kind} {_short(data)}", style=dim)


def exit_code_for(state: str) -> int:
    return {"SUCCESS": EXIT_OK, "FAILURE": EXIT_FAILURE}.get(state, EXIT_OTHER)


def follow_job(config: Config, job_id: str, since: int = 0) -> int:
    follower = Follower(job_id, Console(highlight=False), Console(stderr=True, highlight=False))
    with config.client.events(job_id, since=since) as stream:
        try:
            state = follower.follow(stream)
        except KeyboardInterrupt:
            follower.err.print(
                f"stopped following; the job goes on (agentdeck tail {job_id} --since "
                f"{stream.last} to pick it up again)",
                style="dim",
                soft_wrap=True,
            )
            return EXIT_INTERRUPTED
    return exit_code_for(state or str(config.client.get(job_id).get("state")))


# -- the job commands ------------------------------------------------------------------------
pass_config = click.make_pass_decorator(Config)


def _err() -> Console:
    return Console(stderr=True, highlight=False)


def _table_console() -> Console:
    """stdout for tables: the terminal's width, or wide enough for whole ids in a pipe."""
    console = Console(highlight=False)
    return console if console.is_terminal else Console(highlight=False, width=200)


def _state(state: str) -> Text:
    return Text(state, style=STATE_STYLES.get(state, ""))


def _when(ts: Any) -> str:
    if not isinstance(ts, int | float):
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


@cli.command(short_help="Submit a job to AGENT; --follow streams it to its end.")
@click.argument("agent")
@click.argument("inputs", nargs=-1, metavar="[KEY=VALUE]...")
@click.option(
    "--json", "json_file", metavar="FILE", help="the input as a JSON object (- for stdin)"
)
@click.option("--queue", "-Q", metavar="Q", help="the queue to send it to")
@click.option("--priority", type=click.IntRange(0, 9), help="0-9")
@click.option("--idempotency-key", metavar="KEY", help="the same key again returns the first job")
@click.option("--follow", "-f", is_flag=True, help="stream the job's events until it ends")
@pass_config
def submit(
    config: Config,
    agent: str,
    inputs: tuple[str, ...],
    json_file: str | None,
    queue: str | None,
    priority: int | None,
    idempotency_key: str | None,
    follow: bool,
) -> None:
    """Submit a job to AGENT with KEY=VALUE inputs (values are JSON when they parse as JSON,
    else strings). Prints the job id; with --follow, streams the run and exits 0 on SUCCESS,
    1 on FAILURE, 2 otherwise."""
    data = parse_input(inputs, json_file)
    job = config.client.submit(
        agent, data, queue, priority=priority, idempotency_key=idempotency_key
    )
    if not follow:
        click.echo(job["id"])
        return
    _err().print(Text(f"{agent} job {job['id']}", style="bold"))
    sys.exit(follow_job(config, job["id"]))


@cli.command(short_help="Follow a job's events live until it ends.")
@click.argument("job_id", metavar="JOB")
@click.option("--since", type=click.IntRange(min=0), default=0, help="start after this seq")
@pass_config
def tail(config: Config, job_id: str, since: int) -> None:
    """Follow JOB from its start (or after --since N) until it ends; exits as submit -f."""
    sys.exit(follow_job(config, job_id, since))


@cli.command()
@click.option(
    "--state", "states", multiple=True, help="one state or a comma-separated list (repeatable)"
)
@click.option("--agent", help="only this agent's jobs")
@click.option("-q", "query", help="search id, agent, task name, args and error")
@click.option("--limit", type=click.IntRange(1, 200), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="print the jobs as JSON")
@pass_config
def jobs(
    config: Config,
    states: tuple[str, ...],
    agent: str | None,
    query: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """List jobs, newest first."""
    wanted = [s.strip().upper() for part in states for s in part.split(",") if s.strip()]
    page = config.client.jobs(state=wanted or None, agent=agent, q=query, limit=limit)
    if as_json:
        click.echo(json.dumps(list(page), indent=2))
        return
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("id", no_wrap=True, min_width=8)
    table.add_column("agent", no_wrap=True)
    table.add_column("state", no_wrap=True)
    table.add_column("created", no_wrap=True)
    table.add_column("runtime", justify="right", no_wrap=True)
    table.add_column("error", overflow="ellipsis", no_wrap=True, max_width=40)
    for job in page:
        runtime = job.get("runtime")
        table.add_row(
            str(job["id"]),
            str(job.get("agent") or job.get("name") or ""),
            _state(str(job.get("state"))),
            _when(job.get("created_at")),
            f"{runtime:.2f}s" if isinstance(runtime, int | float) else "",
            str(job.get("error") or ""),
        )
    console = _table_console()
    if not page:
        _err().print("no jobs", style="dim")
    else:
        console.print(table)
    counts = "  ".join(f"{state} {n}" for state, n in sorted(page.counts.items()) if n)
    if counts:
        _err().print(Text(counts, style="dim"))


@cli.command()
@click.argument("job_id", metavar="JOB")
@pass_config
def show(config: Config, job_id: str) -> None:
    """Print JOB as JSON."""
    click.echo(json.dumps(config.client.get(job_id), indent=2))


@cli.command()
@click.argument("job_id", metavar="JOB")
@pass_config
def cancel(config: Config, job_id: str) -> None:
    """Cancel JOB (cooperatively, then forced after 5 s)."""
    job = config.client.cancel(job_id)
    _err().print(Text.assemble("cancelling ", str(job["id"]), " (", _state(job["state"]), ")"))


@cli.command(short_help="Run a job again as a new job (prints its id).")
@click.argument("job_id", metavar="JOB")
@click.option("--from-failure", is_flag=True, help="resume a durable run where it failed")
@click.option("--follow", "-f", is_flag=True, help="stream the new job until it ends")
@pass_config
def retry(config: Config, job_id: str, from_failure: bool, follow: bool) -> None:
    """Run JOB's agent and input again as a new job; prints the new job's id."""
    job = config.client.retry(job_id, from_failure=from_failure)
    if not follow:
        click.echo(job["id"])
        return
    _err().print(Text(f"retry of {job_id}: job {job['id']}", style="bold"))
    sys.exit(follow_job(config, job["id"]))


@cli.command(short_help="Answer the question a WAITING job asked.")
@click.argument("job_id", metavar="JOB")
@click.argument("value")
@pass_config
def answer(config: Config, job_id: str, value: str) -> None:
    """Answer the question JOB asked with VALUE (JSON when it parses as JSON, else a string)."""
    job = config.client.answer(job_id, parse_value(value))
    _err().print(Text.assemble("answered ", str(job["id"]), " (", _state(job["state"]), ")"))


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="print the agents as JSON")
@pass_config
def agents(config: Config, as_json: bool) -> None:
    """The server's agents and their inputs."""
    found = config.client.agents()
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("agent", no_wrap=True, style="bold")
    table.add_column("inputs")
    table.add_column("description")
    for spec in found:
        table.add_row(
            str(spec["name"]), _inputs(spec.get("input_schema") or {}), spec.get("description")
        )
    _table_console().print(table)


def _inputs(schema: dict[str, Any]) -> str:
    required = set(schema.get("required") or [])
    parts = []
    for name, prop in (schema.get("properties") or {}).items():
        kind = (prop.get("type") or "any") if isinstance(prop, dict) else "any"
        default = (
            f"={json.dumps(prop['default'])}"
            if isinstance(prop, dict) and "default" in prop
            else ""
        )
        parts.append(f"{name}: {kind}{default}" + ("" if name in required or default else "?"))
    return ", ".join(parts)


# -- the launcher's commands, imported when used ----------------------------------------------
def run_command() -> click.Command:
    @click.command(
        "run",
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
        add_help_option=False,
        help=LAZY_HELP["run"] + " Takes the launcher's flags (run --help lists them).",
    )
    @click.pass_context
    def run(ctx: click.Context) -> None:
        from launcher.cli import main as launcher_main

        sys.exit(launcher_main(list(ctx.args)))

    return run


def account_command(name: str) -> click.Command:
    """`users`, `tokens` or `login-link` from launcher/accounts_cli.py, with `--data-dir`."""
    from launcher import accounts_cli

    original = accounts_cli.accounts.commands[name]
    data_dir = click.Option(
        ["--data-dir"],
        type=click.Path(path_type=Path),
        default=None,
        help="where the launcher keeps its SQLite file (AGENTDECK_DATA_DIR)",
    )

    if isinstance(original, click.Group):

        @click.pass_context
        def open_group(ctx: click.Context, data_dir: Path | None) -> None:
            ctx.obj = accounts_cli._store(data_dir)

        return click.Group(
            name,
            commands=original.commands,
            callback=open_group,
            params=[data_dir],
            help=original.help,
            context_settings=CONTEXT,
        )

    @click.pass_context
    def run_one(ctx: click.Context, data_dir: Path | None, **kwargs: Any) -> None:
        if ctx.get_parameter_source("url") == click.core.ParameterSource.DEFAULT:
            root = ctx.find_root().obj
            if isinstance(root, Config):
                kwargs["url"] = root.url
        ctx.obj = accounts_cli._store(data_dir)
        assert original.callback is not None
        ctx.invoke(original.callback, **kwargs)

    return click.Command(
        name,
        callback=run_one,
        params=[data_dir, *original.params],
        help=original.help,
        context_settings=CONTEXT,
    )
