"""Accounts and access: users with roles, API tokens, browser sessions, Origin and CSRF.

`init_auth(app)` puts the account store and the request guard on the app and
registers the login and account endpoints. See docs/security.md.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, g
from sqlalchemy.orm import sessionmaker
from werkzeug.middleware.proxy_fix import ProxyFix

from webapp.auth.guard import Guard, page_csrf_token
from webapp.auth.store import AccountStore
from workers.settings import Settings


def init_auth(app: Flask, settings: Settings, sessions: sessionmaker) -> AccountStore:
    from webapp.auth import views

    accounts = AccountStore(sessions, settings.admin_token)
    app.extensions["agentdeck_accounts"] = accounts
    Guard(settings, accounts).init_app(app)
    app.register_blueprint(views.bp)
    if settings.proxy_hops:
        hops = settings.proxy_hops
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops
        )

    @app.context_processor
    def _who() -> dict[str, Any]:
        return {"principal": g.get("principal"), "csrf_token": page_csrf_token()}

    return accounts
