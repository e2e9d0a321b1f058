"""SQLite chat log: conversations and messages, kept in the user data dir.

All database work runs on one dedicated thread (one connection, writes serialized) so the
event loop never blocks on disk.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar, cast

from htmxchat.ids import is_valid_id, new_id
from htmxchat.models import Conversation, Message, Role, SearchHit, Status
from htmxchat.search import fts_query, select_hits

log = logging.getLogger(__name__)
T = TypeVar("T")

DB_FILENAME = "chats.sqlite3"
# A failed write is retried once after this pause (a full disk or a long lock often clears).
WRITE_RETRY_DELAY = 0.2
TITLE_LENGTH = 80
IMPORT_BATCH = 500  # messages per transaction when importing
# A sync may ask to keep older messages the page already shows, but never more than this.
MAX_WINDOW = 1000

# Each entry migrates the schema from version N to N+1 (PRAGMA user_version).
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE conversations (
        id TEXT PRIMARY KEY,
        title TEXT NOT NULL DEFAULT '',
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE TABLE messages (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
        role TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
        content TEXT NOT NULL,
        reasoning TEXT NOT NULL DEFAULT '',
        status TEXT NOT NULL
            CHECK (status IN ('complete', 'streaming', 'stopped', 'interrupted', 'error')),
        error TEXT,
        bot TEXT,
        model TEXT,
        created_at REAL NOT NULL,
        finished_at REAL,
        first_piece_ms REAL,
        piece_count INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX messages_by_conversation ON messages (conversation_id, seq);
    CREATE INDEX messages_by_status ON messages (status);
    CREATE INDEX conversations_by_update ON conversations (updated_at);
    """,
    # Full-text search over message text (issue 4). External content: the index stores
    # only tokens; triggers keep it in step with `messages`, including checkpoints.
    """
    CREATE VIRTUAL TABLE messages_fts USING fts5(
        content, content = 'messages', content_rowid = 'seq',
        tokenize = 'unicode61 remove_diacritics 2'
    );
    CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
        INSERT INTO messages_fts (rowid, content) VALUES (new.seq, new.content);
    END;
    CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
        INSERT INTO messages_fts (messages_fts, rowid, content)
            VALUES ('delete', old.seq, old.content);
    END;
    CREATE TRIGGER messages_fts_update AFTER UPDATE OF content ON messages BEGIN
        INSERT INTO messages_fts (messages_fts, rowid, content)
            VALUES ('delete', old.seq, old.content);
        INSERT INTO messages_fts (rowid, content) VALUES (new.seq, new.content);
    END;
    INSERT INTO messages_fts (messages_fts) VALUES ('rebuild');
    """,
)

_MESSAGE_COLUMNS = (
    "id, conversation_id, role, content, status, reasoning, error, bot, model, created_at, "
    "finished_at, first_piece_ms, piece_count"
)
_PLACEHOLDERS = ", ".join("?" * len(_MESSAGE_COLUMNS.split(",")))


class StoreError(Exception):
    """The chat log could not be read or written; the message says what to do."""


class ConversationGoneError(StoreError):
    """The conversation was deleted while something was being added to it."""


