"""Reading and changing the message tree in the chat log (docs/design.md, "Message tree")."""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import replace

from htmxchat import tree
from htmxchat.ids import new_id
from htmxchat.models import Message
from htmxchat.store_queries import (
    _MESSAGE_COLUMNS,
    MAX_WINDOW,
    choices,
    choose,
    has_older,
    is_linear,
    nodes,
    row_to_message,
    select_messages,
    select_messages_before,
    seq_of,
)
from htmxchat.store_schema import transaction

log = logging.getLogger(__name__)

_BATCH = 500  # ids per `IN (...)`: stay below SQLite's variable limit


def branch_ids(db: sqlite3.Connection, conversation_id: str) -> list[str]:
    """The ids of the branch shown, from the first level down."""
    return tree.shown_branch(nodes(db, conversation_id), choices(db, conversation_id))


def select_path(db: sqlite3.Connection, conversation_id: str, message_id: str) -> list[Message]:
    """The messages from the first level down to `message_id` (what a reply below it sees)."""
    if is_linear(db, conversation_id):
        seq = seq_of(db, conversation_id, message_id)
        if seq is None:
            return []
        rows = db.execute(
            f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ? AND seq <= ? "
            "ORDER BY seq",
            (conversation_id, seq),
        ).fetchall()
        return [row_to_message(row) for row in rows]
    all_nodes = nodes(db, conversation_id)
    ids = tree.path_to(all_nodes, message_id)
    return _numbered(_by_ids(db, conversation_id, ids), all_nodes)


def select_branch(db: sqlite3.Connection, conversation_id: str) -> list[Message]:
    """The branch shown, from the first level down."""
    return select_shown(db, conversation_id, None, None)[0]


def select_shown(
    db: sqlite3.Connection, conversation_id: str, limit: int | None, since: str | None
) -> tuple[list[Message], bool]:
    """The newest `limit` messages of the branch shown (all with None), and whether there
    are older ones. With `since` (a message id on the branch), the window reaches back to it
    when it is at most MAX_WINDOW messages from the newest: a re-sync keeps what is shown."""
    if is_linear(db, conversation_id):  # the branch is every message, in order
        found = select_messages(db, conversation_id, limit, since)
        return found, bool(found) and has_older(db, conversation_id, found[0].id)
    all_nodes = nodes(db, conversation_id)
    ids = tree.shown_branch(all_nodes, choices(db, conversation_id))
    start = 0 if limit is None else max(0, len(ids) - limit)
    if since is not None and since in ids and limit is not None:
        at = ids.index(since)
        if len(ids) - at <= MAX_WINDOW:
            start = min(start, at)
    window = _numbered(_by_ids(db, conversation_id, ids[start:]), all_nodes)
    return window, start > 0


def select_shown_before(
    db: sqlite3.Connection, conversation_id: str, before: str, limit: int
) -> tuple[list[Message], bool]:
    """Up to `limit` messages of the branch shown before message `before`, and whether there
    are even older ones (nothing when `before` is not on the branch)."""
    if is_linear(db, conversation_id):
        return select_messages_before(db, conversation_id, before, limit)
    all_nodes = nodes(db, conversation_id)
    ids = tree.shown_branch(all_nodes, choices(db, conversation_id))
    if before not in ids:
        return [], False
    end = ids.index(before)
    start = max(0, end - limit)
    return _numbered(_by_ids(db, conversation_id, ids[start:end]), all_nodes), start > 0


def count_versions(db: sqlite3.Connection, message: Message) -> Message:
    """`message` with its version number and count (it is the newest of its siblings)."""
    count = db.execute(
        "SELECT count(*) FROM messages WHERE conversation_id = ? AND parent_id IS ?",
        (message.conversation_id, message.parent_id),
    ).fetchone()[0]
    return replace(message, version=int(count), versions=int(count))


