"""A reply's own limits, whatever bot writes it: checkpoints slow down as it grows, and
an answer past its limit is ended saying why (docs/limits.md)."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

import pytest

from htmxchat import reply as reply_module
from htmxchat.answering.bots import Piece, ReplyEnd
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


class BurstBot(ScriptedBot):
    """Every piece at once, without waiting in between: many pieces of one network read."""

    async def stream(self, history, *, model=None, params=None):  # type: ignore[no-untyped-def]
        for text in self.scripts.pop(0)[0]:
            yield Piece(text=text)
        yield ReplyEnd("stop")


async def test_each_flush_of_a_reply_is_a_step_of_its_own(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A flush parses the open Markdown block (up to ~16 ms): pieces that arrive together
    are flushed one loop step at a time, so other tabs get a turn between them."""
    from htmxchat.markdown.stream import MarkdownStream

    steps = 0

    async def ticking() -> None:
        nonlocal steps
        while True:
            steps += 1
            await asyncio.sleep(0)

    fed_at: list[int] = []
    feed = MarkdownStream.feed

    def recording(self: MarkdownStream, text: str) -> list[object]:
        fed_at.append(steps)
        return feed(self, text)  # type: ignore[return-value]

    monkeypatch.setattr(MarkdownStream, "feed", recording)
    store = await open_recording(data_dir / DB_FILENAME)
    bot = BurstBot()
    bot.enqueue(["| a | b |\n"] * 40)
    chat = chat_core(store, bot, coalesce_window=0.0)
    conversation = new_id()
    ticker = asyncio.create_task(ticking())
    task = asyncio.create_task(wait_finished(chat, conversation))
    await asyncio.sleep(0)
    await chat.send(conversation, "go")
    await task
    ticker.cancel()
    assert len(fed_at) == 40
    assert all(a < b for a, b in itertools.pairwise(fed_at)), fed_at
    await store.close()
