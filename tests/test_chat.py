"""The chat core without a server: turns, coalescing, tabs sharing a reply."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from htmxchat.bots import Piece
from htmxchat.chat import (
    ChatInputError,
    ChatService,
    MessageAdded,
    ReplyDelta,
    ReplyFinished,
    to_turns,
)
from htmxchat.ids import new_id
from htmxchat.models import Message
from htmxchat.store import ChatStore
from tests.helpers import ScriptedBot


def test_to_turns_keeps_only_the_latest_of_regenerated_answers() -> None:
    c = new_id()
    messages = [
        Message("1", c, "user", "q1"),
        Message("2", c, "assistant", "old"),
        Message("3", c, "assistant", "new"),
        Message("4", c, "user", "q2"),
        Message("5", c, "assistant", "", status="error"),
    ]
    assert [(t.role, t.content) for t in to_turns(messages)] == [
        ("user", "q1"),
        ("assistant", "new"),
        ("user", "q2"),
    ]


async def test_fast_pieces_are_coalesced_into_few_frames(store: ChatStore) -> None:
    bot = ScriptedBot()

    async def burst(history, *, model=None):
        for _ in range(200):  # 200 pieces as fast as the loop allows
            await asyncio.sleep(0)
            yield Piece(text="x")

    bot.stream = burst  # type: ignore[method-assign]
    chat = ChatService(store, bot, coalesce_window=0.05)
    conversation = new_id()
    subscription = chat.subscribe(conversation)
    await chat.send(conversation, "go")
    deltas: list[ReplyDelta] = []
    while True:
        event = await asyncio.wait_for(subscription.queue.get(), 5)
        if isinstance(event, ReplyDelta):
            deltas.append(event)
        if isinstance(event, ReplyFinished):
            break
    assert "".join(d.text for d in deltas) == "x" * 200
    assert deltas[0].text == "x", "the first piece goes out at once"
    assert len(deltas) < 20, f"{len(deltas)} frames for 200 pieces"


async def test_slow_pieces_go_out_one_by_one(store: ChatStore) -> None:
    bot = ScriptedBot(delay=0.06)
    bot.enqueue(["a ", "b ", "c ", "d"])
    chat = ChatService(store, bot, coalesce_window=0.04)
    conversation = new_id()
    subscription = chat.subscribe(conversation)
    await chat.send(conversation, "go")
    texts = []
    while True:
        event = await asyncio.wait_for(subscription.queue.get(), 5)
        if isinstance(event, ReplyDelta):
            texts.append(event.text)
        if isinstance(event, ReplyFinished):
            break
    assert texts == ["a ", "b ", "c ", "d"]


async def test_every_subscriber_gets_the_same_events(store: ChatStore) -> None:
    bot = ScriptedBot()
    bot.enqueue(["one ", "two"])
    chat = ChatService(store, bot, coalesce_window=0.0)
    conversation = new_id()
    tabs = [chat.subscribe(conversation) for _ in range(3)]
    await chat.send(conversation, "hello")
    seen: list[list[str]] = []
    for tab in tabs:
        kinds = []
        while True:
            event = await asyncio.wait_for(tab.queue.get(), 5)
            kinds.append(type(event).__name__)
            if isinstance(event, ReplyFinished):
                break
        seen.append(kinds)
    assert seen[0] == seen[1] == seen[2]
    assert seen[0][:2] == ["MessageAdded", "MessageAdded"] and seen[0][-1] == "ReplyFinished"


async def test_a_late_subscriber_gets_the_text_so_far_then_the_rest(store: ChatStore) -> None:
    bot = ScriptedBot()
    release = asyncio.Event()

    async def stream(history, *, model=None):
        yield Piece(text="early ")
        await release.wait()
        yield Piece(text="late")

    bot.stream = stream  # type: ignore[method-assign]
    chat = ChatService(store, bot, coalesce_window=0.0)
    conversation = new_id()
    first = chat.subscribe(conversation)
    await chat.send(conversation, "hi")
    while not isinstance(await first.queue.get(), ReplyDelta):
        pass
    late = chat.subscribe(conversation)
    assert late.live_reply is not None and late.live_reply.content == "early "
    transcript = await chat.transcript(conversation, live_reply=late.live_reply)
    assert transcript[-1].content == "early "
    release.set()
    events = []
    while not events or not isinstance(events[-1], ReplyFinished):
        events.append(await asyncio.wait_for(late.queue.get(), 5))
    deltas = "".join(e.text for e in events if isinstance(e, ReplyDelta))
    assert transcript[-1].content + deltas == "early late"
    assert not any(isinstance(e, MessageAdded) for e in events)


async def test_a_subscriber_that_falls_behind_is_asked_to_resync(data_dir: Path) -> None:
    store = await ChatStore.open(data_dir / "x.sqlite3")
    bot = ScriptedBot()

    async def flood(history, *, model=None):
        for _ in range(2000):
            await asyncio.sleep(0)
            yield Piece(text="y")

    bot.stream = flood  # type: ignore[method-assign]
    chat = ChatService(store, bot, coalesce_window=0.0)
    conversation = new_id()
    stuck = chat.subscribe(conversation)  # never reads
    reader = chat.subscribe(conversation)  # reads everything, to know when the reply ends
    await chat.send(conversation, "go")
    async with asyncio.timeout(10):
        while not isinstance(await reader.queue.get(), ReplyFinished):
            pass
    assert stuck.queue.qsize() <= stuck.queue.maxsize
    items = [stuck.queue.get_nowait() for _ in range(stuck.queue.qsize())]
    assert type(items[0]).__name__ == "Resync"
    await store.close()


async def drain(subscription) -> list[str]:
    names = []
    while not subscription.queue.empty():
        names.append(type(subscription.queue.get_nowait()).__name__)
    return names


async def test_stop_before_the_reply_task_ran_still_ends_the_reply(store: ChatStore) -> None:
    chat = ChatService(store, ScriptedBot())
    conversation = new_id()
    tab = chat.subscribe(conversation)
    await chat.send(conversation, "hi")
    assert chat.stop(conversation)  # in the same loop turn: the task has not started yet
    await asyncio.sleep(0.05)
    assert not chat.is_busy(conversation)
    assert (await drain(tab))[-1] == "ReplyFinished"
    await chat.shutdown()
    assert (await store.messages(conversation))[-1].status == "stopped"
    assert await chat.send(conversation, "again") is not None  # the chat goes on


async def test_stop_during_the_final_save_does_not_lose_the_end(store: ChatStore) -> None:
    bot = ScriptedBot()
    bot.enqueue(["hello ", "world"])
    chat = ChatService(store, bot, coalesce_window=0.0)
    saved = asyncio.Event()
    release = asyncio.Event()
    original = store.update_reply

    async def slow_final_save(message):
        if message.status != "streaming":
            saved.set()
            await release.wait()
        await original(message)

    store.update_reply = slow_final_save  # type: ignore[method-assign]
    conversation = new_id()
    tab = chat.subscribe(conversation)
    await chat.send(conversation, "hi")
    await asyncio.wait_for(saved.wait(), 5)
    chat.stop(conversation)  # arrives while the finished reply is being saved
    release.set()
    await asyncio.sleep(0.05)
    assert (await drain(tab))[-1] == "ReplyFinished"
    assert not chat.is_busy(conversation)
    stored = (await store.messages(conversation))[-1]
    assert (stored.status, stored.content) == ("complete", "hello world")


async def test_a_bot_that_fails_at_once_gives_an_error_reply(store: ChatStore) -> None:
    bot = ScriptedBot()

    def broken(history, *, model=None):
        raise RuntimeError("boom")

    bot.stream = broken  # type: ignore[method-assign]
    chat = ChatService(store, bot)
    conversation = new_id()
    tab = chat.subscribe(conversation)
    await chat.send(conversation, "hi")
    await asyncio.sleep(0.05)
    assert (await drain(tab))[-1] == "ReplyFinished"
    assert not chat.is_busy(conversation)
    assert (await store.messages(conversation))[-1].status == "error"


async def test_a_refused_regenerate_tells_tabs_nothing_runs(store: ChatStore) -> None:
    chat = ChatService(store, ScriptedBot())
    conversation = new_id()
    tab = chat.subscribe(conversation)
    with pytest.raises(ChatInputError, match="nothing to regenerate"):
        await chat.regenerate(conversation)
    assert await drain(tab) == ["ReplyNotStarted"]
