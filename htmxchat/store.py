"""SQLite chat log: conversations and messages, kept in the user data dir.

All database work runs on one dedicated thread (one connection, writes serialized) so the
event loop never blocks on disk.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from htmxchat import store_attachments as qa
from htmxchat import store_queries as q
from htmxchat import store_tree
from htmxchat.attachments import AttachmentData, AttachmentInfo
from htmxchat.models import Conversation, Message, SearchHit
from htmxchat.search import fts_query, select_hits
from htmxchat.store_queries import IMPORT_BATCH, MAX_WINDOW, TITLE_LENGTH, ConversationGoneError
from htmxchat.store_schema import MIGRATIONS, StoreError, close, connect, recover_streaming

# The store's interface: callers need not know how it is split into modules.
__all__ = [
    "DB_FILENAME",
    "IMPORT_BATCH",
    "MAX_WINDOW",
    "MIGRATIONS",
    "TITLE_LENGTH",
    "ChatStore",
    "ConversationGoneError",
    "StoreError",
]

log = logging.getLogger(__name__)
T = TypeVar("T")

DB_FILENAME = "chats.sqlite3"
# A failed write is retried once after this pause (a full disk or a long lock often clears).
WRITE_RETRY_DELAY = 0.2


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
            connection = await loop.run_in_executor(executor, connect, path)
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
        store.recovered_replies = await store._run(recover_streaming)
        await store._run(qa.delete_stale, time.time())
        if store.recovered_replies:
            log.info("marked %d unfinished replies as interrupted", store.recovered_replies)
        return store

    async def close(self) -> None:
        """Checkpoint the WAL and close the connection."""
        await self._run(close)
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
        """Insert a message (creating its conversation on first use); committed on return.

        Without a `parent_id` it follows the conversation's last message (docs/design.md,
        "Message tree"); the message returned has its parent filled in."""
        stamped = message if message.created_at else replace(message, created_at=time.time())

        def insert(db: sqlite3.Connection) -> Message:
            parent = q.insert_message(db, stamped)
            return store_tree.count_versions(db, replace(stamped, parent_id=parent))

        return await self._write(insert)

    async def update_reply(self, message: Message) -> None:
        """Overwrite a reply's text, status and timings (checkpoints and the final save)."""
        await self._write(q.update_reply, message)

    async def messages(
        self, conversation_id: str, *, limit: int | None = None, since: str | None = None
    ) -> list[Message]:
        """The conversation's messages, oldest first (only the newest `limit` if given).

        With `since` (a message id), the window reaches back to include that message when it
        is at most MAX_WINDOW messages from the newest: a re-sync keeps what the page shows.
        """
        return await self._run(
            lambda db: qa.with_infos(db, q.select_messages(db, conversation_id, limit, since))
        )

    async def message_path(self, conversation_id: str, message_id: str) -> list[Message]:
        """The messages from the first level down to `message_id` (docs/design.md,
        "Message tree"): the history a reply below it is written from."""
        return await self._run(
            lambda db: qa.with_infos(db, store_tree.select_path(db, conversation_id, message_id))
        )

    async def branch(self, conversation_id: str) -> list[Message]:
        """The branch shown, oldest first (versions not chosen are left out)."""
        return await self._run(
            lambda db: qa.with_infos(db, store_tree.select_branch(db, conversation_id))
        )

    async def shown(
        self, conversation_id: str, *, limit: int | None = None, since: str | None = None
    ) -> tuple[list[Message], bool]:
        """The newest `limit` messages of the branch shown (docs/design.md, "Message tree"),
        oldest first, and whether there are older ones. `since` keeps a message in the window
        as `messages` does."""
        found, older = await self._run(store_tree.select_shown, conversation_id, limit, since)
        return await self._run(qa.with_infos, found), older

    async def messages_before(
        self, conversation_id: str, before: str, limit: int
    ) -> tuple[list[Message], bool]:
        """Up to `limit` messages of the branch shown older than message `before`, oldest
        first, and whether there are even older ones."""
        found, more = await self._run(
            store_tree.select_shown_before, conversation_id, before, limit
        )
        return await self._run(qa.with_infos, found), more

    async def show_version(self, conversation_id: str, message_id: str, step: int) -> str | None:
        """Show another version of a message (`step` places along its siblings); the id
        now shown, None when the message is unknown."""
        return await self._write(store_tree.show_version, conversation_id, message_id, step)

    async def show_path(self, conversation_id: str, message_id: str) -> bool:
        """Show the branch through `message_id`; False when it was shown already."""
        return await self._write(store_tree.show_path, conversation_id, message_id)

    async def delete_messages(self, conversation_id: str, message_id: str) -> int:
        """Erase a message and everything below it, for real; how many messages went."""
        return await self._write(store_tree.delete_subtree, conversation_id, message_id)

    async def copy_attachments(self, conversation_id: str, source_id: str, target_id: str) -> None:
        """Give a new version of a message copies of the files of the one it replaces."""
        await self._write(store_tree.copy_attachments, conversation_id, source_id, target_id)

    async def message(self, message_id: str) -> Message | None:
        """One message by id (None when unknown)."""
        return await self._run(q.select_message, message_id)

    async def has_older(self, conversation_id: str, message_id: str) -> bool:
        """True when the conversation has messages older than `message_id`."""
        return await self._run(q.has_older, conversation_id, message_id)

    async def get_message(self, message_id: str) -> Message | None:
        """One message by id."""
        found = await self._run(q.select_message, message_id)
        return None if found is None else (await self._run(qa.with_infos, [found]))[0]

    async def conversation(self, conversation_id: str) -> Conversation | None:
        """A conversation's header, or None when it does not exist (yet)."""
        return await self._run(q.select_conversation, conversation_id)

    async def conversations(self, *, limit: int | None = None) -> list[Conversation]:
        """All conversations (or the newest `limit`), most recently active first."""
        return await self._run(q.select_conversations, limit)

    async def message_counts(self) -> dict[str, int]:
        """Number of messages per conversation id."""
        return await self._run(q.message_counts)

    async def rename_conversation(self, conversation_id: str, title: str) -> Conversation | None:
        """Set a conversation's title; None when it does not exist."""
        return await self._run(q.rename_conversation, conversation_id, title)

    async def delete_conversation(self, conversation_id: str) -> bool:
        """Delete a conversation and its messages for good (overwritten on disk)."""
        return await self._run(q.delete_conversation, conversation_id)

    async def chat_settings(self, conversation_id: str) -> dict[str, object]:
        """A conversation's own settings as saved (see chat_settings.py); {} when none."""
        return await self._run(q.select_chat_settings, conversation_id)

    async def save_chat_settings(self, conversation_id: str, settings: dict[str, object]) -> None:
        """Replace a conversation's own settings (it need not have messages yet)."""
        await self._write(q.save_chat_settings, conversation_id, settings)

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
        return await self._run(q.import_conversation, conversation, messages)

    # -- attachments (docs/design.md, "Attachments") --------------------------------------

    async def add_pending_attachments(
        self, conversation_id: str, files: list[AttachmentData]
    ) -> None:
        """Keep uploaded files for the conversation until a message claims them."""
        await self._write(qa.insert_pending, conversation_id, files)

    async def pending_count(self, conversation_id: str) -> int:
        """How many uploads wait, unsent, in the conversation."""
        return await self._run(qa.pending_count, conversation_id)

    async def pending_counts(self, conversation_id: str) -> tuple[int, int]:
        """Uploads waiting in the conversation's bucket (all not-yet-started conversations
        share one) and in all conversations together."""
        return await self._run(qa.pending_counts, conversation_id)

    async def pending_attachments(
        self, conversation_id: str, ids: list[str]
    ) -> list[AttachmentInfo]:
        """The uploads with these ids still waiting in the conversation."""
        return await self._run(qa.pending, conversation_id, ids)

    async def claim_attachments(
        self, conversation_id: str, message_id: str, ids: list[str]
    ) -> None:
        """Attach waiting uploads to a stored message."""
        await self._write(qa.claim, conversation_id, message_id, ids)

    async def attachment(self, attachment_id: str) -> AttachmentData | None:
        """One attachment with its bytes, or None."""
        return await self._run(qa.select_one, attachment_id)

    async def attachment_data(self, conversation_id: str) -> dict[str, list[AttachmentData]]:
        """The conversation's sent attachments with their bytes, by message id."""
        return await self._run(qa.data_by_message, conversation_id)

    async def export_messages(self, conversation_id: str) -> list[Message]:
        """All the conversation's messages, their attachments carrying their bytes."""
        messages = await self.messages(conversation_id)
        files = await self.attachment_data(conversation_id)
        return [
            replace(m, attachments=tuple(replace(f.info, data=f.data) for f in files[m.id]))
            if m.id in files
            else m
            for m in messages
        ]
