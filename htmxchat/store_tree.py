"""Reading the message tree from the chat log (docs/design.md, "Message tree")."""

from __future__ import annotations

import sqlite3

from htmxchat import tree
from htmxchat.models import Message
from htmxchat.store_queries import _MESSAGE_COLUMNS, row_to_message


def nodes(db: sqlite3.Connection, conversation_id: str) -> list[tree.Node]:
    """Every message's place in the conversation's tree, oldest first."""
    rows = db.execute(
        "SELECT id, parent_id, role FROM messages WHERE conversation_id = ? ORDER BY seq",
        (conversation_id,),
    ).fetchall()
    return [tree.Node(row[0], row[1], row[2]) for row in rows]


def choices(db: sqlite3.Connection, conversation_id: str) -> dict[str, str]:
    """The chosen child per parent id (tree.ROOT for the first level)."""
    rows = db.execute(
        "SELECT parent_id, child_id FROM message_choices WHERE conversation_id = ?",
        (conversation_id,),
    ).fetchall()
    return {row[0]: row[1] for row in rows}


def select_path(db: sqlite3.Connection, conversation_id: str, message_id: str) -> list[Message]:
    """The messages from the first level down to `message_id` (what a reply below it sees)."""
    ids = tree.path_to(nodes(db, conversation_id), message_id)
    return _by_ids(db, conversation_id, ids)


def select_branch(db: sqlite3.Connection, conversation_id: str) -> list[Message]:
    """The branch shown, from the first level down."""
    ids = tree.shown_branch(nodes(db, conversation_id), choices(db, conversation_id))
    return _by_ids(db, conversation_id, ids)


def _by_ids(db: sqlite3.Connection, conversation_id: str, ids: list[str]) -> list[Message]:
    wanted = set(ids)
    rows = db.execute(
        f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ?", (conversation_id,)
    ).fetchall()
    found = {row["id"]: row_to_message(row) for row in rows if row["id"] in wanted}
    return [found[i] for i in ids if i in found]
