"""The statements the chat log runs, each a plain function of a connection (the store
runs them on its worker thread)."""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from dataclasses import replace
from typing import cast

from htmxchat import tree
from htmxchat.ids import is_valid_id, new_id
from htmxchat.models import Conversation, Message, Role, Status
from htmxchat.provenance import clean_provenance
from htmxchat.store_attachments import insert_imported
from htmxchat.store_schema import StoreError, transaction
from htmxchat.tools.results import ToolCall, calls_from_json, searchable

log = logging.getLogger(__name__)

TITLE_LENGTH = 80
IMPORT_BATCH = 500  # messages per transaction when importing
# A sync may ask to keep older messages the page already shows, but never more than this.
MAX_WINDOW = 1000

_MESSAGE_COLUMNS = (
    "id, conversation_id, role, content, status, reasoning, error, bot, model, created_at, "
    "finished_at, first_piece_ms, piece_count, prompt_tokens, completion_tokens, provenance, "
    "tool_calls, tool_text, parent_id"
)
_PLACEHOLDERS = ", ".join("?" * len(_MESSAGE_COLUMNS.split(",")))


class ConversationGoneError(StoreError):
    """The conversation was deleted while something was being added to it."""


def insert_message(db: sqlite3.Connection, m: Message) -> str | None:
    """Insert `m`; returns its parent: `m.parent_id`, or when that is None the last message
    of the branch shown (so a message added without a parent continues what the reader
    sees); `tree.ROOT` puts it on the first level (None returned)."""
    title = " ".join(m.content.split())[:TITLE_LENGTH] if m.role == "user" else ""
    with transaction(db):
        if m.role != "user":
            # Only a user's message starts a conversation: a reply whose conversation was
            # deleted meanwhile must not bring it back as an empty "Untitled" one.
            exists = db.execute(
                "SELECT 1 FROM conversations WHERE id = ?", (m.conversation_id,)
            ).fetchone()
            if exists is None:
                raise ConversationGoneError(
                    "This conversation was deleted. Start a new chat to go on."
                )
        db.execute(
            "INSERT INTO conversations (id, title, created_at, updated_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET updated_at = excluded.updated_at, "
            "title = CASE WHEN conversations.title = '' THEN excluded.title "
            "ELSE conversations.title END",
            (m.conversation_id, title, m.created_at, m.created_at),
        )
        if m.parent_id is None:  # below the last message of the branch shown
            if is_linear(db, m.conversation_id):
                last = db.execute(
                    "SELECT id FROM messages WHERE conversation_id = ? ORDER BY seq DESC LIMIT 1",
                    (m.conversation_id,),
                ).fetchone()
                ids = [] if last is None else [last[0]]
            else:
                ids = tree.shown_branch(
                    nodes(db, m.conversation_id), choices(db, m.conversation_id)
                )
            m = replace(m, parent_id=ids[-1] if ids else None)
        elif m.parent_id == tree.ROOT:  # explicitly on the first level
            m = replace(m, parent_id=None)
        db.execute(
            f"INSERT INTO messages ({_MESSAGE_COLUMNS}) VALUES ({_PLACEHOLDERS})",
            (
                m.id, m.conversation_id, m.role, m.content, m.status, m.reasoning, m.error,
                m.bot, m.model, m.created_at, m.finished_at, m.first_piece_ms, m.piece_count,
                *_usage_columns(m), m.parent_id,
            ),
        )  # fmt: skip
        # A new message is the one shown under its parent.
        choose(db, m.conversation_id, [(m.parent_id or tree.ROOT, m.id)])
    return m.parent_id


def choose(db: sqlite3.Connection, conversation_id: str, picks: list[tuple[str, str]]) -> None:
    """Record which child is shown under each parent: (parent id or tree.ROOT, child id)."""
    db.executemany(
        "INSERT INTO message_choices (conversation_id, parent_id, child_id) VALUES (?, ?, ?) "
        "ON CONFLICT (conversation_id, parent_id) DO UPDATE SET child_id = excluded.child_id",
        [(conversation_id, parent, child) for parent, child in picks],
    )


