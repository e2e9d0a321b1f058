"""Full-text search over messages (SQLite FTS5, table `messages_fts`; see store.MIGRATIONS).

Runs on the store's worker thread: `ChatStore.search` is the async entry point.
"""

from __future__ import annotations

import sqlite3
from typing import cast

from htmxchat.models import Role, SearchHit

# Snippet markers: control characters that do not occur in normal text.
_MARK_START, _MARK_END = "\x02", "\x03"


def fts_query(text: str) -> str:
    """A safe FTS5 MATCH expression for what a person typed: every word must occur, the
    last one as a prefix (results while typing). FTS5 operators in the input are quoted."""
    # Control characters (NUL among them) make FTS5 reject the whole query.
    words = "".join(c if c.isprintable() else " " for c in text).split()[:20]
    quoted = ['"' + word.replace('"', '""') + '"' for word in words]
    if quoted:
        quoted[-1] += "*"
    return " ".join(quoted)


def select_hits(db: sqlite3.Connection, match: str, limit: int) -> list[SearchHit]:
    """The best `limit` messages for an FTS5 `match`, with their conversation's title."""
    rows = db.execute(
        "SELECT m.id, m.conversation_id, m.role, m.created_at, c.title, "
        "snippet(messages_fts, -1, ?, ?, '…', 12) AS snippet "
        "FROM messages_fts JOIN messages m ON m.seq = messages_fts.rowid "
        "JOIN conversations c ON c.id = m.conversation_id "
        "WHERE messages_fts MATCH ? ORDER BY rank LIMIT ?",
        (_MARK_START, _MARK_END, match, limit),
    ).fetchall()
    return [
        SearchHit(
            conversation_id=row["conversation_id"],
            title=row["title"],
            message_id=row["id"],
            role=cast(Role, row["role"]),
            created_at=row["created_at"],
            snippet=_split_snippet(row["snippet"] or ""),
        )
        for row in rows
    ]


def _split_snippet(text: str) -> tuple[tuple[str, bool], ...]:
    parts: list[tuple[str, bool]] = []
    for index, chunk in enumerate(text.split(_MARK_START)):
        if index == 0:
            parts.append((chunk, False))
            continue
        matched, _, rest = chunk.partition(_MARK_END)
        parts.append((matched, True))
        parts.append((rest, False))
    return tuple((part, matched) for part, matched in parts if part)
