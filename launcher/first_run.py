"""Safe first run: an admin account, a one-time login link, and no open port by mistake."""

from __future__ import annotations

import ipaddress
import logging

from webapp.auth.store import LOGIN_LINK_SECONDS, AccountStore, TokenKind
from workers.models import make_engine, make_sessionmaker

log = logging.getLogger("agentdeck.launcher")


class UnsafeStart(RuntimeError):
    """Starting as asked would leave the platform open to the network."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def open_store(database_url: str, admin_token: str = "") -> AccountStore:
    return AccountStore(make_sessionmaker(make_engine(database_url)), admin_token)


def prepare_access(
    database_url: str, *, host: str, admin_token: str, insecure_no_auth: bool
) -> str | None:
    """The secret of a one-time login link for the admin, or None without auth.

    Refuses (UnsafeStart) to serve a non-loopback address with no admin account and no
    admin token, unless auth is explicitly off."""
    if insecure_no_auth:
        where = "to every machine that reaches it" if not is_loopback(host) else "to this machine"
        log.warning("--insecure-no-auth: anyone who can reach %s acts as admin (%s)", host, where)
        return None
    store = open_store(database_url, admin_token)
    try:
        if not is_loopback(host) and not admin_token and not store.has_admin():
            raise UnsafeStart(
                f"refusing to serve {host} with no admin account: create one first "
                "(python -m launcher users add NAME --role admin --password), set "
                "AGENTDECK_ADMIN_TOKEN, or pass --insecure-no-auth to run without logins"
            )
        admin_id = store.admin_user_id() if not store.has_admin() else _first_admin(store)
        _, secret = store.create_token(
            admin_id, "login link", kind=TokenKind.LOGIN, expires_in=LOGIN_LINK_SECONDS
        )
        return secret
    finally:
        store.sessions.kw["bind"].dispose()


def _first_admin(store: AccountStore) -> str:
    admins = [u for u in store.list_users() if u.role == "admin" and not u.disabled]
    named = [u for u in admins if u.name == "admin"]
    return (named or admins)[0].id
