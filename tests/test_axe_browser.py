"""axe-core scans the chat page: no violation of any impact, light and dark, wide and narrow.

axe-core is committed under tests/vendor/ (see its manifest.json): the tests need no network.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import EchoBot, served_in_thread
from tests.screenshots import ANSWER

pytestmark = pytest.mark.browser
TIMEOUT = 15_000
VENDOR = Path(__file__).parent / "vendor"


def axe_source() -> str:
    """The committed axe-core, checked against its manifest."""
    (entry,) = json.loads((VENDOR / "manifest.json").read_text())["files"]
    data = (VENDOR / entry["file"]).read_bytes()
    assert hashlib.sha256(data).hexdigest() == entry["sha256"], "axe-core differs from manifest"
    return data.decode()


@pytest.fixture(scope="module")
def axe() -> str:
    return axe_source()


@pytest.fixture
def url(data_dir: Path) -> Iterator[str]:
    with served_in_thread(data_dir, EchoBot()) as login:
        yield login


def violations(page, axe: str) -> list[str]:
    """Every axe violation on the page, as "rule (impact): where" lines."""
    page.evaluate(axe)  # evaluated by the test driver, not by the page: its CSP still holds
    result = page.evaluate(
        "() => axe.run(document, {resultTypes: ['violations']})"
        ".then(r => r.violations.map(v => `${v.id} (${v.impact}): ` +"
        " v.nodes.map(n => n.target.join(' ')).join(', ')))"
    )
    return list(result)


def chat(page, url: str, text: str = ANSWER) -> None:
    page.goto(url)
    page.wait_for_selector('#connection[data-state="open"]', state="attached", timeout=TIMEOUT)
    page.fill("#composer-input", text)
    page.press("#composer-input", "Enter")
    page.wait_for_selector("article.msg-assistant[data-status=complete]", timeout=TIMEOUT)
    page.wait_for_selector("article.msg-assistant .code-block")


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_chat_page_has_no_axe_violations(browser, url: str, axe: str, scheme: str) -> None:
    context = browser.new_context(viewport={"width": 1100, "height": 760}, color_scheme=scheme)
    page = context.new_page()
    try:
        page.goto(url)
        page.wait_for_selector('#connection[data-state="open"]', timeout=TIMEOUT)
        assert violations(page, axe) == []  # the empty conversation
        chat(page, url)
        assert violations(page, axe) == []
        page.click(".menu-button")
        page.click(".chat-settings-button")
        page.wait_for_selector(".chat-settings-form", timeout=TIMEOUT)
        assert violations(page, axe) == []  # the menu open, chat settings in it
        page.click(".shortcuts-button")
        assert violations(page, axe) == []
    finally:
        context.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_narrow_page_and_its_drawer_have_no_axe_violations(
    browser, url: str, axe: str, scheme: str
) -> None:
    context = browser.new_context(viewport={"width": 360, "height": 740}, color_scheme=scheme)
    page = context.new_page()
    try:
        chat(page, url)
        assert violations(page, axe) == []
        page.click(".menu-button")
        assert violations(page, axe) == []  # the menu open
        page.keyboard.press("Escape")
        page.click("#drawer-toggle")
        page.wait_for_timeout(300)
        assert violations(page, axe) == []
    finally:
        context.close()
