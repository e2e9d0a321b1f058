"""The chat log's statements for attachments (run on the store's worker thread).

Uploaded files wait with no message (`message_id IS NULL`) until a send claims them; those
never sent are removed after PENDING_SECONDS. Sent ones go with their message
(ON DELETE CASCADE), so deleting a message or conversation deletes the bytes.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import cast

from htmxchat.attachments import PENDING_SECONDS, AttachmentData, AttachmentInfo, Kind
from htmxchat.models import Message
from htmxchat.store_schema import transaction

_INFO = "id, name, mime, kind, size"


def _info(row: sqlite3.Row) -> AttachmentInfo:
    return AttachmentInfo(row["id"], row["name"], row["mime"], cast(Kind, row["kind"]), row["size"])


def delete_stale(db: sqlite3.Connection, now: float) -> int:
    """Remove uploads that were never sent within PENDING_SECONDS."""
    with transaction(db):
        cursor = db.execute(
            "DELETE FROM attachments WHERE message_id IS NULL AND created_at < ?",
            (now - PENDING_SECONDS,),
        )
    return cursor.rowcount


def insert_pending(
    db: sqlite3.Connection, conversation_id: str, files: Sequence[AttachmentData]
) -> None:
    """Store uploaded files for the conversation, not yet part of any message."""
    now = time.time()
    delete_stale(db, now)
    with transaction(db):
        for f in files:
            i = f.info
            db.execute(
                "INSERT INTO attachments (id, conversation_id, message_id, name, mime, kind, "
                "size, data, created_at) VALUES (?, ?, NULL, ?, ?, ?, ?, ?, ?)",
                (i.id, conversation_id, i.name, i.mime, i.kind, i.size, f.data, now),
            )


def pending_count(db: sqlite3.Connection, conversation_id: str) -> int:
    """How many uploads wait, unsent, in the conversation."""
    row = db.execute(
        "SELECT count(*) FROM attachments WHERE conversation_id = ? AND message_id IS NULL",
        (conversation_id,),
    ).fetchone()
    return int(row[0])


def pending_counts(db: sqlite3.Connection, conversation_id: str) -> tuple[int, int]:
    """Uploads waiting in the conversation's bucket, and in all conversations together.

    A conversation that has not started yet (no row) shares one bucket with every other
    such id, so inventing ids never buys more room (docs/limits.md)."""
    started = db.execute("SELECT 1 FROM conversations WHERE id = ?", (conversation_id,)).fetchone()
    if started:
        bucket = pending_count(db, conversation_id)
    else:
        bucket = db.execute(
            "SELECT count(*) FROM attachments WHERE message_id IS NULL AND conversation_id "
            "NOT IN (SELECT id FROM conversations)"
        ).fetchone()[0]
    total = db.execute("SELECT count(*) FROM attachments WHERE message_id IS NULL").fetchone()
    return int(bucket), int(total[0])


def pending(
    db: sqlite3.Connection, conversation_id: str, ids: Sequence[str]
) -> list[AttachmentInfo]:
    """The uploads with these ids that wait, unsent, in this conversation (in `ids` order)."""
    found: dict[str, AttachmentInfo] = {}
    for attachment_id in ids:
        row = db.execute(
            f"SELECT {_INFO} FROM attachments WHERE id = ? AND conversation_id = ? "
            "AND message_id IS NULL",
            (attachment_id, conversation_id),
        ).fetchone()
        if row is not None:
            found[attachment_id] = _info(row)
    return [found[i] for i in ids if i in found]


def claim(
    db: sqlite3.Connection, conversation_id: str, message_id: str, ids: Sequence[str]
) -> None:
    """Make the waiting uploads part of the (stored) message."""
    with transaction(db):
        for attachment_id in ids:
            db.execute(
                "UPDATE attachments SET message_id = ? WHERE id = ? AND conversation_id = ? "
                "AND message_id IS NULL",
                (message_id, attachment_id, conversation_id),
            )


def with_infos(db: sqlite3.Connection, messages: list[Message]) -> list[Message]:
    """The messages with their attachments' descriptions filled in."""
    users = [m.id for m in messages if m.role == "user"]
    if not users:
        return messages
    infos: dict[str, list[AttachmentInfo]] = {}
    for start in range(0, len(users), 500):  # stay below SQLite's variable limit
        batch = users[start : start + 500]
        marks = ", ".join("?" * len(batch))
        rows = db.execute(
            f"SELECT message_id, {_INFO} FROM attachments WHERE message_id IN ({marks}) "
            "ORDER BY rowid",
            batch,
        ).fetchall()
        for row in rows:
            infos.setdefault(row["message_id"], []).append(_info(row))
    return [replace(m, attachments=tuple(infos[m.id])) if m.id in infos else m for m in messages]


def data_by_message(
    db: sqlite3.Connection, conversation_id: str
) -> dict[str, list[AttachmentData]]:
    """Every sent attachment of the conversation with its bytes, by message id."""
    rows = db.execute(
        f"SELECT a.message_id, {', '.join('a.' + c for c in _INFO.split(', '))}, a.data "
        "FROM attachments a JOIN messages m ON m.id = a.message_id "
        "WHERE m.conversation_id = ? ORDER BY a.rowid",
        (conversation_id,),
    ).fetchall()
    found: dict[str, list[AttachmentData]] = {}
    for row in rows:
        found.setdefault(row["message_id"], []).append(AttachmentData(_info(row), row["data"]))
    return found


def select_one(db: sqlite3.Connection, attachment_id: str) -> AttachmentData | None:
    """One attachment with its bytes."""
    row = db.execute(
        f"SELECT {_INFO}, data FROM attachments WHERE id = ?", (attachment_id,)
    ).fetchone()
    return None if row is None else AttachmentData(_info(row), row["data"])


def insert_imported(
    db: sqlite3.Connection, conversation_id: str, message_id: str, m: Message
) -> None:
    """Store an imported message's attachments (inside the import's transaction)."""
    now = time.time()
    for i in m.attachments:
        if i.data is None:
            continue  # an export without the bytes: nothing to bring back
        db.execute(
            "INSERT INTO attachments (id, conversation_id, message_id, name, mime, "
            "kind, size, data, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (i.id, conversation_id, message_id, i.name, i.mime, i.kind, i.size, i.data, now),
        )
