"""A big answer in a real browser: its Markdown is not carried in the page twice, and Copy
still copies all of it (fetched when pressed; docs/limits.md)."""

from __future__ import annotations

import pytest

from htmxchat.limits import INLINE_SOURCE_CHARS
from tests.helpers import TIMEOUT, connect

pytestmark = pytest.mark.browser


def test_copy_of_a_big_answer_copies_all_of_its_markdown(page, echo: str) -> None:
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    connect(page, echo)
    line = "Paragraph with **bold** text and `code` in it, number {n}.\n\n"
    text = "".join(line.format(n=n) for n in range(INLINE_SOURCE_CHARS // len(line) + 200))
    assert INLINE_SOURCE_CHARS < len(text) < 100_000
    # Typing 70,000 characters takes Playwright's fill too long: set the box, then send.
    page.evaluate(
        "t => { const box = document.getElementById('composer-input'); box.value = t;"
        " box.dispatchEvent(new Event('input', {bubbles: true})); }",
        text,
    )
    page.press("#composer-input", "Enter")
    answer = page.wait_for_selector("article.msg-assistant[data-status=complete]", timeout=TIMEOUT)
    assert answer.get_attribute("data-markdown") is None
    assert answer.get_attribute("data-source")
    page.click("article.msg-assistant .copy-answer")
    page.wait_for_function(
        "() => document.querySelector('article.msg-assistant .copy-answer').textContent "
        "=== 'Copied'",
        timeout=TIMEOUT,
    )
    assert page.evaluate("() => navigator.clipboard.readText()").rstrip() == text.rstrip()
