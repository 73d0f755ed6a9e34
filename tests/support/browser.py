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


def _new_page(browser: Browser, errors: PageErrors, **context_args: object) -> Page:
    context = browser.new_context(**context_args)  # type: ignore[arg-type]
    context.set_default_timeout(EXPECT_TIMEOUT_MS)
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


@pytest.fixture
def page(browser: Browser, page_errors: PageErrors) -> Iterator[Page]:
    """A desktop-sized page in a fresh context; the test fails on script errors."""
    page = _new_page(browser, page_errors, viewport={"width": 1280, "height": 900})
    yield page
    page.context.close()
    page_errors.assert_clean()


@pytest.fixture
def phone(browser: Browser, page_errors: PageErrors) -> Iterator[Page]:
    """A phone-sized page (390x844, touch, 3x)."""
    page = _new_page(
        browser,
        page_errors,
        viewport={"width": 390, "height": 844},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
    )
    yield page
    page.context.close()
    page_errors.assert_clean()
