"""The chat in a real Chromium: type, stream, reload, all without leaving the machine."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from htmxchat.chat import TOO_LONG
from tests.helpers import TIMEOUT, FakeModelServer, ServerProcess

pytestmark = pytest.mark.browser

# Records every text length the newest reply body goes through while it streams.
WATCH_REPLY = """
() => {
  window.__lengths = [];
  new MutationObserver(() => {
    const bodies = document.querySelectorAll('.msg-assistant .msg-body');
    const last = bodies[bodies.length - 1];
    if (last) window.__lengths.push(last.textContent.length);
  }).observe(document.getElementById('messages'),
             {childList: true, subtree: true, characterData: true});
}
"""


def test_type_enter_and_watch_the_reply_stream(server: ServerProcess, page) -> None:
    page.goto(server.url)
    page.wait_for_selector('#connection[data-state="open"]', timeout=60_000)
    page.evaluate(WATCH_REPLY)
    box = page.locator("#composer-input")
    box.click()
    box.type("Hello <b>bot</b> & friends")
    box.press("Enter")

    # Every check of what the page shows polls until it holds (or a generous timeout): on a
    # busy machine the server's frames, and the swaps they cause, come when they come.
    expect(page.locator(".msg-user .msg-body")).to_have_text("Hello <b>bot</b> & friends")
    # the input is cleared and keeps the focus (and its placeholder)
    expect(box).to_have_value("")
    expect(box).to_be_focused()
    expect(box).to_have_attribute("placeholder", re.compile(r"\S"))

    page.wait_for_selector('.msg-assistant[data-status="complete"]', timeout=60_000)
    lengths = [n for n in page.evaluate("window.__lengths") if n > 0]
    distinct = sorted(set(lengths))
    assert len(distinct) >= 3, f"the reply should grow in steps, saw lengths {lengths}"
    # (Markdown syntax may shrink the text as a block is rendered: "1. " becomes a list item)
    # The finished message lands on exactly what streaming built: the text does not change.
    final_text = page.locator(".msg-assistant .msg-body").inner_text()
    final_length = page.evaluate(
        "document.querySelector('.msg-assistant .msg-body').textContent.length"
    )
    assert final_length == lengths[-1]
    expect(box).to_be_focused()

    # a reload shows the same conversation, once
    page.reload()
    page.wait_for_selector('#connection[data-state="open"]', timeout=60_000)
    expect(page.locator(".msg-user")).to_have_count(1)
    expect(page.locator(".msg-assistant .msg-body")).to_have_text(final_text, use_inner_text=True)

    # nothing was requested from anywhere but the server
    own = urlsplit(server.url).netloc
    hosts = {urlsplit(url).netloc for url in page.requested_urls}
    assert hosts == {own}, hosts


def test_blank_input_sends_nothing_and_shift_enter_makes_a_new_line(
    server: ServerProcess, page
) -> None:
    page.goto(server.url)
    page.wait_for_selector('#connection[data-state="open"]')
    box = page.locator("#composer-input")
    box.click()
    box.type("   ")
    box.press("Enter")
    page.wait_for_timeout(300)
    assert page.locator(".msg").count() == 0
    box.fill("")
    box.type("line one")
    box.press("Shift+Enter")
    box.type("line two")
    assert box.input_value() == "line one\nline two"
    box.press("Enter")
    # Read once its text is shown: one read right after the message appeared found it empty
    # in a full run on a busy machine.
    body = ".msg-user .msg-body"
    page.wait_for_function(
        "s => (document.querySelector(s)?.innerText ?? '').trim() !== ''", arg=body, timeout=TIMEOUT
    )
    assert page.locator(body).inner_text() == "line one\nline two"


def test_stop_button_ends_the_reply_and_keeps_the_text(data_dir, page) -> None:
    slow = ServerProcess(data_dir, "--port", "0", "--word-delay", "0.3")
    try:
        page.goto(slow.url)
        page.wait_for_selector('#connection[data-state="open"]')
        page.fill("#composer-input", "talk slowly")
        page.press("#composer-input", "Enter")
        page.wait_for_function(
            "() => document.querySelector('.msg-assistant .msg-body')?.textContent.length > 0"
        )
        page.click(".btn-stop")
        page.wait_for_selector('.msg-assistant[data-status="stopped"]')
        assert page.locator(".msg-assistant .msg-body").inner_text()
        assert page.locator(".btn-send").is_visible()

        # Regenerate writes a second version of the answer in its place; Esc stops it too.
        page.click(".msg-assistant .regenerate")
        page.wait_for_selector('.msg-assistant:nth-child(2)[data-status="streaming"]')
        page.wait_for_function(
            "() => document.querySelector('.msg-assistant .msg-body')?.textContent.length > 0"
        )
        page.keyboard.press("Escape")
        page.wait_for_selector('.msg-assistant:nth-child(2)[data-status="stopped"]')
        assert page.text_content(".msg-assistant .version-count") == "2/2"
        assert page.locator(".msg-assistant").count() == 1
        assert page.locator(".msg-user").count() == 1
    finally:
        slow.kill()


def test_chat_with_a_model_server_end_to_end(data_dir, page) -> None:
    with FakeModelServer() as fake:
        env = {"HTMXCHAT_BOT": "openai", "HTMXCHAT_BASE_URL": fake.base_url}
        server = ServerProcess(data_dir, "--port", "0", env=env)
        try:
            page.goto(server.url)
            page.wait_for_selector('#connection[data-state="open"]')
            assert page.locator("#model").input_value() == "fake-model"
            page.evaluate(WATCH_REPLY)
            page.fill("#composer-input", "Hello model")
            page.press("#composer-input", "Enter")
            page.wait_for_selector('.msg-assistant[data-status="complete"]', timeout=30_000)
            text = page.locator(".msg-assistant .msg-body").inner_text()
            assert text.startswith("Hello! I am the fake model server")
            assert len(set(page.evaluate("window.__lengths"))) >= 3
            assert "fake-model" in page.locator(".msg-assistant .msg-stats").inner_text()
        finally:
            server.kill()


def test_offline_the_message_stays_in_the_box_with_a_notice(data_dir, page, browser_errors) -> None:
    browser_errors.expect_server_down()
    server = ServerProcess(data_dir, "--port", "0")
    try:
        page.goto(server.url)
        page.wait_for_selector('#connection[data-state="open"]')
        server.stop()
        page.wait_for_selector('#connection[data-state="closed"]')
        page.fill("#composer-input", "typed while offline")
        page.press("#composer-input", "Enter")
        page.wait_for_function("() => document.getElementById('notice').textContent.length > 0")
        assert "Not connected" in page.locator("#notice").inner_text()
        assert page.locator("#composer-input").input_value() == "typed while offline"
        assert page.locator(".msg").count() == 0
        # Back on the same port: the page reconnects by itself, the notice goes, and the
        # message still in the box is sent with Enter.
        server = ServerProcess(data_dir, "--port", str(server.port))
        page.wait_for_selector('#connection[data-state="open"]', timeout=30_000)
        expect(page.locator("#notice")).to_have_text("")
        page.press("#composer-input", "Enter")
        expect(page.locator(".msg-user .msg-body")).to_have_text("typed while offline")
    finally:
        server.kill()


def test_text_typed_while_the_send_is_answered_is_kept_once(server: ServerProcess, page) -> None:
    page.goto(server.url)
    page.wait_for_selector('#connection[data-state="open"]')
    box = page.locator("#composer-input")
    box.fill("first message")
    # Enter twice at once, then keep typing before the server's answer arrives.
    page.evaluate(
        """() => {
          const box = document.getElementById('composer-input');
          const enter = () => box.dispatchEvent(new KeyboardEvent('keydown',
              {key: 'Enter', bubbles: true, cancelable: true}));
          enter(); enter();
          box.value += '\\nnext thought';
        }"""
    )
    page.wait_for_selector('.msg-assistant[data-status="complete"]', timeout=30_000)
    assert page.locator(".msg-user").count() == 1, "a double Enter sends once"
    assert page.locator(".msg-user .msg-body").inner_text() == "first message"
    assert box.input_value() == "next thought"


def test_a_message_over_the_limit_stays_in_the_box_with_a_notice(
    server: ServerProcess, page
) -> None:
    page.goto(server.url)
    page.wait_for_selector('#connection[data-state="open"]')
    huge = "x" * 1_200_000  # more than the socket's 1 MiB frame limit, too
    page.evaluate("t => { document.getElementById('composer-input').value = t; }", huge)
    page.press("#composer-input", "Enter")
    page.wait_for_function("() => document.getElementById('notice').textContent.length > 0")
    # The server's own words, given to the page (not a copy in its script).
    said = TOO_LONG.format(length="1,200,000", limit="100,000")
    assert page.locator("#notice").inner_text() == said
    assert len(page.locator("#composer-input").input_value()) == len(huge)
    assert page.locator("#connection").get_attribute("data-state") == "open"
    page.fill("#composer-input", "short one")
    page.press("#composer-input", "Enter")
    page.wait_for_selector(".msg-user")
