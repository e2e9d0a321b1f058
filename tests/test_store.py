"""The SQLite chat log: commit order, checkpoints, crash recovery, migrations."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from htmxchat.answering.bots import Piece
from htmxchat.chat import ChatService
from htmxchat.ids import new_id
from htmxchat.models import Message
from htmxchat.store import DB_FILENAME, MIGRATIONS, ChatStore, StoreError
from tests.helpers import ScriptedBot, chat_core, eventually, open_recording, wait_finished


def has_streamed(chat: ChatService, conversation: str, text: str) -> bool:
    reply = chat.live_reply(conversation)
    return reply is not None and reply.content.startswith(text)


async def test_user_message_is_committed_before_the_reply_starts(data_dir: Path) -> None:
    store = await open_recording(data_dir / DB_FILENAME)
    bot = ScriptedBot()
    seen_in_db: list[list[str]] = []

    async def stream(history, *, model=None, params=None):
        # When the bot runs, the user's message must already be on disk (a second connection).
        with sqlite3.connect(data_dir / DB_FILENAME) as db:
            seen_in_db.append([row[0] for row in db.execute("SELECT content FROM messages")])
        yield Piece(text="answer")

    bot.stream = stream  # type: ignore[method-assign]
    chat = chat_core(store, bot)
    conversation = new_id()
    finished_event = asyncio.create_task(wait_finished(chat, conversation))
    await asyncio.sleep(0)
    await chat.send(conversation, "question")
    final = (await finished_event).message
    assert seen_in_db == [["question", ""]]
    assert store.writes[:2] == [("add", "user", "complete"), ("add", "assistant", "streaming")]
    assert store.writes[-1] == ("update", "assistant", "complete")
    stored = await store.messages(conversation)
    assert [(m.role, m.content, m.status) for m in stored] == [
        ("user", "question", "complete"),
        ("assistant", "answer", "complete"),
    ]
    assert final.content == "answer"
    await store.close()


async def test_long_reply_is_checkpointed_about_once_per_interval(data_dir: Path) -> None:
    store = await open_recording(data_dir / DB_FILENAME)
    bot = ScriptedBot(delay=0.005)
    bot.enqueue(["word "] * 200)  # ~1 s of streaming, 200 pieces
    chat = chat_core(store, bot, checkpoint_interval=0.2)
    conversation = new_id()
    waiter = asyncio.create_task(wait_finished(chat, conversation))
    await asyncio.sleep(0)
    await chat.send(conversation, "go")
    final = (await waiter).message
    checkpoints = [w for w in store.writes if w == ("update", "assistant", "streaming")]
    # Never once per piece: a handful of checkpoints for 200 pieces.
    assert 2 <= len(checkpoints) <= 12, store.writes
    assert final.content == "word " * 200 and final.piece_count == 200
    await store.close()


async def test_checkpoint_holds_partial_text_while_streaming(data_dir: Path) -> None:
    store = await ChatStore.open(data_dir / DB_FILENAME)
    bot = ScriptedBot()
    release = asyncio.Event()

    async def stream(history, *, model=None, params=None):
        yield Piece(text="one ")
        yield Piece(text="two ")
        await release.wait()  # the reply is mid-stream until the test lets it go
        yield Piece(text="three")

    bot.stream = stream  # type: ignore[method-assign]
    chat = chat_core(store, bot, checkpoint_interval=0.0, coalesce_window=0.0)
    conversation = new_id()
    await chat.send(conversation, "hi")
    for _ in range(100):
        reply = (await store.messages(conversation))[-1]
        if reply.content == "one two ":
            break
        await asyncio.sleep(0.01)
    assert reply.status == "streaming" and reply.content == "one two "
    release.set()
    await chat.shutdown()
    await store.close()


async def test_streaming_rows_become_interrupted_at_next_start(data_dir: Path) -> None:
    path = data_dir / DB_FILENAME
    store = await ChatStore.open(path)
    conversation = new_id()
    await store.add_message(Message(new_id(), conversation, "user", "hello"))
    reply = await store.add_message(
        Message(new_id(), conversation, "assistant", "partial tex", status="streaming")
    )
    await store.close()  # as if the process died mid-reply: the row is still 'streaming'
    reopened = await ChatStore.open(path)
    assert reopened.recovered_replies == 1
    stored = await reopened.get_message(reply.id)
    assert stored is not None and stored.status == "interrupted"
    assert stored.content == "partial tex"
    await reopened.close()


async def test_shutdown_saves_in_flight_reply_as_interrupted(data_dir: Path) -> None:
    store = await ChatStore.open(data_dir / DB_FILENAME)
    bot = ScriptedBot(delay=0.01)
    bot.enqueue(["a "] * 1000)
    chat = chat_core(store, bot, coalesce_window=0.0)
    conversation = new_id()
    await chat.send(conversation, "long please")
    await eventually(lambda: has_streamed(chat, conversation, "a a "))
    await chat.shutdown()
    reply = (await store.messages(conversation))[-1]
    assert reply.status == "interrupted" and reply.content.startswith("a a ")
    assert bot.cancelled.is_set()
    await store.close()


async def test_stop_keeps_partial_text_marked_stopped(data_dir: Path) -> None:
    store = await ChatStore.open(data_dir / DB_FILENAME)
    bot = ScriptedBot(delay=0.01)
    bot.enqueue(["b "] * 1000)
    chat = chat_core(store, bot, coalesce_window=0.0)
    conversation = new_id()
    waiter = asyncio.create_task(wait_finished(chat, conversation))
    await asyncio.sleep(0)
    await chat.send(conversation, "go")
    await eventually(lambda: has_streamed(chat, conversation, "b b "))
    assert chat.stop(conversation)
    final = (await waiter).message
    assert final.status == "stopped" and final.content.startswith("b ")
    stored = (await store.messages(conversation))[-1]
    assert stored.status == "stopped" and stored.content == final.content
    assert not chat.is_busy(conversation)
    await store.close()


async def test_migrations_set_user_version_and_wal(data_dir: Path) -> None:
    path = data_dir / DB_FILENAME
    store = await ChatStore.open(path)
    await store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_newer_schema_is_refused_clearly(data_dir: Path) -> None:
    path = data_dir / DB_FILENAME
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 5}")
    with pytest.raises(StoreError, match="newer"):
        await ChatStore.open(path)


def test_a_failed_commit_leaves_no_transaction_open() -> None:
    from htmxchat.store_schema import transaction

    db = sqlite3.connect(":memory:", isolation_level=None)
    db.execute("PRAGMA foreign_keys = ON")
    db.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
    db.execute(
        "CREATE TABLE child (parent INTEGER REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED)"
    )
    with pytest.raises(sqlite3.IntegrityError), transaction(db):
        db.execute("INSERT INTO child VALUES (42)")  # fails only at COMMIT
    assert not db.in_transaction
    with transaction(db):  # the next write works
        db.execute("INSERT INTO parent VALUES (1)")
    assert db.execute("SELECT count(*) FROM parent").fetchone()[0] == 1


def test_the_original_error_is_reported_when_sqlite_already_rolled_back() -> None:
    from htmxchat.store_schema import transaction

    db = sqlite3.connect(":memory:", isolation_level=None)
    with pytest.raises(ZeroDivisionError), transaction(db):
        db.execute("ROLLBACK")  # as SQLite does by itself after some errors (disk full)
        raise ZeroDivisionError
