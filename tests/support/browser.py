"""Browser fixtures, a pytest plugin: Debian's Chromium driven by Playwright.

Loaded once from tests/conftest.py, so the page tests and the monitoring
tests share one Playwright and one browser (two sync Playwrights cannot run
in one process). Adds the browser, a page per test that fails the test on any
uncaught script error or CSP violation, and a phone-sized page.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright, expect, sync_playwright

from tests.browser.helpers import PageErrors
from tests.support.chromium import CHROMIUM_ARGS

EXPECT_TIMEOUT_MS = 20_000


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("no chromium on PATH (.ci/run installs Debian's chromium)")
    browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    yield browser
    browser.close()


@pytest.fixture(scope="session")
def screenshots(output_dir: Path) -> Path:
    """test-output/<run>/screenshots/: one PNG per page and viewport."""
    folder = output_dir / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _new_page(
    browser: Browser, errors: PageErrors, login_url: str | None, **context_args: object
) -> Page:
    context = browser.new_context(**context_args)  # type: ignore[arg-type]
    context.set_default_timeout(EXPECT_TIMEOUT_MS)
    if login_url is not None:
        # The login link sets the session cookie in this context's jar, as a click would.
        assert context.request.get(login_url, max_redirects=0).status == 302
    page = context.new_page()
    page.on("pageerror", lambda exc: errors.uncaught.append(str(exc)))

    def on_console(msg: ConsoleMessage) -> None:
        if msg.type == "error" and "Content Security Policy" in msg.text:
            errors.csp.append(msg.text)

    page.on("console", on_console)
    return page


@pytest.fixture
def page_errors() -> PageErrors:
    return PageErrors()


def _admin_login_url(request: pytest.FixtureRequest) -> str:
    web = request.getfixturevalue("web")
    token = request.getfixturevalue("admin_token")
    return f"{web.url}/login?token={token}"


@pytest.fixture
def page(
    browser: Browser, page_errors: PageErrors, request: pytest.FixtureRequest
) -> Iterator[Page]:
    """A desktop-sized page in a fresh context, logged in as the admin; the test fails on
    script errors."""
    page = _new_page(
        browser, page_errors, _admin_login_url(request), viewport={"width": 1280, "height": 900}
    )
    yield page
    page.context.close()
    page_errors.assert_clean()


@pytest.fixture
def anonymous_page(browser: Browser, page_errors: PageErrors) -> Iterator[Page]:
    """A desktop-sized page in a fresh context that has not logged in."""
    page = _new_page(browser, page_errors, None, viewport={"width": 1280, "height": 900})
    yield page
    page.context.close()
    page_errors.assert_clean()


@pytest.fixture
def phone(
    browser: Browser, page_errors: PageErrors, request: pytest.FixtureRequest
) -> Iterator[Page]:
    """A phone-sized page (390x844, touch, 3x), logged in as the admin."""
    page = _new_page(
        browser,
        page_errors,
        _admin_login_url(request),
        viewport={"width": 390, "height": 844},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
    )
    yield page
    page.context.close()
    page_errors.assert_clean()
