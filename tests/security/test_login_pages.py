"""Logging in and out in Chromium, and the account page's tokens and users."""

from __future__ import annotations

import re
import time
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.support import WebService, http


def test_a_visitor_logs_in_with_a_token_and_out_again(
    anonymous_page: Page, web: WebService, admin_token: str, screenshots: Path
) -> None:
    page = anonymous_page
    # given a visitor who is not logged in, opening the agents page
    page.goto(f"{web.url}/agents")
    # then they are sent to the login page, which remembers where they were going
    expect(page).to_have_url(re.compile(r"/login\?next=/agents$"))
    page.screenshot(path=str(screenshots / "login.png"))
    # when they log in with a wrong token, they are told so and stay
    page.fill("#token", "adk_wrong")
    page.click("button[type=submit]")
    expect(page.locator("#login-error")).to_contain_text("Wrong")
    # when they log in with a right one, they land where they were going
    page.fill("#token", admin_token)
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{web.url}/agents")
    expect(page.locator(".who-name")).to_have_text("admin")
    # when they log out, the session ends on the server too
    cookie = next(c for c in page.context.cookies() if c["name"] == "agentdeck_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    page.click("#logout")
    expect(page).to_have_url(re.compile(r"/login"))
    replay = http.get(f"{web.url}/api/me", token="", cookies={cookie["name"]: cookie["value"]})
    assert replay.status_code == 401


def test_a_login_link_drops_the_token_from_the_address(
    anonymous_page: Page, web: WebService
) -> None:
    # given a one-time login link for a new operator
    user = http.post(
        f"{web.url}/api/users", json={"name": f"linky-{time.time_ns()}", "role": "operator"}
    ).json()
    made = http.post(f"{web.url}/api/tokens", json={"user_id": user["id"], "name": "x"}).json()
    # when it is opened with a `next`
    anonymous_page.goto(f"{web.url}/login?token={made['token']}&next=/agents")
    # then the browser is logged in, on that page, with no token in the address
    expect(anonymous_page).to_have_url(f"{web.url}/agents")
    expect(anonymous_page.locator(".who-name")).to_have_text(user["name"])
    # and an operator's header has no monitoring links
    expect(anonymous_page.locator("nav a", has_text="Workers")).to_have_count(0)


def test_the_account_page_makes_and_revokes_tokens_and_adds_users(
    page: Page, web: WebService, screenshots: Path
) -> None:
    # given the admin on the account page
    page.goto(f"{web.url}/account")
    # when they make a token
    name = f"deploy-{time.time_ns()}"
    page.fill("#token-name", name)
    page.select_option("#token-role", "viewer")
    page.click("#token-form button[type=submit]")
    # then its secret is shown once, and it works, capped at viewer
    secret = page.locator("#new-token-value")
    expect(secret).to_have_text(re.compile(r"^adk_"))
    me = http.get(f"{web.url}/api/me", token=secret.inner_text()).json()
    assert me["role"] == "viewer"
    row = page.locator(f"#tokens tr:has-text('{name}')")
    expect(row).to_have_count(1)
    # when an admin adds a user
    user = f"newbie-{time.time_ns() % 10**8}"
    page.fill("#user-name", user)
    page.click("#user-form button[type=submit]")
    expect(page.locator(f"#users tr[data-user='{user}']")).to_have_count(1)
    page.screenshot(path=str(screenshots / "account.png"), full_page=True)
    # when they revoke the token, it stops working
    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Revoke").click()
    expect(row).to_have_count(0)
    assert http.get(f"{web.url}/api/me", token=secret.inner_text()).status_code == 401


def test_a_user_logs_in_with_a_name_and_password(anonymous_page: Page, web: WebService) -> None:
    # given a viewer with a password
    name = f"pw-{time.time_ns() % 10**9}"
    r = http.post(
        f"{web.url}/api/users", json={"name": name, "role": "viewer", "password": "long enough pw"}
    )
    assert r.status_code == 201
    anonymous_page.goto(f"{web.url}/login")
    # when a wrong password is given, then no session
    anonymous_page.fill("#name", name)
    anonymous_page.fill("#password", "not the one")
    anonymous_page.click("button[type=submit]")
    expect(anonymous_page.locator("#login-error")).to_contain_text("Wrong")
    # when the right one is, then the viewer is in, and cannot submit jobs
    anonymous_page.fill("#password", "long enough pw")
    anonymous_page.click("button[type=submit]")
    expect(anonymous_page.locator(".who-name")).to_have_text(name)
    status = anonymous_page.evaluate(
        """async () => (await fetch("/api/jobs", {method: "POST",
            headers: {"Content-Type": "application/json",
                      "X-CSRF-Token": document.querySelector('meta[name=csrf-token]').content},
            body: JSON.stringify({agent: "echo", input: {text: "x"}})})).status"""
    )
    assert status == 403
