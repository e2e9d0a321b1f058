"""The chat core without a server: turns, coalescing, rooms and their numbering, the feed."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from htmxchat.answering.bots import Piece, ReplyEnd
from htmxchat.answering.plan import to_turns
from htmxchat.channel import SUBSCRIPTION_CAPACITY
from htmxchat.chat import ChatInputError, ChatService
from htmxchat.events import (
    ConversationCreated,
    ConversationDeleted,
    ConversationRenamed,
    ConversationUpdated,
    MessageAdded,
    ReplyDelta,
    ReplyFinished,
    ReplyNotStarted,
)
from htmxchat.ids import new_id
from htmxchat.models import Message
from htmxchat.reply import TRUNCATED
from htmxchat.store import ChatStore
from tests.helpers import ScriptedBot, Tab, eventually


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


def apply(messages: list[Message], events: list[object]) -> dict[str, str]:
    """What a page shows (message id -> text) after applying `events` to a snapshot."""
    shown = {m.id: m.content for m in messages}
    for event in events:
        if isinstance(event, MessageAdded):
            assert event.message.id not in shown, "a message was added twice"
            shown[event.message.id] = event.message.content
        elif isinstance(event, ReplyDelta):
            shown[event.message_id] += event.text
        elif isinstance(event, ReplyFinished):
            shown[event.message.id] = event.message.content
    return shown


async def test_fast_pieces_are_coalesced_into_few_frames(store: ChatStore) -> None:
    bot = ScriptedBot()

    async def burst(history, *, model=None, params=None):
        for _ in range(200):  # 200 pieces as fast as the loop allows
            await asyncio.sleep(0)
            yield Piece(text="x")

    bot.stream = burst  # type: ignore[method-assign]
    chat = ChatService(store, bot, coalesce_window=0.05)
    conversation = new_id()
    tab = await Tab.open(chat, conversation)
    await chat.send(conversation, "go")
    deltas = [e for e in await tab.until(ReplyFinished) if isinstance(e, ReplyDelta)]
    assert "".join(d.text for d in deltas) == "x" * 200
    assert deltas[0].text == "x", "the first piece goes out at once"
    assert len(deltas) < 20, f"{len(deltas)} frames for 200 pieces"


async def test_slow_pieces_go_out_one_by_one(store: ChatStore) -> None:
    bot = ScriptedBot(delay=0.06)
    bot.enqueue(["a ", "b ", "c ", "d"])
    chat = ChatService(store, bot, coalesce_window=0.04)
    conversation = new_id()
    tab = await Tab.open(chat, conversation)
    await chat.send(conversation, "go")
    events = await tab.until(ReplyFinished)
    deltas = [e for e in events if isinstance(e, ReplyDelta)]
    assert [e.text for e in deltas] == ["a ", "b ", "c ", "d", ""]
    # the last delta carries no text, only the Markdown left to commit at the end
    assert deltas[-1].ops and all(not d.text for d in deltas[-1:])


async def test_every_subscriber_gets_the_same_numbered_events(store: ChatStore) -> None:
    bot = ScriptedBot()
    bot.enqueue(["one ", "two"])
    chat = ChatService(store, bot, coalesce_window=0.0)
    conversation = new_id()
    tabs = [await Tab.open(chat, conversation) for _ in range(3)]
    await chat.send(conversation, "hello")
    seen = [[type(e).__name__ for e in await tab.until(ReplyFinished)] for tab in tabs]
    assert seen[0] == seen[1] == seen[2]
    assert seen[0][:2] == ["MessageAdded", "MessageAdded"] and seen[0][-1] == "ReplyFinished"
    assert tabs[0].seqs == tabs[1].seqs == list(range(1, len(seen[0]) + 1))


async def test_a_late_joiner_gets_the_text_so_far_then_exactly_the_rest(store: ChatStore) -> None:
    bot = ScriptedBot()
    release = asyncio.Event()

    async def stream(history, *, model=None, params=None):
        yield Piece(text="early ")
        await release.wait()
        yield Piece(text="late")

    bot.stream = stream  # type: ignore[method-assign]
    chat = ChatService(store, bot, coalesce_window=0.0)
    conversation = new_id()
    first = await Tab.open(chat, conversation)
    await chat.send(conversation, "hi")
    await first.until(ReplyDelta)
    late = await Tab.open(chat, conversation)
    assert late.snapshot.busy
    assert late.snapshot.messages[-1].content == "early "
    release.set()
    events = await late.until(ReplyFinished)
    assert late.seqs[0] == late.snapshot.seq + 1
    assert not any(isinstance(e, MessageAdded) for e in events)
    assert apply(late.snapshot.messages, events)[events[-1].message.id] == "early late"


async def test_twelve_tabs_joining_at_random_moments_see_gapless_exact_events(
    store: ChatStore,
) -> None:
    gate = asyncio.Queue[str | None]()

    async def stream(history, *, model=None, params=None):
        while (text := await gate.get()) is not None:
            yield Piece(text=text)

    bot = ScriptedBot()
    bot.stream = stream  # type: ignore[method-assign]
    chat = ChatService(store, bot, coalesce_window=0.0)
    conversation = new_id()
    words = [f"w{i} " for i in range(60)]
    rng = random.Random(7)
    join_at = sorted(rng.sample(range(len(words)), 12))
    sending = asyncio.create_task(chat.send(conversation, "go"))
    tabs: list[Tab] = []
    for i, word in enumerate(words):
        while join_at and join_at[0] == i:
            join_at.pop(0)
            tabs.append(await Tab.open(chat, conversation))
        await gate.put(word)
        await asyncio.sleep(rng.choice([0, 0, 0.001]))
    await gate.put(None)
    await sending
    final = None
    for tab in tabs:
        events = await tab.until(ReplyFinished)
        final = events[-1].message
        assert tab.seqs == list(range(tab.snapshot.seq + 1, tab.seqs[-1] + 1)), "a gap"
        assert apply(tab.snapshot.messages, events)[final.id] == "".join(words)
    assert final is not None and final.content == "".join(words)


async def test_a_tab_that_overflows_catches_up_exactly(data_dir: Path) -> None:
    store = await ChatStore.open(data_dir / "x.sqlite3")
    bot = ScriptedBot()
    count = SUBSCRIPTION_CAPACITY * 3

    async def flood(history, *, model=None, params=None):
        for i in range(count):
            await asyncio.sleep(0)
            yield Piece(text=f"{i},")
        yield ReplyEnd("stop")

    bot.stream = flood  # type: ignore[method-assign]
    chat = ChatService(store, bot, coalesce_window=0.0)
    conversation = new_id()
    stuck = await Tab.open(chat, conversation)  # does not read until the end
    reader = await Tab.open(chat, conversation)
    await chat.send(conversation, "go")
    await reader.until(ReplyFinished, timeout=20)
    assert stuck.subscription.overflowed
    assert stuck.drain() == [], "an overflowed buffer holds nothing stale"
    missed = stuck.subscription.catch_up()
    assert missed is not None, "the room's history still has what it missed"
    events = [item.event for item in missed]
    assert [item.seq for item in missed] == list(range(1, len(missed) + 1))
    reply = apply(stuck.snapshot.messages, events)
    assert reply[events[-1].message.id] == "".join(f"{i}," for i in range(count))
    await store.close()


async def test_a_tab_too_far_behind_is_told_to_take_a_snapshot(store: ChatStore) -> None:
    bot = ScriptedBot()
    bot.enqueue(["x"] * 10)
    chat = ChatService(store, bot, coalesce_window=0.0)
    conversation = new_id()
    tab = await Tab.open(chat, conversation)
    room = chat._rooms[conversation]
    for _ in range(room.channel._history.maxlen + SUBSCRIPTION_CAPACITY + 1):
        room.publish(ReplyNotStarted())
    assert tab.subscription.overflowed
    assert tab.subscription.catch_up() is None
    assert tab.subscription.last_seq == room.channel.seq


async def test_resume_from_a_page_replays_only_what_followed(store: ChatStore) -> None:
    bot = ScriptedBot()
    bot.enqueue(["a", "b"])
    chat = ChatService(store, bot, coalesce_window=0.0)
    conversation = new_id()
    page = await chat.snapshot(conversation)  # what an HTTP page render shows
    watcher = await Tab.open(chat, conversation)
    await chat.send(conversation, "hi")
    await watcher.until(ReplyFinished)
    resumed = chat.resume(conversation, asyncio.Event(), page.epoch, page.seq)
    assert resumed is not None
    _, missed = resumed
    assert [item.seq for item in missed] == watcher.seqs
    assert chat.resume(conversation, asyncio.Event(), "other", page.seq) is None


async def test_stop_before_the_reply_task_ran_still_ends_the_reply(store: ChatStore) -> None:
    chat = ChatService(store, ScriptedBot())
    conversation = new_id()
    tab = await Tab.open(chat, conversation)
    await chat.send(conversation, "hi")
    assert chat.stop(conversation)  # in the same loop turn: the task has not started yet
    await eventually(lambda: not chat.is_busy(conversation))
    assert isinstance(tab.drain()[-1], ReplyFinished)
    await chat.shutdown()
    assert (await store.messages(conversation))[-1].status == "stopped"


async def test_the_chat_goes_on_after_a_stop(store: ChatStore) -> None:
    chat = ChatService(store, ScriptedBot())
    conversation = new_id()
    await chat.send(conversation, "hi")
    chat.stop(conversation)
    await eventually(lambda: not chat.is_busy(conversation))
    assert await chat.send(conversation, "again") is not None


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
    tab = await Tab.open(chat, conversation)
    await chat.send(conversation, "hi")
    await asyncio.wait_for(saved.wait(), 5)
    assert not chat.stop(conversation), "the reply is ending: nothing left to stop"
    release.set()
    await tab.until(ReplyFinished)
    await eventually(lambda: not chat.is_busy(conversation))
    stored = (await store.messages(conversation))[-1]
    assert (stored.status, stored.content) == ("complete", "hello world")


async def test_a_bot_that_fails_at_once_gives_an_error_reply(store: ChatStore) -> None:
    bot = ScriptedBot()

    def broken(history, *, model=None, params=None):
        raise RuntimeError("boom")

    bot.stream = broken  # type: ignore[method-assign]
    chat = ChatService(store, bot)
    conversation = new_id()
    tab = await Tab.open(chat, conversation)
    await chat.send(conversation, "hi")
    events = await tab.until(ReplyFinished)
    assert events[-1].message.status == "error"
    await eventually(lambda: not chat.is_busy(conversation))
    assert (await store.messages(conversation))[-1].status == "error"


async def test_a_truncated_reply_says_so_through_its_end(store: ChatStore) -> None:
    bot = ScriptedBot()

    async def cut(history, *, model=None, params=None):
        yield Piece(text="half")
        yield ReplyEnd("length", prompt_tokens=5, completion_tokens=1)

    bot.stream = cut  # type: ignore[method-assign]
    chat = ChatService(store, bot)
    conversation = new_id()
    tab = await Tab.open(chat, conversation)
    await chat.send(conversation, "hi")
    final = (await tab.until(ReplyFinished))[-1].message
    assert (final.status, final.error) == ("complete", TRUNCATED)


async def test_a_refused_regenerate_tells_tabs_nothing_runs(store: ChatStore) -> None:
    chat = ChatService(store, ScriptedBot())
    conversation = new_id()
    tab = await Tab.open(chat, conversation)
    with pytest.raises(ChatInputError, match="nothing to regenerate"):
        await chat.regenerate(conversation)
    assert [type(e) for e in tab.drain()] == [ReplyNotStarted]


async def test_only_offered_models_are_accepted(store: ChatStore) -> None:
    bot = ScriptedBot(model="small")
    chat = ChatService(store, bot, models=("small", "large"))
    with pytest.raises(ChatInputError, match="not offered"):
        await chat.send(new_id(), "hi", model="forged")
    conversation = new_id()
    await chat.send(conversation, "hi", model="large")
    await eventually(lambda: not chat.is_busy(conversation))
    assert bot.models_used == ["large"]
    no_models = ChatService(store, ScriptedBot())
    # a bot without models ignores the name
    assert no_models.answering.router.check_model("anything") is None


async def test_the_feed_numbers_created_updated_renamed_and_deleted(store: ChatStore) -> None:
    chat = ChatService(store, ScriptedBot(), coalesce_window=0.0)
    feed = chat.feed.subscribe(asyncio.Event())
    conversation = new_id()
    await chat.send(conversation, "first question")
    await eventually(lambda: not chat.is_busy(conversation))
    await chat.send(conversation, "second")
    await eventually(lambda: not chat.is_busy(conversation))
    await chat.rename(conversation, "Named")
    await chat.delete(conversation)
    items = feed.take(100)
    assert [item.seq for item in items] == [1, 2, 3, 4]
    kinds = [type(item.event) for item in items]
    assert kinds == [
        ConversationCreated,
        ConversationUpdated,
        ConversationRenamed,
        ConversationDeleted,
    ]
    assert items[0].event.conversation.title == "first question"
    assert items[2].event.conversation.title == "Named"
    snapshot = await chat.feed_snapshot()
    assert snapshot.seq == 4 and snapshot.conversations == []


async def test_shutdown_interrupts_and_saves_running_replies(store: ChatStore) -> None:
    bot = ScriptedBot()
    bot.gate = asyncio.Event()
    bot.enqueue(["never"])
    chat = ChatService(store, bot)
    conversation = new_id()
    await chat.send(conversation, "hi")
    await chat.shutdown()
    assert (await store.messages(conversation))[-1].status == "interrupted"
    with pytest.raises(ChatInputError, match="shutting down"):
        await chat.send(conversation, "more")
