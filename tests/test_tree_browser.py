"""The message tree in a real browser: Edit in place, versions n/m, Copy, Delete, Regenerate,
the choice kept across reloads and shown in other tabs (docs/design.md, "Message tree")."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.helpers import connect

pytestmark = pytest.mark.browser
TIMEOUT = 15_000


def ask(page, text: str, answers: int) -> None:
    """Send `text` and wait until `answers` finished answers are shown and Send is back."""
    page.fill("#composer-input", text)
    page.press("#composer-input", "Enter")
    idle(page, answers)


def idle(page, answers: int) -> None:
    page.wait_for_function(
        "n => document.querySelectorAll('#messages article.msg-assistant[data-status=complete]')"
        ".length === n && document.querySelector('#composer-actions').dataset.busy === 'false'",
        arg=answers,
        timeout=TIMEOUT,
    )


def bodies(page) -> list[str]:
    # The text in the DOM: a message far from the view is not laid out (reading.css), and
    # innerText of what is not laid out is empty.
    return [t.strip() for t in page.locator("#messages .msg .msg-body").all_text_contents()]


def test_edit_makes_a_version_and_the_versions_can_be_switched(page, echo: str) -> None:
    connect(page, echo)
    ask(page, "first question", 1)
    ask(page, "second question", 2)

    second = page.locator("#messages article.msg-user").nth(1)
    second.hover()
    second.get_by_role("button", name="Edit").click()
    box = second.get_by_role("textbox", name="Edit your message")
    expect(box).to_have_value("second question")
    # Escape gives up the edit and leaves the message as it was.
    box.press("Escape")
    expect(box).to_have_count(0)
    assert bodies(page)[-2] == "second question"

    second.hover()
    second.get_by_role("button", name="Edit").click()
    box = second.get_by_role("textbox", name="Edit your message")
    box.fill("second question, better")
    box.press("Enter")
    page.wait_for_function(
        "() => [...document.querySelectorAll('#messages .msg-body')].map(b => b.innerText)"
        ".join('|') === 'first question|first question|second question, better|"
        "second question, better'",
        timeout=TIMEOUT,
    )
    idle(page, 2)
    edited = page.locator("#messages article.msg-user").nth(1)
    expect(edited.locator(".version-count")).to_have_text("2/2")

    edited.hover()
    edited.get_by_role("button", name="Previous version").click()
    expect(page.locator("#messages article.msg-user").nth(1).locator(".msg-body")).to_have_text(
        "second question", timeout=TIMEOUT
    )
    assert bodies(page) == ["first question"] * 2 + ["second question"] * 2
    expect(
        page.locator("#messages article.msg-user").nth(1).locator(".version-count")
    ).to_have_text("1/2")
    assert page.get_by_role("button", name="Previous version").is_disabled()

    # The choice is in the chat log: a reload and another tab show the same version.
    page.reload()
    page.wait_for_selector('#connection[data-state="open"]', timeout=TIMEOUT)
    assert bodies(page) == ["first question"] * 2 + ["second question"] * 2
    other = page.context.new_page()
    connect(other, page.url)
    assert bodies(other) == bodies(page)
    # ...and a switch in one tab shows in the other.
    page.locator("#messages article.msg-user").nth(1).hover()
    page.get_by_role("button", name="Next version").click()
    expect(other.locator("#messages article.msg-user").nth(1).locator(".msg-body")).to_have_text(
        "second question, better", timeout=TIMEOUT
    )
    other.close()


def test_regenerate_copy_and_delete(page, echo: str) -> None:
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    connect(page, echo)
    ask(page, "keep me", 1)
    ask(page, "**delete** me", 2)

    answer = page.locator("#messages article.msg-assistant").last
    answer.hover()
    regenerate = answer.get_by_role("button", name="Regenerate", exact=True)
    regenerate.click()
    expect(
        page.locator("#messages article.msg-assistant").last.locator(".version-count")
    ).to_have_text("2/2", timeout=TIMEOUT)
    idle(page, 2)

    # Copy gives your message's text as typed.
    question = page.locator("#messages article.msg-user").last
    question.hover()
    question.get_by_role("button", name="Copy").click()
    expect(question.get_by_role("button", name="Copied")).to_have_count(1)
    assert page.evaluate("() => navigator.clipboard.readText()") == "**delete** me"

    # Delete asks first: no, then yes.
    question.hover()
    question.get_by_role("button", name="Delete").click()
    page.click("#confirm .confirm-cancel")
    page.wait_for_timeout(300)
    assert len(bodies(page)) == 4
    question.hover()
    question.get_by_role("button", name="Delete").click()
    page.click("#confirm .confirm-ok")
    page.wait_for_function(
        "() => document.querySelectorAll('#messages .msg').length === 2", timeout=TIMEOUT
    )
    assert bodies(page) == ["keep me", "keep me"]
    page.reload()
    page.wait_for_selector('#connection[data-state="open"]', timeout=TIMEOUT)
    assert bodies(page) == ["keep me", "keep me"]


def test_a_draft_survives_switching_conversations_and_reloading(page, echo: str) -> None:
    connect(page, echo)
    ask(page, "a first chat", 1)
    first = page.get_attribute("#app", "data-conversation")
    page.fill("#composer-input", "half-written thought")
    page.click("#new-chat")
    page.wait_for_function(
        "id => document.querySelector('#app').dataset.conversation !== id", arg=first
    )
    expect(page.locator("#composer-input")).to_have_value("")
    page.fill("#composer-input", "other draft")
    page.click(f"#conv-{first} .conv-link")
    expect(page.locator("#composer-input")).to_have_value("half-written thought")
    page.reload()
    page.wait_for_selector('#connection[data-state="open"]', timeout=TIMEOUT)
    expect(page.locator("#composer-input")).to_have_value("half-written thought")
    # Once sent, the draft is gone: the box stays empty after a reload.
    page.press("#composer-input", "Enter")
    idle(page, 2)
    page.reload()
    page.wait_for_selector('#connection[data-state="open"]', timeout=TIMEOUT)
    expect(page.locator("#composer-input")).to_have_value("")