def nodes(db: sqlite3.Connection, conversation_id: str) -> list[tree.Node]:
    """Every message's place in the conversation's tree: grouped by parent, oldest first
    within a parent (which is all the tree functions need; read from the index alone)."""
    rows = db.execute(
        "SELECT id, parent_id FROM messages INDEXED BY messages_tree "
        "WHERE conversation_id = ? ORDER BY parent_id, seq",
        (conversation_id,),
    ).fetchall()
    return [tree.Node(row[0], row[1]) for row in rows]


def is_linear(db: sqlite3.Connection, conversation_id: str) -> bool:
    """True when no message has versions: one first message, each other one the only child
    of its parent. Then the branch shown is every message in order (most conversations)."""
    count, parents, roots = db.execute(
        "SELECT count(*), count(DISTINCT parent_id), count(*) - count(parent_id) "
        "FROM messages INDEXED BY messages_tree WHERE conversation_id = ?",
        (conversation_id,),
    ).fetchone()
    return bool(count == 0 or (roots == 1 and parents == count - 1))


def choices(db: sqlite3.Connection, conversation_id: str) -> dict[str, str]:
    """The chosen child per parent id (tree.ROOT for the first level)."""
    rows = db.execute(
        "SELECT parent_id, child_id FROM message_choices WHERE conversation_id = ?",
        (conversation_id,),
    ).fetchall()
    return {row[0]: row[1] for row in rows}


def update_reply(db: sqlite3.Connection, m: Message) -> None:
    with transaction(db):
        db.execute(
            "UPDATE messages SET content = ?, reasoning = ?, status = ?, error = ?, model = ?, "
            "finished_at = ?, first_piece_ms = ?, piece_count = ?, prompt_tokens = ?, "
            "completion_tokens = ?, provenance = ?, tool_calls = ?, tool_text = ? WHERE id = ?",
            (
                m.content, m.reasoning, m.status, m.error, m.model, m.finished_at,
                m.first_piece_ms, m.piece_count, *_usage_columns(m), m.id,
            ),
        )  # fmt: skip
        db.execute(
            "UPDATE conversations SET updated_at = ? WHERE id = ?",
            (m.finished_at or time.time(), m.conversation_id),
        )


def row_to_message(row: sqlite3.Row) -> Message:
    return Message(
        id=row["id"],
        conversation_id=row["conversation_id"],
        role=cast(Role, row["role"]),
        content=row["content"],
        status=cast(Status, row["status"]),
        reasoning=row["reasoning"],
        error=row["error"],
        bot=row["bot"],
        model=row["model"],
        created_at=row["created_at"],
        finished_at=row["finished_at"],
        first_piece_ms=row["first_piece_ms"],
        piece_count=row["piece_count"],
        prompt_tokens=row["prompt_tokens"],
        completion_tokens=row["completion_tokens"],
        provenance=_provenance(row["provenance"]),
        parent_id=row["parent_id"],
        tool_calls=_tool_calls(row["tool_calls"]),
    )


def _usage_columns(
    m: Message,
) -> tuple[int | None, int | None, str | None, str | None, str]:
    """Token counts and provenance (as JSON) for the m004_chat_settings columns, the tool
    calls (as JSON) for m008_tool_calls and their text for search (m009)."""
    provenance = None if m.provenance is None else json.dumps(dict(m.provenance))
    calls = json.dumps([c.as_json() for c in m.tool_calls]) if m.tool_calls else None
    return m.prompt_tokens, m.completion_tokens, provenance, calls, searchable(m.tool_calls)


def _tool_calls(text: str | None) -> tuple[ToolCall, ...]:
    if not text:
        return ()
    try:
        return calls_from_json(json.loads(text))
    except (ValueError, RecursionError):
        log.warning("ignoring an answer's unreadable tool calls")
        return ()


def _provenance(text: str | None) -> dict[str, object] | None:
    value = _json_object(text)
    return clean_provenance(value) if value is not None else None


