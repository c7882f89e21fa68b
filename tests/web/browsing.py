"""Browsing the console in a real headless Chromium (Debian's /usr/bin/chromium driven by
Playwright), served by uvicorn on loopback against the test runtime and its frozen clock.
Its fixtures (`browser`, `console`, `desktop`) reach every test here through
tests/web/conftest.py; a browser test module says `pytestmark = needs_browser`, which skips
it where Chromium or Playwright is missing (and fails instead under
HUYING_BROWSER_TESTS=required, as in CI).

Screenshots go to a temporary folder; with HUYING_SCREENSHOTS=docs they replace
docs/screenshots/, the pictures the README shows.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from huying.auth.service import Principal
from huying.runtime import Runtime
from tests.web.conftest import PASSWORD, console_app
from tests.web.live import serving

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = (
    Path(__file__).resolve().parents[2] / "docs" / "screenshots"
    if os.environ.get("HUYING_SCREENSHOTS") == "docs"
    else Path(tempfile.mkdtemp(prefix="huying-screenshots-"))
)
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}

try:
    from playwright import sync_api
except ImportError:  # pragma: no cover - depends on the machine
    sync_api = None  # type: ignore[assignment]

MISSING = (
    "Playwright's Python package is missing: pip install playwright (never `playwright install`)"
    if sync_api is None
    else "/usr/bin/chromium is missing: apt-get install -y chromium"
    if not CHROMIUM.exists()
    else ""
)
if MISSING and os.environ.get("HUYING_BROWSER_TESTS") == "required":  # CI: never skip quietly
    pytest.fail(MISSING, pytrace=False)
# A browser test module says `pytestmark = needs_browser`.
needs_browser = pytest.mark.skipif(bool(MISSING), reason=MISSING or "-")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def console(rt: Runtime, staff: dict[str, Principal]) -> Iterator[str]:
    with serving(console_app(rt)) as url:
        yield url


@pytest.fixture
def desktop(browser: Any) -> Iterator[Any]:
    context = browser.new_context(
        viewport=DESKTOP, locale="zh-CN", timezone_id="Asia/Shanghai", device_scale_factor=1
    )
    # Playwright's own 30 s, as the phone contexts have: a page that never loads still fails,
    # and one that takes over 10 s while `./dev test` keeps every core busy does not
    context.set_default_timeout(30_000)
    yield context
    context.close()


def shot(page: Any, name: str, *, full: bool = False) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=full, animations="disabled")


def sign_in(page: Any, base: str, username: str, *, screenshot: str = "") -> None:
    page.goto(f"{base}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    if screenshot:
        shot(page, screenshot)
    page.click("button[type=submit]")
    page.wait_for_load_state()
    assert "/login" not in page.url, page.content()
