"""Deleting asks first in the page's own dialog, never the browser's confirm(): focus starts
on Cancel and stays inside, Esc and Enter say no, only the danger button erases."""

from __future__ import annotations

import pytest

from tests.helpers import DONE, TIMEOUT, chat_in_page

pytestmark = pytest.mark.browser


def focused_class(page) -> str:
    return str(page.evaluate("document.activeElement.className"))


def test_deleting_a_chat_asks_in_the_page_dialog_with_focus_kept_inside(page, echo: str) -> None:
    native: list[str] = []
    page.on("dialog", lambda d: (native.append(d.message), d.dismiss()))
    deletes: list[str] = []
    page.on("request", lambda r: r.method == "DELETE" and deletes.append(r.url))
    chat_in_page(page, echo, "Plan a weekend in Lisbon")
    item = page.locator("#conversations .conv").first
    delete = item.locator(".icon-danger")
    dialog = page.locator("#confirm")

    item.hover()  # a row's actions show while the pointer is over it, as for a person
    delete.click()
    assert dialog.is_visible()
    assert page.locator("#confirm-title").text_content() == "Delete this chat?"
    assert "Plan a weekend in Lisbon" in (page.locator("#confirm-text").text_content() or "")
    assert "confirm-cancel" in focused_class(page)  # the danger button is not the default
    page.keyboard.press("Tab")
    assert "confirm-ok" in focused_class(page)
    page.keyboard.press("Tab")
    assert "confirm-cancel" in focused_class(page)  # focus wraps inside the dialog
    page.keyboard.press("Shift+Tab")
    assert "confirm-ok" in focused_class(page)

    page.keyboard.press("Escape")  # Esc cancels
    assert not dialog.is_visible()
    assert page.evaluate("document.activeElement.classList.contains('icon-danger')")
    delete.click()  # still shown: the focus is back on it
    page.keyboard.press("Enter")  # Enter presses Cancel, which has the focus
    assert not dialog.is_visible()
    assert item.is_visible() and deletes == []  # a click held back sends nothing

    delete.click()
    page.locator("#confirm .confirm-ok").click()
    page.wait_for_selector("#conversations .conv", state="detached", timeout=TIMEOUT)
    assert native == []


def test_deleting_a_message_asks_first_and_cancel_keeps_it(page, echo: str) -> None:
    native: list[str] = []
    page.on("dialog", lambda d: (native.append(d.message), d.dismiss()))
    sent: list[str] = []
    page.on("websocket", lambda ws: ws.on("framesent", lambda f: sent.append(str(f))))
    chat_in_page(page, echo, "Keep this one")
    answer = page.locator(DONE)
    answer.hover()
    answer.locator(".delete-message").click()
    assert page.locator("#confirm-title").text_content() == "Delete this message?"
    page.locator("#confirm .confirm-cancel").click()
    assert any("Keep this one" in frame for frame in sent)  # frames are seen
    assert answer.is_visible() and not any('"delete"' in frame for frame in sent)
    answer.hover()
    answer.locator(".delete-message").click()
    page.locator("#confirm .confirm-ok").click()
    page.wait_for_selector(DONE, state="detached", timeout=TIMEOUT)
    assert page.locator("article.msg-user").count() == 1  # only what came after is gone
    assert native == []
