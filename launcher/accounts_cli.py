"""`python -m launcher users|tokens|login-link`: manage accounts on the platform's database.

Works on the same database the launcher uses (DATABASE_URL, else the SQLite
file in --data-dir), migrating it first, so it also creates the first admin
on a fresh install.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import click

from launcher.first_run import open_store
from launcher.migrate import upgrade
from webapp.auth.roles import Role
from webapp.auth.store import LOGIN_LINK_SECONDS, AccountError, AccountStore, TokenKind
from workers.settings import Settings

ROLES = click.Choice([r.value for r in Role])


def _store(data_dir: Path | None) -> AccountStore:
    settings = Settings.from_env()
    data = (data_dir or settings.data_dir).expanduser().resolve()
    url = os.environ.get("DATABASE_URL") or f"sqlite:///{data / 'agentdeck.db'}"
    upgrade(url)
    return open_store(url, settings.admin_token)


def _new_password() -> str:
    """From AGENTDECK_NEW_PASSWORD (scripts), else asked twice without echo."""
    given = os.environ.get("AGENTDECK_NEW_PASSWORD")
    secret = given or click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(secret) < 8:
        raise click.ClickException("a password needs 8 characters or more")
    return str(secret)


def _user_id(store: AccountStore, name: str) -> str:
    user = store.find_user(name)
    if user is None:
        raise click.ClickException(f"no user named {name!r}")
    return user.id


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="where the launcher keeps its SQLite file (AGENTDECK_DATA_DIR)",
)
@click.pass_context
def accounts(ctx: click.Context, data_dir: Path | None) -> None:
    """Users, API tokens and login links."""
    ctx.obj = _store(data_dir)


@accounts.group()
def users() -> None:
    """Add, list and change users."""


@users.command("add")
@click.argument("name")
@click.option("--role", type=ROLES, default=Role.OPERATOR.value, show_default=True)
@click.option("--password", is_flag=True, help="ask for a password (for the login page)")
@click.option("--all-jobs", is_flag=True, help="sees every user's jobs and the monitoring")
@click.pass_obj
def add_user(store: AccountStore, name: str, role: str, password: bool, all_jobs: bool) -> None:
    """Add a user NAME (an operator unless --role says otherwise)."""
    secret = (
        click.prompt("Password", hide_input=True, confirmation_prompt=True) if password else None
    )
    try:
        user = store.create_user(name, Role(role), password=secret, all_jobs=all_jobs)
    except AccountError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"user {user.name} ({user.role}) created, id {user.id}")


@users.command("list")
@click.pass_obj
def list_users(store: AccountStore) -> None:
    """Every user: name, role, id and flags."""
    for u in store.list_users():
        flags = [f for f, on in (("all-jobs", u.all_jobs), ("disabled", u.disabled)) if on]
        click.echo(f"{u.name:<24} {u.role:<9} {u.id}  {' '.join(flags)}".rstrip())


@users.command("set")
@click.argument("name")
@click.option("--role", type=ROLES)
@click.option("--disable/--enable", default=None, help="a disabled user's tokens stop working")
@click.option("--all-jobs/--own-jobs", default=None)
@click.option("--password", is_flag=True, help="ask for a new password")
@click.pass_obj
def set_user(
    store: AccountStore,
    name: str,
    role: str | None,
    disable: bool | None,
    all_jobs: bool | None,
    password: bool,
) -> None:
    """Change a user's role, password or visibility, or disable them."""
    secret = (
        click.prompt("Password", hide_input=True, confirmation_prompt=True) if password else None
    )
    user = store.update_user(
        _user_id(store, name),
        role=Role(role) if role else None,
        disabled=disable,
        all_jobs=all_jobs,
        password=secret,
    )
    click.echo(f"user {user.name}: {user.role}{' (disabled)' if user.disabled else ''}")


@accounts.group()
def tokens() -> None:
    """Make, list and revoke API tokens."""


@tokens.command("create")
@click.argument("user")
@click.option("--name", "token_name", required=True, help="what the token is for")
@click.option("--role", type=ROLES, help="a ceiling below the user's role")
@click.option("--expires-days", type=click.FloatRange(min=0, min_open=True))
@click.pass_obj
def create_token(
    store: AccountStore, user: str, token_name: str, role: str | None, expires_days: float | None
) -> None:
    """A new API token for USER, printed once."""
    token, secret = store.create_token(
        _user_id(store, user),
        token_name,
        role=Role(role) if role else None,
        expires_in=expires_days * 86400 if expires_days else None,
    )
    click.echo(f"token {token.id} for {user}; shown once, keep it safe:", err=True)
    click.echo(secret)


@tokens.command("list")
@click.argument("user", required=False)
@click.pass_obj
def list_tokens(store: AccountStore, user: str | None) -> None:
    """Live API tokens (of USER, or everyone's)."""
    names = {u.id: u.name for u in store.list_users()}
    for t in store.list_tokens(_user_id(store, user) if user else None):
        expires = time.strftime("%Y-%m-%d", time.localtime(t.expires_at)) if t.expires_at else "-"
        click.echo(
            f"{t.id}  {names.get(t.user_id, t.user_id):<20} {t.name:<24} "
            f"{t.role or '-':<9} expires {expires}"
        )


@tokens.command("revoke")
@click.argument("token_id")
@click.pass_obj
def revoke_token(store: AccountStore, token_id: str) -> None:
    """Revoke a token: it stops working, and its sockets close, within seconds."""
    try:
        store.get_token(token_id)
    except AccountError as exc:
        raise click.ClickException(exc.message) from None
    store.revoke_token(token_id)
    click.echo(f"token {token_id} revoked")


@accounts.command("login-link")
@click.argument("user", required=False, default="admin")
@click.option("--url", default="http://127.0.0.1:8000", show_default=True)
@click.pass_obj
def login_link(store: AccountStore, user: str, url: str) -> None:
    """A one-time login link for USER (default admin), valid for a day."""
    _, secret = store.create_token(
        _user_id(store, user), "login link", kind=TokenKind.LOGIN, expires_in=LOGIN_LINK_SECONDS
    )
    click.echo(f"{url.rstrip('/')}/login?token={secret}")


COMMANDS = frozenset(accounts.commands)
