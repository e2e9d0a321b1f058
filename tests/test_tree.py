"""Messages as a tree: the schema migration, parents of new messages, what the bot is sent,
and exports that keep the tree (docs/design.md, "Message tree")."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from aiohttp.test_utils import TestClient

from htmxchat import tree
from htmxchat.export import parse_export, to_json
from htmxchat.ids import new_id
from htmxchat.keys import chat_key
from htmxchat.store import MIGRATIONS, ChatStore
from htmxchat.store_schema import connect, statements
from tests.helpers import ScriptedBot, chat_core, eventually


def version_1_database(path: Path) -> sqlite3.Connection:
    """A chat log as htmxchat wrote it before messages formed a tree."""
    db = sqlite3.connect(path, isolation_level=None)
    names = [m.name for m in MIGRATIONS]
    for migration in MIGRATIONS[: names.index("m003_message_tree")]:
        for statement in statements(migration.sql):
            db.execute(statement)
    db.execute(f"PRAGMA user_version = {names.index('m003_message_tree')}")
    return db


def test_the_migration_turns_flat_lists_into_one_branch(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    db = version_1_database(path)
    rows = {
        "c1": [("u1", "user"), ("a1", "assistant"), ("a1b", "assistant"), ("a1c", "assistant"),
               ("u2", "user"), ("a2", "assistant")],
        "c2": [("v1", "user"), ("b1", "assistant")],
    }  # fmt: skip
    # Interleaved, as two conversations written at once would be.
    order = [("c1", 0), ("c2", 0), ("c1", 1), ("c1", 2), ("c2", 1), ("c1", 3), ("c1", 4), ("c1", 5)]
    for cid in rows:
        db.execute("INSERT INTO conversations VALUES (?, 't', 1, 1)", (cid,))
    for cid, i in order:
        mid, role = rows[cid][i]
        db.execute(
            "INSERT INTO messages (id, conversation_id, role, content, status, created_at) "
            "VALUES (?, ?, ?, ?, 'complete', 1)",
            (mid, cid, role, f"text of {mid}"),
        )
    db.close()
    migrated = connect(path)
    parents = dict(migrated.execute("SELECT id, parent_id FROM messages").fetchall())
    assert parents == {
        "u1": None, "a1": "u1", "a1b": "u1", "a1c": "u1", "u2": "a1c", "a2": "u2",
        "v1": None, "b1": "v1",
    }  # fmt: skip
    nodes = [
        tree.Node(r[0], r[1], r[2])
        for r in migrated.execute(
            "SELECT id, parent_id, role FROM messages WHERE conversation_id = 'c1' ORDER BY seq"
        )
    ]
    # The newest answer is shown, the earlier ones are its versions; nothing was lost.
    assert tree.shown_branch(nodes, {}) == ["u1", "a1c", "u2", "a2"]
    assert tree.versions(nodes)["a1b"] == (2, 3)
    assert migrated.execute("SELECT count(*) FROM messages").fetchone()[0] == 8
    migrated.close()


def test_the_shown_branch_follows_the_choices() -> None:
    nodes = [
        tree.Node("u", None), tree.Node("a", "u", "assistant"), tree.Node("b", "u", "assistant"),
        tree.Node("x", "a"), tree.Node("y", "b"), tree.Node("z", "b"),
    ]  # fmt: skip
    assert tree.shown_branch(nodes, {}) == ["u", "b", "z"]
    assert tree.shown_branch(nodes, {"u": "a"}) == ["u", "a", "x"]
    assert tree.shown_branch(nodes, {"u": "b", "b": "y"}) == ["u", "b", "y"]
    assert tree.shown_branch(nodes, {"u": "gone"}) == ["u", "b", "z"]  # a deleted choice
    assert tree.path_to(nodes, "y") == ["u", "b", "y"]
    assert sorted(tree.subtree(nodes, "b")) == ["b", "y", "z"]
    assert tree.versions(nodes)["a"] == (1, 2) and tree.versions(nodes)["u"] == (1, 1)


async def test_regenerated_answers_are_versions_and_the_bot_gets_the_path(
    store: ChatStore,
) -> None:
    bot = ScriptedBot()
    chat = chat_core(store, bot, coalesce_window=0.0)
    conversation = new_id()
    bot.enqueue(["first answer"])
    bot.enqueue(["second answer"])
    bot.enqueue(["third answer"])
    question = await chat.send(conversation, "question")
    assert question is not None
    await eventually(lambda: not chat.is_busy(conversation))
    await chat.regenerate(conversation)
    await eventually(lambda: not chat.is_busy(conversation))
    follow_up = await chat.send(conversation, "follow-up")
    assert follow_up is not None
    await eventually(lambda: not chat.is_busy(conversation))
    messages = await store.messages(conversation)
    by_text = {m.content: m for m in messages}
    assert by_text["first answer"].parent_id == question.id
    assert by_text["second answer"].parent_id == question.id
    assert by_text["follow-up"].parent_id == by_text["second answer"].id
    assert by_text["third answer"].parent_id == follow_up.id
    # The bot was sent the path to the new message's parent: never the other version.
    assert [t.content for t in bot.histories[-1]] == ["question", "second answer", "follow-up"]
    assert [m.content for m in await store.branch(conversation)] == [
        "question", "second answer", "follow-up", "third answer",
    ]  # fmt: skip


async def test_json_export_and_import_keep_the_tree(store: ChatStore) -> None:
    bot = ScriptedBot()
    chat = chat_core(store, bot, coalesce_window=0.0)
    conversation = new_id()
    await chat.send(conversation, "question")
    await eventually(lambda: not chat.is_busy(conversation))
    await chat.regenerate(conversation)
    await eventually(lambda: not chat.is_busy(conversation))
    header = await store.conversation(conversation)
    assert header is not None
    original = await store.messages(conversation)
    document = to_json(header, original)
    assert all("parent_id" in m for m in json.loads(document)["messages"])
    # Imported under new ids (the old ones are in use): parents follow their messages.
    imported = await store.import_conversation(*parse_export(document))
    assert imported.id != conversation
    copy = await store.messages(imported.id)
    assert [m.content for m in copy] == [m.content for m in original]
    question = copy[0]
    assert question.id != original[0].id
    assert [m.parent_id for m in copy] == [None, question.id, question.id]


def test_an_export_from_before_the_tree_imports_as_one_branch() -> None:
    document = {
        "format": "htmxchat-conversation",
        "version": 1,
        "conversation": {"id": new_id(), "title": "old", "created_at": 1, "updated_at": 1},
        "messages": [
            {"id": "q", "role": "user", "content": "q"},
            {"id": "a", "role": "assistant", "content": "a"},
            {"id": "b", "role": "assistant", "content": "b"},
            {"id": "r", "role": "user", "content": "r"},
        ],
    }
    _, messages = parse_export(json.dumps(document))
    assert [m.parent_id for m in messages] == [None, "q", "q", "b"]


async def test_markdown_export_is_the_branch_shown_and_json_the_whole_tree(
    client: TestClient, bot: ScriptedBot
) -> None:
    chat = client.app[chat_key]
    conversation = new_id()
    bot.enqueue(["old answer"])
    bot.enqueue(["new answer"])
    await chat.send(conversation, "question")
    await eventually(lambda: not chat.is_busy(conversation))
    await chat.regenerate(conversation)
    await eventually(lambda: not chat.is_busy(conversation))
    markdown = await (await client.get(f"/c/{conversation}/export.md")).text()
    assert "new answer" in markdown and "old answer" not in markdown
    document = await (await client.get(f"/c/{conversation}/export.json")).json()
    assert [m["content"] for m in document["messages"]] == [
        "question", "old answer", "new answer",
    ]  # fmt: skip


async def test_deleting_a_conversation_leaves_no_choices_behind(store: ChatStore) -> None:
    chat = chat_core(store, ScriptedBot(), coalesce_window=0.0)
    conversation = new_id()
    await chat.send(conversation, "question")
    await eventually(lambda: not chat.is_busy(conversation))
    db = sqlite3.connect(store.path)
    try:
        count = "SELECT count(*) FROM message_choices WHERE conversation_id = ?"
        assert db.execute(count, (conversation,)).fetchone()[0] == 2
        await chat.delete(conversation)
        assert db.execute(count, (conversation,)).fetchone()[0] == 0
    finally:
        db.close()


async def test_the_fast_path_for_unbranched_chats_reads_what_the_tree_walk_reads(
    store: ChatStore, monkeypatch
) -> None:
    """Most chats never branch: they are read in order without walking the tree. Both ways
    must agree, page by page."""
    from htmxchat import store_tree

    chat = chat_core(store, ScriptedBot(), coalesce_window=0.0)
    conversation = new_id()
    for n in range(7):
        await chat.send(conversation, f"question {n}")
        await eventually(lambda: not chat.is_busy(conversation))
    db = connect(store.path)
    try:
        assert store_tree.is_linear(db, conversation)
        middle = store_tree.select_branch(db, conversation)[6].id

        def reads() -> list[object]:
            return [
                store_tree.select_shown(db, conversation, 5, None),
                store_tree.select_shown(db, conversation, 5, middle),
                store_tree.select_shown_before(db, conversation, middle, 3),
                store_tree.select_path(db, conversation, middle),
                store_tree.select_branch(db, conversation),
            ]

        fast = reads()
        monkeypatch.setattr(store_tree, "is_linear", lambda db, cid: False)
        assert reads() == fast
        assert [m.content for m in fast[2][0]] == ["ok", "question 2", "ok"]  # type: ignore[index]
    finally:
        db.close()