def show_version(
    db: sqlite3.Connection, conversation_id: str, message_id: str, step: int
) -> str | None:
    """Show the version `step` places from `message_id` among its siblings (clamped); the
    id now shown, or None when the message is unknown."""
    all_nodes = nodes(db, conversation_id)
    node = next((n for n in all_nodes if n.id == message_id), None)
    if node is None:
        return None
    parent = node.parent_id or tree.ROOT
    siblings = next(kids for kids in tree.children(all_nodes).values() if message_id in kids)
    at = siblings.index(message_id) + step
    chosen = siblings[max(0, min(len(siblings) - 1, at))]
    with transaction(db):
        choose(db, conversation_id, [(parent, chosen)])
    return chosen


def show_path(db: sqlite3.Connection, conversation_id: str, message_id: str) -> bool:
    """Make message `message_id` part of the branch shown (each message on the way down to it
    becomes its parent's choice); False when nothing had to change."""
    all_nodes = nodes(db, conversation_id)
    path = tree.path_to(all_nodes, message_id)
    if not path or message_id in tree.shown_branch(all_nodes, choices(db, conversation_id)):
        return False
    parents = {n.id: n.parent_id or tree.ROOT for n in all_nodes}
    with transaction(db):
        choose(db, conversation_id, [(parents[i], i) for i in path])
    return True


def delete_subtree(db: sqlite3.Connection, conversation_id: str, message_id: str) -> int:
    """Erase a message and every message below it (their files and search entries go with
    them); the number of messages erased."""
    ids = tree.subtree(nodes(db, conversation_id), message_id)
    with transaction(db):
        for start in range(0, len(ids), _BATCH):
            batch = ids[start : start + _BATCH]
            marks = ", ".join("?" * len(batch))
            db.execute(
                f"DELETE FROM message_choices WHERE conversation_id = ? AND "
                f"(child_id IN ({marks}) OR parent_id IN ({marks}))",
                (conversation_id, *batch, *batch),
            )
            db.execute(f"DELETE FROM messages WHERE id IN ({marks})", batch)
        if ids:
            # Deletion is for real, as for conversations (docs/design.md, "Storage"): merge
            # the search index's old segments so secure_delete overwrites their pages...
            db.execute("INSERT INTO messages_fts (messages_fts) VALUES ('optimize')")
    if ids:
        # ...and copy the WAL's old page images back and truncate it.
        busy = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
        if busy:  # another reader holds the WAL; the next close retries
            log.warning("could not truncate the write-ahead log after a delete; will retry")
    return len(ids)


def copy_attachments(
    db: sqlite3.Connection, conversation_id: str, source_id: str, target_id: str
) -> None:
    """Give message `target_id` copies of the files of `source_id` (an edited message keeps
    its files; each version owns its own, so deleting one leaves the other whole)."""
    rows = db.execute(
        "SELECT name, mime, kind, size, data FROM attachments WHERE message_id = ? ORDER BY rowid",
        (source_id,),
    ).fetchall()
    if not rows:
        return
    now = time.time()
    with transaction(db):
        for row in rows:
            db.execute(
                "INSERT INTO attachments (id, conversation_id, message_id, name, mime, kind, "
                "size, data, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (new_id(), conversation_id, target_id, *tuple(row), now),
            )


def _numbered(messages: list[Message], all_nodes: Sequence[tree.Node]) -> list[Message]:
    """The messages with their version number and count filled in."""
    numbers = tree.versions(all_nodes, only={m.id for m in messages})
    return [
        replace(m, version=numbers[m.id][0], versions=numbers[m.id][1]) if m.id in numbers else m
        for m in messages
    ]


def _by_ids(db: sqlite3.Connection, conversation_id: str, ids: list[str]) -> list[Message]:
    found: dict[str, Message] = {}
    for start in range(0, len(ids), _BATCH):
        batch = ids[start : start + _BATCH]
        marks = ", ".join("?" * len(batch))
        rows = db.execute(
            f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ? "
            f"AND id IN ({marks})",
            (conversation_id, *batch),
        ).fetchall()
        found.update((row["id"], row_to_message(row)) for row in rows)
    return [found[i] for i in ids if i in found]
