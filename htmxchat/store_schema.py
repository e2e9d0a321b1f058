"""The chat log's SQLite schema: migrations, the connection's settings, transactions."""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Migration:
    """One step of the schema: entry N takes the database from version N to N+1."""

    name: str
    sql: str


# Applied in order; PRAGMA user_version counts how many a database has had.
MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        "m001_conversations_and_messages",
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
    ),
    # Full-text search over message text. External content: the index stores
    # only tokens; triggers keep it in step with `messages`, including checkpoints.
    Migration(
        "m002_full_text_search",
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
    ),
    # Messages form a tree (docs/design.md, "Message tree"): each has a parent, and
    # `message_choices` says which child is shown under a parent ('' for the first level;
    # no row: the newest child). Flat conversations become one branch: a message's parent
    # is the previous message, except that consecutive answers (Regenerate wrote them) are
    # versions of one answer, children of the message before the first of them.
    Migration(
        "m003_message_tree",
        """
    ALTER TABLE messages ADD COLUMN parent_id TEXT;
    CREATE INDEX messages_by_parent ON messages (parent_id);
    CREATE TABLE message_choices (
        conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
        parent_id TEXT NOT NULL,
        child_id TEXT NOT NULL,
        PRIMARY KEY (conversation_id, parent_id)
    );
    UPDATE messages SET parent_id = (
        SELECT p.id FROM messages AS p
        WHERE p.conversation_id = messages.conversation_id AND p.seq < messages.seq
        ORDER BY p.seq DESC LIMIT 1
    );
    UPDATE messages SET parent_id = (
        SELECT p.id FROM messages AS p
        WHERE p.conversation_id = messages.conversation_id AND p.seq < messages.seq
            AND p.role != 'assistant'
        ORDER BY p.seq DESC LIMIT 1
    )
    WHERE role = 'assistant' AND (
        SELECT p.role FROM messages AS p
        WHERE p.conversation_id = messages.conversation_id AND p.seq < messages.seq
        ORDER BY p.seq DESC LIMIT 1
    ) = 'assistant';
    """,
    ),
    # Per-chat settings (system prompt, model, parameters) and, per answer, the server's
    # token counts and what produced it. Settings may be saved before the conversation's
    # first message, so no foreign key: a trigger removes them with their conversation.
    Migration(
        "m004_chat_settings",
        """
    CREATE TABLE chat_settings (
        conversation_id TEXT PRIMARY KEY,
        settings TEXT NOT NULL
    );
    CREATE TRIGGER chat_settings_delete AFTER DELETE ON conversations BEGIN
        DELETE FROM chat_settings WHERE conversation_id = old.id;
    END;
    ALTER TABLE messages ADD COLUMN prompt_tokens INTEGER;
    ALTER TABLE messages ADD COLUMN completion_tokens INTEGER;
    ALTER TABLE messages ADD COLUMN provenance TEXT;
    """,
    ),
    # Files attached to a user's message (docs/design.md, "Attachments"). message_id is
    # NULL while uploaded but not yet sent; the bytes go with their message.
    Migration(
        "m005_attachments",
        """
    CREATE TABLE attachments (
        id TEXT PRIMARY KEY,
        conversation_id TEXT NOT NULL,
        message_id TEXT REFERENCES messages(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        mime TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('text', 'image')),
        size INTEGER NOT NULL,
        data BLOB NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE INDEX attachments_by_message ON attachments (message_id);
    CREATE INDEX attachments_by_conversation ON attachments (conversation_id, created_at);
    """,
    ),
    # Reading the tree without the table: each message's parent and order, grouped by parent
    # (docs/design.md, "Message tree"). Also tells at once whether a conversation branches.
    Migration(
        "m006_tree_index",
        """
    CREATE INDEX messages_tree ON messages (conversation_id, parent_id, seq, id);
    """,
    ),
    # When a conversation came in from an export file (NULL: it was written here). The list
    # shows imported chats by when they were imported, marked as such.
    Migration(
        "m007_imported_at",
        """
    ALTER TABLE conversations ADD COLUMN imported_at REAL;
    """,
    ),
    # An answer's tool calls (docs/tools.md, "Kept with the answer"), as JSON.
    Migration(
        "m008_tool_calls",
        """
    ALTER TABLE messages ADD COLUMN tool_calls TEXT;
    """,
    ),
    # Tool calls are searchable: their names, arguments and the text they returned, as plain
    # text beside the answer's (the JSON would index keys, states and image data), in a
    # second column of the full-text index.
    Migration(
        "m009_search_tool_calls",
        """
    ALTER TABLE messages ADD COLUMN tool_text TEXT NOT NULL DEFAULT '';
    DROP TRIGGER messages_fts_insert;
    DROP TRIGGER messages_fts_delete;
    DROP TRIGGER messages_fts_update;
    DROP TABLE messages_fts;
    CREATE VIRTUAL TABLE messages_fts USING fts5(
        content, tool_text, content = 'messages', content_rowid = 'seq',
        tokenize = 'unicode61 remove_diacritics 2'
    );
    CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
        INSERT INTO messages_fts (rowid, content, tool_text)
            VALUES (new.seq, new.content, new.tool_text);
    END;
    CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
        INSERT INTO messages_fts (messages_fts, rowid, content, tool_text)
            VALUES ('delete', old.seq, old.content, old.tool_text);
    END;
    CREATE TRIGGER messages_fts_update AFTER UPDATE OF content, tool_text ON messages BEGIN
        INSERT INTO messages_fts (messages_fts, rowid, content, tool_text)
            VALUES ('delete', old.seq, old.content, old.tool_text);
        INSERT INTO messages_fts (rowid, content, tool_text)
            VALUES (new.seq, new.content, new.tool_text);
    END;
    INSERT INTO messages_fts (messages_fts) VALUES ('rebuild');
    """,
    ),
)


class StoreError(Exception):
    """The chat log could not be read or written; the message says what to do."""


class transaction:
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


def connect(path: Path) -> sqlite3.Connection:
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
        migrate(db)
    except BaseException:
        db.close()
        raise
    return db


def migrate(db: sqlite3.Connection) -> None:
    version = int(db.execute("PRAGMA user_version").fetchone()[0])
    if version > len(MIGRATIONS):
        raise sqlite3.DatabaseError(
            f"the chat log has schema version {version}, newer than this htmxchat knows "
            f"({len(MIGRATIONS)}); upgrade htmxchat"
        )
    for number in range(version, len(MIGRATIONS)):
        with transaction(db):
            migration = MIGRATIONS[number]
            for statement in statements(migration.sql):
                db.execute(statement)
            db.execute(f"PRAGMA user_version = {number + 1}")
        log.info("chat log migrated: %s", migration.name)


def statements(script: str) -> list[str]:
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


def close(db: sqlite3.Connection) -> None:
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


def recover_streaming(db: sqlite3.Connection) -> int:
    cursor = db.execute(
        "UPDATE messages SET status = 'interrupted', finished_at = coalesce(finished_at, ?) "
        "WHERE status = 'streaming'",
        (time.time(),),
    )
    return cursor.rowcount
