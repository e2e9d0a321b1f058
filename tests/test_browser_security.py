"""In a real browser: the launcher's first load with a Strict cookie, and inert hostile text."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from htmxchat.access import write_open_file
from htmxchat.ids import new_id
from tests.helpers import WATCH_CSP, EchoBot, ServerProcess, assert_inert, served_in_thread

pytestmark = pytest.mark.browser

# Each string tries a different way to make htmx or the browser act on chat text.
PAYLOADS = [
    '<script>window.__pwned = "script"</script>',
    '<img src="/pwned-img" onerror="window.__pwned = \'img\'">',
    '<div hx-get="/pwned-get" hx-trigger="load">load me</div>',
    '<span hx-trigger="load" hx-get="/pwned-trigger" hx-swap="outerHTML">x</span>',
    '<div id="composer" hx-swap-oob="true">composer replaced</div>',
    '<button hx-on:click="window.__pwned = \'hx-on\'" hx-on::load="window.__pwned = 1">b</button>',
    '"><svg onload="window.__pwned = \'svg\'">',
]


@pytest.fixture
def echo_server(data_dir: Path) -> Iterator[str]:
    """The app with the echo bot, served from a thread; yields the login URL."""
    with served_in_thread(data_dir, EchoBot()) as url:
        yield url


def wait_connected(page) -> None:
    page.wait_for_selector('#connection[data-state="open"]', timeout=10_000)


def test_first_load_through_the_launcher_file_works_with_a_strict_cookie(
    page, echo_server: str, data_dir: Path
) -> None:
    base = echo_server.split("?")[0]
    opener = write_open_file(data_dir, echo_server)
    page.goto(opener.as_uri())
    page.wait_for_url(re.compile(re.escape(base) + r"c/[0-9a-z]+$"), timeout=10_000)
    wait_connected(page)
    assert "token" not in page.url
    (cookie,) = page.context.cookies(base)
    assert cookie["sameSite"] == "Strict" and cookie["httpOnly"]
    assert page.evaluate("document.cookie") == ""  # scripts cannot read it
    # other pages of the same server keep working with the cookie alone
    page.goto(base + f"c/{new_id()}")
    wait_connected(page)


def test_hostile_user_and_model_text_stays_inert(page, echo_server: str) -> None:
    page.add_init_script(WATCH_CSP)
    page.goto(echo_server)
    wait_connected(page)
    page.evaluate("window.__pwned = undefined")
    before = len(page.requested_urls)
    for payload in PAYLOADS:
        replies = page.locator('article.msg-assistant[data-status="complete"]').count()
        page.fill("#composer-input", payload)
        page.press("#composer-input", "Enter")
        page.wait_for_function(
            "n => document.querySelectorAll("
            "'article.msg-assistant[data-status=\"complete\"]').length > n",
            arg=replies,
            timeout=10_000,
        )
        user = page.locator("article.msg-user .msg-body").last.text_content()
        reply = page.locator("article.msg-assistant .msg-body").last.text_content()
        # shown as text, exactly (the reply is a rendered paragraph: no markup survives)
        assert user == payload and (reply or "").strip() == payload
    page.wait_for_timeout(300)  # give any load trigger time to fire
    assert_inert(page)
    page.reload()  # the same text rendered by the page instead of streamed fragments
    wait_connected(page)
    page.wait_for_timeout(300)
    assert_inert(page)
    last = page.locator("article.msg-assistant .msg-body").last.text_content()
    assert (last or "").strip() == PAYLOADS[-1]
    requested = page.requested_urls[before:]
    assert not [url for url in requested if "pwned" in url], requested


def test_the_policy_blocks_inline_script_in_the_browser(
    page, echo_server: str, browser_errors
) -> None:
    browser_errors.expect("Executing inline script violates the following Content Security")
    page.add_init_script(WATCH_CSP)
    page.goto(echo_server)
    wait_connected(page)
    page.evaluate(
        """() => {
          const s = document.createElement("script");
          s.textContent = "window.__inline = 1";
          document.body.append(s);
        }"""
    )
    # A function, not an expression: Playwright evals expression strings, which the CSP blocks.
    page.wait_for_function("() => window.__violations.length > 0", timeout=5_000)
    assert page.evaluate("window.__inline") is None
    violations = page.evaluate("window.__violations")
    assert any(v.startswith("script-src-elem") for v in violations), violations


def test_goto_printed_url_then_other_pages(page, server: ServerProcess) -> None:
    page.goto(server.url)
    wait_connected(page)
    assert page.url.startswith(server.base_url + "c/") and "token" not in page.url
    page.goto(server.base_url + f"c/{new_id()}")
    wait_connected(page)