class ChatStore:
    """Async facade over the SQLite chat log. Create with `await ChatStore.open(path)`."""

    def __init__(self, path: Path, connection: sqlite3.Connection, executor: ThreadPoolExecutor):
        self.path = path
        self._db = connection
        self._executor = executor
        self.recovered_replies = 0
        self._closed = False

    @classmethod
    async def open(cls, path: Path, *, recover: bool = True) -> ChatStore:
        """Open (creating or migrating) the database at `path`; mark crashed replies interrupted.

        The CLI passes `recover=False`: a server may be writing those replies right now.
        """
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="htmxchat-store")
        loop = asyncio.get_running_loop()
        try:
            connection = await loop.run_in_executor(executor, _connect, path)
        except (sqlite3.Error, OSError) as exc:
            executor.shutdown(wait=False)
            # Never recreate or repair it ourselves: the file may hold the only copy of chats.
            raise StoreError(
                f"cannot open the chat log {path}: {exc}. The file was left as it is; "
                "move it away to start a new chat log, or use another --data-dir."
            ) from exc
        except BaseException:
            executor.shutdown(wait=False)
            raise
        store = cls(path, connection, executor)
        if not recover:
            return store
        store.recovered_replies = await store._run(_recover_streaming)
        if store.recovered_replies:
            log.info("marked %d unfinished replies as interrupted", store.recovered_replies)
        return store

    async def close(self) -> None:
        """Checkpoint the WAL and close the connection."""
        await self._run(_close)
        self._closed = True
        self._executor.shutdown(wait=True)

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        if self._closed:
            raise StoreError("The chat log is closed because htmxchat is stopping.")
        try:
            return await loop.run_in_executor(self._executor, fn, self._db, *args)
        except sqlite3.Error as exc:
            log.exception("chat log operation %s failed", getattr(fn, "__name__", fn))
            raise StoreError(f"Could not access the chat log at {self.path}: {exc}") from exc

    async def _write(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a write transaction, retrying it once if it fails (then StoreError)."""
        try:
            return await self._run(fn, *args)
        except StoreError:
            # Each write is one transaction that was rolled back, so running it again is safe.
            await asyncio.sleep(WRITE_RETRY_DELAY)
            return await self._run(fn, *args)

    async def add_message(self, message: Message) -> Message:
        """Insert a message (creating its conversation on first use); committed on return."""
        stamped = message if message.created_at else replace(message, created_at=time.time())
        await self._write(_insert_message, stamped)
        return stamped

    async def update_reply(self, message: Message) -> None:
        """Overwrite a reply's text, status and timings (checkpoints and the final save)."""
        await self._write(_update_reply, message)

    async def messages(
        self, conversation_id: str, *, limit: int | None = None, since: str | None = None
    ) -> list[Message]:
        """The conversation's messages, oldest first (only the newest `limit` if given).

        With `since` (a message id), the window reaches back to include that message when it
        is at most MAX_WINDOW messages from the newest: a re-sync keeps what the page shows.
        """
        return await self._run(_select_messages, conversation_id, limit, since)

    async def messages_before(
        self, conversation_id: str, before: str, limit: int
    ) -> tuple[list[Message], bool]:
        """Up to `limit` messages older than message `before`, oldest first, and whether
        there are even older ones."""
        return await self._run(_select_messages_before, conversation_id, before, limit)

    async def has_older(self, conversation_id: str, message_id: str) -> bool:
        """True when the conversation has messages older than `message_id`."""
        return await self._run(_has_older, conversation_id, message_id)

    async def get_message(self, message_id: str) -> Message | None:
        """One message by id."""
        return await self._run(_select_message, message_id)

    async def conversation(self, conversation_id: str) -> Conversation | None:
        """A conversation's header, or None when it does not exist (yet)."""
        return await self._run(_select_conversation, conversation_id)

    async def conversations(self, *, limit: int | None = None) -> list[Conversation]:
        """All conversations (or the newest `limit`), most recently active first."""
        return await self._run(_select_conversations, limit)

    async def message_counts(self) -> dict[str, int]:
        """Number of messages per conversation id."""
        return await self._run(_message_counts)

    async def rename_conversation(self, conversation_id: str, title: str) -> Conversation | None:
        """Set a conversation's title; None when it does not exist."""
        return await self._run(_rename_conversation, conversation_id, title)

    async def delete_conversation(self, conversation_id: str) -> bool:
        """Delete a conversation and its messages for good (overwritten on disk)."""
        return await self._run(_delete_conversation, conversation_id)

    async def search(self, query: str, *, limit: int = 30) -> list[SearchHit]:
        """Messages matching `query` (words, the last one as a prefix), best first."""
        match = fts_query(query)
        if not match:
            return []
        return await self._run(select_hits, match, limit)

    async def import_conversation(
        self, conversation: Conversation, messages: list[Message]
    ) -> Conversation:
        """Insert a whole conversation, in short transactions so a running server keeps
        writing; a failure removes what was added. Ids already in use (or not shaped like
        ours) are replaced by new ones; returns the conversation as stored."""
        return await self._run(_import_conversation, conversation, messages)


def _connect(path: Path) -> sqlite3.Connection:
    # Chat logs are private: create the file 0600 (SQLite gives -wal and -shm the same mode).
    os.close(os.open(path, os.O_RDONLY | os.O_CREAT, 0o600))
    if os.name == "posix":
        os.chmod(path, 0o600)
    # check_same_thread=False is safe: only the store's single worker thread uses it.
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    try:
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA foreign_keys = ON")
        db.execute("PRAGMA busy_timeout = 5000")
        mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode != "wal":
            log.warning("SQLite refused WAL mode (%s); continuing with it", mode)
        db.execute("PRAGMA synchronous = NORMAL")
        db.execute("PRAGMA secure_delete = ON")
        _migrate(db)
    except BaseException:
        db.close()
        raise
    return db


def _migrate(db: sqlite3.Connection) -> None:
    version = int(db.execute("PRAGMA user_version").fetchone()[0])
    if version > len(MIGRATIONS):
        raise sqlite3.DatabaseError(
            f"the chat log has schema version {version}, newer than this htmxchat knows "
            f"({len(MIGRATIONS)}); upgrade htmxchat"
        )
    for number in range(version, len(MIGRATIONS)):
        with _transaction(db):
            for statement in _statements(MIGRATIONS[number]):
                db.execute(statement)
            db.execute(f"PRAGMA user_version = {number + 1}")


def _statements(script: str) -> list[str]:
    # Split on the semicolons that end statements (not those inside a trigger's body).
    statements: list[str] = []
    current = ""
    for part in script.split(";"):
        current += part + ";"
        if sqlite3.complete_statement(current):
            if current.strip(" \n;"):
                statements.append(current.strip())
            current = ""
    if current.strip(" \n;"):
        statements.append(current.strip())
    return statements


def _close(db: sqlite3.Connection) -> None:
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


def _recover_streaming(db: sqlite3.Connection) -> int:
    cursor = db.execute(
        "UPDATE messages SET status = 'interrupted', finished_at = coalesce(finished_at, ?) "
        "WHERE status = 'streaming'",
        (time.time(),),
    )
    return cursor.rowcount


def _insert_message(db: sqlite3.Connection, m: Message) -> None:
    title = " ".join(m.content.split())[:TITLE_LENGTH] if m.role == "user" else ""
    with _transaction(db):
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
        db.execute(
            f"INSERT INTO messages ({_MESSAGE_COLUMNS}) VALUES ({_PLACEHOLDERS})",
            (
                m.id, m.conversation_id, m.role, m.content, m.status, m.reasoning, m.error,
                m.bot, m.model, m.created_at, m.finished_at, m.first_piece_ms, m.piece_count,
            ),
        )  # fmt: skip


def _update_reply(db: sqlite3.Connection, m: Message) -> None:
    with _transaction(db):
        db.execute(
            "UPDATE messages SET content = ?, reasoning = ?, status = ?, error = ?, model = ?, "
            "finished_at = ?, first_piece_ms = ?, piece_count = ? WHERE id = ?",
            (
                m.content, m.reasoning, m.status, m.error, m.model, m.finished_at,
                m.first_piece_ms, m.piece_count, m.id,
            ),
        )  # fmt: skip
        db.execute(
            "UPDATE conversations SET updated_at = ? WHERE id = ?",
            (m.finished_at or time.time(), m.conversation_id),
        )


class _transaction:
    """BEGIN/COMMIT around a block (ROLLBACK on error); the connection is in autocommit."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            try:
                self.db.execute("COMMIT")
            except sqlite3.Error:
                # Leave no transaction open, or every later BEGIN would fail too.
                if self.db.in_transaction:
                    self.db.execute("ROLLBACK")
                raise
        elif self.db.in_transaction:
            # SQLite may have rolled back by itself (disk full); then there is nothing to do,
            # and the original error is the one to report.
            try:
                self.db.execute("ROLLBACK")
            except sqlite3.Error as rollback_error:
                log.warning("rollback after a failed write also failed: %s", rollback_error)


def _row_to_message(row: sqlite3.Row) -> Message:
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
    )


def _seq_of(db: sqlite3.Connection, conversation_id: str, message_id: str) -> int | None:
    row = db.execute(
        "SELECT seq FROM messages WHERE id = ? AND conversation_id = ?",
        (message_id, conversation_id),
    ).fetchone()
    return None if row is None else int(row[0])


def _select_messages(
    db: sqlite3.Connection, conversation_id: str, limit: int | None, since: str | None = None
) -> list[Message]:
    if since is not None and limit is not None:
        seq = _seq_of(db, conversation_id, since)
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
    return [_row_to_message(row) for row in reversed(rows)]


def _select_message(db: sqlite3.Connection, message_id: str) -> Message | None:
    row = db.execute(
        f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE id = ?", (message_id,)
    ).fetchone()
    return None if row is None else _row_to_message(row)


def _row_to_conversation(row: sqlite3.Row) -> Conversation:
    return Conversation(
        id=row["id"],
        title=row["title"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _select_conversation(db: sqlite3.Connection, conversation_id: str) -> Conversation | None:
    row = db.execute(
        "SELECT id, title, created_at, updated_at FROM conversations WHERE id = ?",
        (conversation_id,),
    ).fetchone()
    return None if row is None else _row_to_conversation(row)


def _select_conversations(db: sqlite3.Connection, limit: int | None = None) -> list[Conversation]:
    rows = db.execute(
        "SELECT id, title, created_at, updated_at FROM conversations "
        "ORDER BY updated_at DESC LIMIT ?",
        (-1 if limit is None else limit,),
    ).fetchall()
    return [_row_to_conversation(row) for row in rows]


def _select_messages_before(
    db: sqlite3.Connection, conversation_id: str, before: str, limit: int
) -> tuple[list[Message], bool]:
    seq = _seq_of(db, conversation_id, before)
    if seq is None:
        return [], False
    rows = db.execute(
        f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ? AND seq < ? "
        "ORDER BY seq DESC LIMIT ?",
        (conversation_id, seq, limit + 1),
    ).fetchall()
    more = len(rows) > limit
    return [_row_to_message(row) for row in reversed(rows[:limit])], more


def _has_older(db: sqlite3.Connection, conversation_id: str, message_id: str) -> bool:
    seq = _seq_of(db, conversation_id, message_id)
    if seq is None:
        return False
    row = db.execute(
        "SELECT 1 FROM messages WHERE conversation_id = ? AND seq < ? LIMIT 1",
        (conversation_id, seq),
    ).fetchone()
    return row is not None


def _message_counts(db: sqlite3.Connection) -> dict[str, int]:
    rows = db.execute(
        "SELECT conversation_id, count(*) FROM messages GROUP BY conversation_id"
    ).fetchall()
    return {row[0]: int(row[1]) for row in rows}


def _rename_conversation(
    db: sqlite3.Connection, conversation_id: str, title: str
) -> Conversation | None:
    with _transaction(db):
        db.execute("UPDATE conversations SET title = ? WHERE id = ?", (title, conversation_id))
    return _select_conversation(db, conversation_id)


def _delete_conversation(db: sqlite3.Connection, conversation_id: str) -> bool:
    with _transaction(db):
        db.execute("DELETE FROM messages WHERE conversation_id = ?", (conversation_id,))
        deleted = db.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,)).rowcount
        # The FTS index keeps deleted tokens in old segments until they are merged; merging
        # now frees those pages, which secure_delete overwrites (DESIGN.md, Storage).
        db.execute("INSERT INTO messages_fts (messages_fts) VALUES ('optimize')")
    # Old page images stay in the WAL until a checkpoint copies and truncates it.
    busy = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
    if busy:  # another reader (e.g. `htmxchat logs`) holds the WAL; the next close retries
        log.warning("could not truncate the write-ahead log after a delete; will retry")
    return deleted > 0


def _import_conversation(
    db: sqlite3.Connection, conversation: Conversation, messages: list[Message]
) -> Conversation:
    def unused(table: str, value: str) -> bool:
        row = db.execute(f"SELECT 1 FROM {table} WHERE id = ?", (value,)).fetchone()
        return is_valid_id(value) and row is None

    with _transaction(db):
        cid = conversation.id if unused("conversations", conversation.id) else new_id()
        db.execute(
            "INSERT INTO conversations (id, title, created_at, updated_at) VALUES (?, ?, ?, ?)",
            (cid, conversation.title, conversation.created_at, conversation.updated_at),
        )
    # Short transactions: a running server (another connection) can write between them
    # instead of waiting out a long import and failing its own writes.
    seen: set[str] = set()
    try:
        for start in range(0, len(messages), IMPORT_BATCH):
            with _transaction(db):
                for m in messages[start : start + IMPORT_BATCH]:
                    mid = m.id if m.id not in seen and unused("messages", m.id) else new_id()
                    seen.add(mid)
                    db.execute(
                        f"INSERT INTO messages ({_MESSAGE_COLUMNS}) VALUES ({_PLACEHOLDERS})",
                        (
                            mid, cid, m.role, m.content, m.status, m.reasoning, m.error, m.bot,
                            m.model, m.created_at, m.finished_at, m.first_piece_ms,
                            m.piece_count,
                        ),
                    )  # fmt: skip
    except BaseException:
        # All or nothing for the user: remove the part that was imported (messages cascade).
        with _transaction(db):
            db.execute("DELETE FROM conversations WHERE id = ?", (cid,))
        raise
    return replace(conversation, id=cid)