def _json_object(text: str | None) -> dict[str, object] | None:
    try:
        value = json.loads(text) if text else None
    except (ValueError, RecursionError):  # RecursionError: nested past the parser's limit
        log.warning("ignoring an unreadable answer provenance or chat settings")
        return None
    return value if isinstance(value, dict) else None


def select_chat_settings(db: sqlite3.Connection, conversation_id: str) -> dict[str, object]:
    row = db.execute(
        "SELECT settings FROM chat_settings WHERE conversation_id = ?", (conversation_id,)
    ).fetchone()
    value = _json_object(row[0]) if row is not None else None
    return value or {}


def save_chat_settings(
    db: sqlite3.Connection, conversation_id: str, settings: dict[str, object]
) -> None:
    with transaction(db):
        db.execute(
            "INSERT INTO chat_settings (conversation_id, settings) VALUES (?, ?) "
            "ON CONFLICT (conversation_id) DO UPDATE SET settings = excluded.settings",
            (conversation_id, json.dumps(settings)),
        )


def seq_of(db: sqlite3.Connection, conversation_id: str, message_id: str) -> int | None:
    row = db.execute(
        "SELECT seq FROM messages WHERE id = ? AND conversation_id = ?",
        (message_id, conversation_id),
    ).fetchone()
    return None if row is None else int(row[0])


def select_messages(
    db: sqlite3.Connection, conversation_id: str, limit: int | None, since: str | None = None
) -> list[Message]:
    if since is not None and limit is not None:
        seq = seq_of(db, conversation_id, since)
        if seq is not None:
            count = db.execute(
                "SELECT count(*) FROM messages WHERE conversation_id = ? AND seq >= ?",
                (conversation_id, seq),
            ).fetchone()[0]
            if count <= MAX_WINDOW:
                limit = max(limit, count)
    rows = db.execute(
        f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ? "
        "ORDER BY seq DESC LIMIT ?",
        (conversation_id, -1 if limit is None else limit),
    ).fetchall()
    return [row_to_message(row) for row in reversed(rows)]


def select_message(db: sqlite3.Connection, message_id: str) -> Message | None:
    row = db.execute(
        f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE id = ?", (message_id,)
    ).fetchone()
    return None if row is None else row_to_message(row)


def row_to_conversation(row: sqlite3.Row) -> Conversation:
    return Conversation(
        id=row["id"],
        title=row["title"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        imported_at=row["imported_at"],
    )


def select_conversation(db: sqlite3.Connection, conversation_id: str) -> Conversation | None:
    row = db.execute(
        "SELECT id, title, created_at, updated_at, imported_at FROM conversations WHERE id = ?",
        (conversation_id,),
    ).fetchone()
    return None if row is None else row_to_conversation(row)


def select_conversations(db: sqlite3.Connection, limit: int | None = None) -> list[Conversation]:
    rows = db.execute(
        "SELECT id, title, created_at, updated_at, imported_at FROM conversations "
        "ORDER BY max(updated_at, coalesce(imported_at, 0)) DESC LIMIT ?",
        (-1 if limit is None else limit,),
    ).fetchall()
    return [row_to_conversation(row) for row in rows]


def select_messages_before(
    db: sqlite3.Connection, conversation_id: str, before: str, limit: int
) -> tuple[list[Message], bool]:
    seq = seq_of(db, conversation_id, before)
    if seq is None:
        return [], False
    rows = db.execute(
        f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ? AND seq < ? "
        "ORDER BY seq DESC LIMIT ?",
        (conversation_id, seq, limit + 1),
    ).fetchall()
    more = len(rows) > limit
    return [row_to_message(row) for row in reversed(rows[:limit])], more


def has_older(db: sqlite3.Connection, conversation_id: str, message_id: str) -> bool:
    seq = seq_of(db, conversation_id, message_id)
    if seq is None:
        return False
    row = db.execute(
        "SELECT 1 FROM messages WHERE conversation_id = ? AND seq < ? LIMIT 1",
        (conversation_id, seq),
    ).fetchone()
    return row is not None


def message_counts(db: sqlite3.Connection) -> dict[str, int]:
    rows = db.execute(
        "SELECT conversation_id, count(*) FROM messages GROUP BY conversation_id"
    ).fetchall()
    return {row[0]: int(row[1]) for row in rows}


def rename_conversation(
    db: sqlite3.Connection, conversation_id: str, title: str
) -> Conversation | None:
    with transaction(db):
        db.execute("UPDATE conversations SET title = ? WHERE id = ?", (title, conversation_id))
    return select_conversation(db, conversation_id)


def delete_conversation(db: sqlite3.Connection, conversation_id: str) -> bool:
    with transaction(db):
        db.execute("DELETE FROM messages WHERE conversation_id = ?", (conversation_id,))
        # Sent attachments went with their messages; uploads never sent go too.
        db.execute("DELETE FROM attachments WHERE conversation_id = ?", (conversation_id,))
        deleted = db.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,)).rowcount
        # The FTS index keeps deleted tokens in old segments until they are merged; merging
        # now frees those pages, which secure_delete overwrites (docs/design.md, "Storage").
        db.execute("INSERT INTO messages_fts (messages_fts) VALUES ('optimize')")
    # Old page images stay in the WAL until a checkpoint copies and truncates it.
    busy = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
    if busy:  # another reader (e.g. `htmxchat logs`) holds the WAL; the next close retries
        log.warning("could not truncate the write-ahead log after a delete; will retry")
    return deleted > 0


