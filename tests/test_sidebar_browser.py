"""The conversation list as a person sees it: date headings, titles with the whole row,
imported chats listed when they came in and marked."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from itertools import pairwise
from pathlib import Path

import pytest

from htmxchat.ids import new_id
from htmxchat.models import Conversation, Message
from htmxchat.store import DB_FILENAME, ChatStore
from htmxchat.times import list_group
from tests.helpers import EchoBot, seed_conversation, served_in_thread

TIMEOUT = 15_000
DAY = 86_400.0


def test_list_groups_are_today_yesterday_the_week_then_months() -> None:
    now = datetime(2026, 12, 7, 15, 0).timestamp()
    morning = datetime(2026, 12, 7, 0, 5).timestamp()
    assert list_group(morning, now) == ("today", "Today")
    assert list_group(now - DAY, now) == ("yesterday", "Yesterday")
    assert list_group(now - 6 * DAY, now) == ("week", "Previous 7 days")
    assert list_group(datetime(2026, 10, 30).timestamp(), now) == ("2026-10", "October")
    assert list_group(datetime(2025, 12, 30).timestamp(), now) == ("2025-12", "December 2025")


def seeded(data_dir: Path, ages: dict[str, float]) -> dict[str, str]:
    """Conversations titled by `ages`' keys, last written that many days ago."""
    ids = {title: seed_conversation(data_dir, [title, "ok"]) for title in ages}
    with sqlite3.connect(data_dir / DB_FILENAME) as db:
        for title, age in ages.items():
            db.execute(
                "UPDATE conversations SET updated_at = ? WHERE id = ?",
                (time.time() - age * DAY, ids[title]),
            )
    return ids


def imported(data_dir: Path, title: str, age: float) -> str:
    """A conversation brought in from an export file, written `age` days ago."""
    then = time.time() - age * DAY

    async def run() -> str:
        store = await ChatStore.open(data_dir / DB_FILENAME, recover=False)
        try:
            conversation = Conversation(new_id(), title, then, then)
            message = Message(new_id(), conversation.id, "user", title, created_at=then)
            stored = await store.import_conversation(conversation, [message])
            return stored.id
        finally:
            await store.close()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, run()).result()


LIST = """() => [...document.querySelectorAll("#conversations > li")]
  .filter((li) => li.getClientRects().length)
  .map((li) => li.classList.contains("conv-group")
       ? "# " + li.textContent.trim() : li.querySelector(".conv-title").textContent)"""


@pytest.mark.browser
def test_the_list_is_grouped_by_date_and_imports_come_in_marked(page, data_dir: Path) -> None:
    seeded(
        data_dir,
        {"Old plan": 400, "Last week": 3, "Yesterday's chat": 1, "Fresh one": 0},
    )
    copy = imported(data_dir, "An old chat from a file", 500)
    with served_in_thread(data_dir, EchoBot()) as url:
        page.goto(url)
        page.wait_for_selector(".conv-group", timeout=TIMEOUT)
        shown = page.evaluate(LIST)
        assert shown[:7] == [
            "# Today",
            "An old chat from a file",  # when it came in, not by its own old date
            "Fresh one",
            "# Yesterday",
            "Yesterday's chat",
            "# Previous 7 days",
            "Last week",
        ]
        assert shown[7].startswith("# ") and shown[7].endswith(
            str(datetime.fromtimestamp(time.time() - 400 * DAY).year)
        )
        assert shown[8] == "Old plan"
        badge = page.locator(f"#conv-{copy} .conv-badge")
        assert badge.is_visible() and badge.text_content() == ", Imported"
        assert page.locator(".conv-badge").count() == 1
        # a new message moves its chat to the top, under one "Today"
        old = page.evaluate(
            "[...document.querySelectorAll('#conversations .conv')].pop().dataset.id"
        )
        page.click(f"#conv-{old} .conv-link")
        page.wait_for_selector(
            f'#pane[data-conversation="{old}"] article.msg-user', timeout=TIMEOUT
        )
        page.wait_for_selector('#connection[data-state="open"]', timeout=TIMEOUT)
        page.fill("#composer-input", "Back to it")
        page.press("#composer-input", "Enter")
        page.wait_for_selector(
            "article.msg-assistant[data-status=complete] >> nth=1", timeout=TIMEOUT
        )
        page.wait_for_function(
            "() => document.querySelector('#conversations .conv .conv-title')"
            ".textContent === 'Old plan'",
            timeout=TIMEOUT,
        )
        shown = page.evaluate(LIST)
        assert shown[:3] == ["# Today", "Old plan", "An old chat from a file"]
        assert shown.count("# Today") == 1
        headings = [item.startswith("# ") for item in shown]
        assert not any(a and b for a, b in pairwise(headings))  # none left empty


@pytest.mark.browser
def test_a_title_has_the_whole_row_until_its_actions_show(page, data_dir: Path) -> None:
    long = "A rather long conversation title about planning a weekend in Lisbon"
    seeded(data_dir, {long: 0, "Another": 0.5})
    with served_in_thread(data_dir, EchoBot()) as url:
        page.goto(url)  # a new chat is open: neither listed one is the current one
        page.wait_for_selector(".conv-title", timeout=TIMEOUT)
        item = page.locator(".conv", has_text="Lisbon")
        title = item.locator(".conv-title")
        room = item.evaluate(
            "li => li.getBoundingClientRect().right - "
            "li.querySelector('.conv-title').getBoundingClientRect().right"
        )
        assert room < 14, room  # the padding only: no room kept for hidden buttons
        assert title.evaluate("t => t.scrollWidth > t.clientWidth")  # cut with an ellipsis
        item.hover()
        assert item.locator("button[title=Rename]").is_visible()
        assert item.locator("button[title=Delete]").is_visible()
