"""The store's history features: migrations, paging, rename, search, delete, import."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from htmxchat.ids import new_id
from htmxchat.models import Conversation, Message
from htmxchat.search import fts_query
from htmxchat.store import DB_FILENAME, MIGRATIONS, ChatStore, StoreError
from tests.helpers import database_bytes


async def add_conversation(store: ChatStore, count: int, *, words: str = "hello") -> str:
    conversation = new_id()
    for number in range(count):
        role = "user" if number % 2 == 0 else "assistant"
        await store.add_message(
            Message(new_id(), conversation, role, f"{words} number {number}")  # type: ignore[arg-type]
        )
    return conversation


async def test_migrates_a_version_1_database(data_dir: Path) -> None:
    path = data_dir / DB_FILENAME
    db = sqlite3.connect(path)
    db.executescript(MIGRATIONS[0].sql)
    db.execute("INSERT INTO conversations VALUES ('c0000000000000000001', 't', 1, 1)")
    db.execute(
        "INSERT INTO messages (id, conversation_id, role, content, status, created_at) "
        "VALUES ('m0000000000000000001', 'c0000000000000000001', 'user', 'ancient words', "
        "'complete', 1)"
    )
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()
    store = await ChatStore.open(path)
    try:
        hits = await store.search("ancient")
        assert [hit.message_id for hit in hits] == ["m0000000000000000001"]
    finally:
        await store.close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    db.close()


async def test_paging_walks_back_to_the_first_message(store: ChatStore) -> None:
    conversation = await add_conversation(store, 23)
    newest = await store.messages(conversation, limit=10)
    assert [m.content for m in newest] == [f"hello number {n}" for n in range(13, 23)]
    assert await store.has_older(conversation, newest[0].id)
    seen = list(newest)
    while True:
        page, more = await store.messages_before(conversation, seen[0].id, 10)
        seen = page + seen
        if not more:
            break
    assert [m.content for m in seen] == [f"hello number {n}" for n in range(23)]
    assert not await store.has_older(conversation, seen[0].id)
    # a re-sync may keep older messages the page shows (the window reaches back to `since`)
    window = await store.messages(conversation, limit=10, since=seen[5].id)
    assert window[0].id == seen[5].id and len(window) == 18
    # an unknown `since` falls back to the newest page
    assert len(await store.messages(conversation, limit=10, since=new_id())) == 10


async def test_rename_and_order(store: ChatStore) -> None:
    first = await add_conversation(store, 1, words="first")
    second = await add_conversation(store, 1, words="second")
    listed = await store.conversations()
    assert [c.id for c in listed] == [second, first]
    assert listed[0].title == "second number 0"
    renamed = await store.rename_conversation(first, "My <title>")
    assert renamed is not None and renamed.title == "My <title>"
    assert await store.rename_conversation(new_id(), "x") is None
    assert await store.message_counts() == {first: 1, second: 1}


async def test_search_finds_words_and_prefixes_across_conversations(store: ChatStore) -> None:
    a = await add_conversation(store, 2, words="the zebra crossing")
    b = await add_conversation(store, 1, words="a zebrafish tank")
    await add_conversation(store, 1, words="nothing relevant")
    hits = await store.search("zebra")
    assert {hit.conversation_id for hit in hits} == {a, b}
    hit = next(h for h in hits if h.conversation_id == b)
    assert hit.title == "a zebrafish tank number 0"
    assert ("zebrafish", True) in hit.snippet
    assert await store.search("crossing zeb") and not await store.search("crossing tank")
    # FTS5 syntax typed by a person is searched for, not executed
    assert await store.search('"zebra') is not None
    assert await store.search("NEAR( OR AND *") == []
    assert await store.search("   ") == []
    assert fts_query('say "hi"') == '"say" """hi"""*'


async def test_search_follows_streamed_updates(store: ChatStore) -> None:
    conversation = await add_conversation(store, 1)
    reply = await store.add_message(
        Message(new_id(), conversation, "assistant", "", status="streaming")
    )
    from dataclasses import replace

    await store.update_reply(replace(reply, content="a platypus appears", status="complete"))
    assert [h.message_id for h in await store.search("platypus")] == [reply.id]


async def test_delete_removes_every_trace_from_disk(store: ChatStore, data_dir: Path) -> None:
    secret = "xylophonequartz"
    doomed = await add_conversation(store, 40, words=f"{secret} and more")
    kept = await add_conversation(store, 2, words="keep me")
    assert await store.search(secret)
    assert await store.delete_conversation(doomed)
    assert not await store.delete_conversation(doomed)
    assert await store.conversation(doomed) is None
    assert await store.messages(doomed) == []
    assert await store.search(secret) == []
    assert [c.id for c in await store.conversations()] == [kept]
    raw = database_bytes(data_dir)
    assert secret.encode() not in raw
    assert doomed.encode() not in raw
    assert b"keep me" in raw


async def test_import_keeps_free_ids_and_replaces_taken_ones(store: ChatStore) -> None:
    conversation = Conversation(new_id(), "Imported", 10.0, 20.0)
    messages = [
        Message(new_id(), conversation.id, "user", "question", created_at=10.0),
        Message(new_id(), conversation.id, "assistant", "answer", created_at=11.0),
    ]
    stored = await store.import_conversation(conversation, messages)
    assert stored.id == conversation.id
    assert [m.id for m in await store.messages(stored.id)] == [m.id for m in messages]
    again = await store.import_conversation(conversation, messages)
    assert again.id != conversation.id
    copies = await store.messages(again.id)
    assert [m.content for m in copies] == ["question", "answer"]
    assert not {m.id for m in copies} & {m.id for m in messages}
    assert (await store.conversation(again.id)).title == "Imported"  # type: ignore[union-attr]


async def test_a_reply_does_not_bring_a_deleted_conversation_back(store: ChatStore) -> None:
    from htmxchat.store import ConversationGoneError

    conversation = new_id()
    await store.add_message(Message(new_id(), conversation, "user", "hello"))
    await store.delete_conversation(conversation)
    with pytest.raises(ConversationGoneError, match="deleted"):
        await store.add_message(
            Message(new_id(), conversation, "assistant", "", status="streaming")
        )
    assert await store.conversation(conversation) is None
    assert await store.messages(conversation) == []


async def test_import_goes_in_batches_and_a_failure_leaves_nothing(store: ChatStore) -> None:
    import sqlite3

    from htmxchat.store import IMPORT_BATCH

    header = Conversation(new_id(), "imported", 1.0, 2.0)
    many = [Message(new_id(), header.id, "user", f"m{i}") for i in range(IMPORT_BATCH * 2 + 7)]
    stored = await store.import_conversation(header, many)
    assert len(await store.messages(stored.id)) == len(many)

    broken_header = Conversation(new_id(), "broken", 1.0, 2.0)
    broken = [Message(new_id(), broken_header.id, "user", f"b{i}") for i in range(IMPORT_BATCH + 5)]
    broken.append(Message(new_id(), broken_header.id, "wizard", "x"))  # type: ignore[arg-type]
    with pytest.raises((StoreError, sqlite3.Error)):
        await store.import_conversation(broken_header, broken)
    assert await store.conversation(broken_header.id) is None
    assert await store.messages(broken_header.id) == []
