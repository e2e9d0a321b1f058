"""A reply's own limits, whatever bot writes it: checkpoints slow down as it grows, and
an answer past its limit is ended saying why (docs/limits.md)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from htmxchat import reply as reply_module
from htmxchat.ids import new_id
from htmxchat.store import DB_FILENAME
from tests.helpers import ScriptedBot, chat_core, open_recording, wait_finished


async def test_checkpoints_of_a_big_reply_are_spaced_by_its_size(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 50,000 characters a second: a checkpoint of a 500,000-character reply waits 10 s.
    monkeypatch.setattr(reply_module, "CHECKPOINT_BYTES_PER_SECOND", 50_000)
    store = await open_recording(data_dir / DB_FILENAME)
    bot = ScriptedBot(delay=0.002)
    bot.enqueue(["x" * 1999 + "\n"] * 250)  # 500,000 characters in about a second
    chat = chat_core(store, bot, checkpoint_interval=0.0, coalesce_window=0.0)
    conversation = new_id()
    waiter = wait_finished(chat, conversation)

    task = asyncio.create_task(waiter)
    await asyncio.sleep(0)
    await chat.send(conversation, "go")
    final = (await task).message
    checkpoints = [w for w in store.writes if w == ("update", "assistant", "streaming")]
    # Without the spacing, an interval of 0 checkpoints after every piece: 250 rewrites.
    assert len(checkpoints) <= 10, len(checkpoints)
    assert len(final.content) == 500_000
    await store.close()


async def test_an_answer_past_its_limit_is_ended_saying_why(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reply_module, "MAX_ANSWER_CHARS", 10_000)
    store = await open_recording(data_dir / DB_FILENAME)
    bot = ScriptedBot()
    bot.enqueue(["word " * 300] * 100)  # 150,000 characters offered
    chat = chat_core(store, bot, coalesce_window=0.0)
    conversation = new_id()

    task = asyncio.create_task(wait_finished(chat, conversation))
    await asyncio.sleep(0)
    await chat.send(conversation, "go")
    final = (await task).message
    assert len(final.content) == 10_000 and final.status == "complete"
    assert final.error is not None and "the most one answer may hold" in final.error
    await store.close()