def import_conversation(
    db: sqlite3.Connection, conversation: Conversation, messages: list[Message]
) -> Conversation:
    def unused(table: str, value: str) -> bool:
        row = db.execute(f"SELECT 1 FROM {table} WHERE id = ?", (value,)).fetchone()
        return is_valid_id(value) and row is None

    with transaction(db):
        cid = conversation.id if unused("conversations", conversation.id) else new_id()
        # Its own dates are kept (an export round-trips); the list shows it by when it came
        # in, not sunk to the bottom by its original date (`Conversation.listed_at`).
        now = time.time()
        db.execute(
            "INSERT INTO conversations (id, title, created_at, updated_at, imported_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (cid, conversation.title, conversation.created_at, conversation.updated_at, now),
        )
    # Short transactions: a running server (another connection) can write between them
    # instead of waiting out a long import and failing its own writes.
    if messages and all(m.parent_id is None for m in messages):
        # A flat list (an older export, a script): one branch, as the migration makes it.
        flat = tree.flat_parents([tree.Node(m.id, None, m.role) for m in messages])
        messages = [replace(m, parent_id=p) for m, p in zip(messages, flat, strict=True)]
    seen: set[str] = set()
    renamed: dict[str, str] = {}  # id in the file -> id stored (parents follow their renames)
    try:
        for start in range(0, len(messages), IMPORT_BATCH):
            with transaction(db):
                for m in messages[start : start + IMPORT_BATCH]:
                    mid = m.id if m.id not in seen and unused("messages", m.id) else new_id()
                    seen.add(mid)
                    renamed[m.id] = mid
                    parent = renamed.get(m.parent_id) if m.parent_id else None
                    db.execute(
                        f"INSERT INTO messages ({_MESSAGE_COLUMNS}) VALUES ({_PLACEHOLDERS})",
                        (
                            mid, cid, m.role, m.content, m.status, m.reasoning, m.error, m.bot,
                            m.model, m.created_at, m.finished_at, m.first_piece_ms,
                            m.piece_count, *_usage_columns(m), parent,
                        ),
                    )  # fmt: skip
                    if m.attachments:
                        insert_imported(db, cid, mid, m)
    except BaseException:
        # All or nothing for the user: remove the part that was imported (messages cascade).
        with transaction(db):
            db.execute("DELETE FROM conversations WHERE id = ?", (cid,))
        raise
    return replace(conversation, id=cid, imported_at=now)
