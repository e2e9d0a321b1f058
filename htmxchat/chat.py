"""The chat core: turns user input into stored messages, replies and numbered events.

It knows nothing of aiohttp or HTML. Each conversation with anything going on has a room
(`room.py`) that numbers its events; a reply runs as a task of its room, not of a socket.
The conversation list has one feed channel of its own. Readers (sockets, the HTTP page) get a
snapshot "as of event N" from `join`, then the events after N; see docs/design.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from htmxchat import tree
from htmxchat.answering.routing import ChatInputError
from htmxchat.attachments import MAX_FILES, AttachmentData, AttachmentInfo
from htmxchat.chat_reading import PAGE_MESSAGES, FeedSnapshot, Snapshot
from htmxchat.chat_tree import ChatTree
from htmxchat.events import MessageAdded
from htmxchat.ids import new_id
from htmxchat.models import Message

# Raised by the chat core (and by routing, where it is defined), and what readers get:
# import them from here.
__all__ = ["PAGE_MESSAGES", "ChatInputError", "ChatService", "FeedSnapshot", "Snapshot"]

MAX_MESSAGE_CHARS = 100_000
# What str.isspace() calls blank: a message of only these is ignored (the page is told them).
BLANK_CHARS = "".join(chr(c) for c in range(0x3001) if chr(c).isspace())
# What the core says when it refuses a message; the page says the same before sending, so
# it is given these texts (with {length} and {limit} filled in there) instead of copies.
TOO_LONG = (
    "Your message is {length} characters long; the limit is {limit}. Shorten it or split it "
    "into several messages."
)
EMPTY_EDIT = "An edited message cannot be empty; type something or cancel."
# What the page says when it cannot send at all (no connection to ask the core).
OFFLINE = (
    "Not connected to htmxchat right now. Your message stays here; send it once the "
    "connection is back."
)
OFFLINE_EDIT = (
    "Not connected to htmxchat right now. Your edit stays here; save it once the connection "
    "is back."
)


class ChatService(ChatTree):
    """Accepts messages, runs replies, and numbers what happens for every reader.

    Its jobs live in one module each: rooms (chat_rooms.py), reading (chat_reading.py),
    replies and settings (chat_replies.py), the feed (chat_feed.py), the message tree
    (chat_tree.py); the message commands are here.
    """

    async def send(
        self,
        conversation_id: str,
        text: str,
        *,
        model: str | None = None,
        attachments: Sequence[str] = (),
    ) -> Message | None:
        """Store the user's message, then start the reply. None when `text` is blank
        and nothing is attached (`attachments`: ids of uploads waiting in the conversation).

        Raises ChatInputError when the message is too long, the model is not offered, an
        attachment is unknown, or a reply is still running.
        """
        if not text.strip() and not attachments:
            return None
        _check_length(text)
        self.answering.check(model)  # refuse a model not offered before storing anything
        files = await self._waiting_files(conversation_id, attachments)
        await self._check_fits(conversation_id, text, model)
        room = self._reserve(conversation_id)
        try:
            # No parent given: it follows the last message of the branch shown.
            user = await self.store.add_message(
                Message(id=new_id(), conversation_id=conversation_id, role="user", content=text)
            )
            if files:
                ids = [f.id for f in files]
                await self.store.claim_attachments(conversation_id, user.id, ids)
                user = replace(user, attachments=tuple(files))
            room.publish(MessageAdded(user))
            await self._announce(user)
            # The bot sees the path down to this message (docs/design.md, "Message tree").
            history = await self.store.message_path(conversation_id, user.id)
            await self._start_reply(room, history, model)
        finally:
            self._release(room)
        return user

    async def _waiting_files(
        self, conversation_id: str, ids: Sequence[str]
    ) -> list[AttachmentInfo]:
        """The uploads a message is to carry; ChatInputError when one is missing."""
        ids = list(dict.fromkeys(ids))
        if len(ids) > MAX_FILES:
            raise ChatInputError(f"A message can carry at most {MAX_FILES} files.")
        if not ids:
            return []
        files = await self.store.pending_attachments(conversation_id, ids)
        if len(files) != len(ids):
            raise ChatInputError(
                "An attached file is no longer on the server (files not sent within an hour "
                "are removed). Remove it and attach it again."
            )
        return files

    async def hold_attachments(self, conversation_id: str, files: Sequence[AttachmentData]) -> None:
        """Keep uploaded files waiting in the conversation until a message claims them. No
        event: only the tab that uploaded them shows them (in its composer), until the send
        that carries them publishes the message."""
        await self.store.add_pending_attachments(conversation_id, list(files))

    async def regenerate(
        self, conversation_id: str, *, target: str | None = None, model: str | None = None
    ) -> None:
        """Write a new version of answer `target` (by default the last answer shown), below
        the same question; the earlier versions stay (docs/design.md, "Message tree")."""
        self.answering.check(model)  # refuse a model not offered before storing anything
        room = self._reserve(conversation_id)
        try:
            if target is None:
                branch = await self.store.branch(conversation_id)
                if not any(m.role == "user" for m in branch):
                    raise ChatInputError(
                        "There is nothing to regenerate yet: send a message first."
                    )
                question = next(m for m in reversed(branch) if m.role == "user")
            else:
                answer = await self._own_message(conversation_id, target, "assistant")
                if answer.parent_id is None:
                    raise ChatInputError("That answer has no question to answer again.")
                question = await self._own_message(conversation_id, answer.parent_id, "user")
            history = await self.store.message_path(conversation_id, question.id)
            await self._start_reply(room, history, model, new_branch=True)
        finally:
            self._release(room)

    async def edit(
        self, conversation_id: str, target: str, text: str, *, model: str | None = None
    ) -> Message | None:
        """Send `text` as a new version of the user's message `target` (its files kept), and
        answer it; the earlier version and what followed it stay. None when `text` is blank.

        Raises ChatInputError like `send`, and when `target` is not one of your messages."""
        if not text.strip():
            raise ChatInputError(EMPTY_EDIT)
        _check_length(text)
        self.answering.check(model)
        room = self._reserve(conversation_id)
        try:
            original = await self._own_message(conversation_id, target, "user")
            user = await self.store.add_message(
                Message(
                    id=new_id(),
                    conversation_id=conversation_id,
                    role="user",
                    content=text,
                    parent_id=original.parent_id or tree.ROOT,
                )
            )
            await self.store.copy_attachments(conversation_id, original.id, user.id)
            history = await self.store.message_path(conversation_id, user.id)
            user = history[-1] if history and history[-1].id == user.id else user
            # Every reader drops the old branch below the parent, then gets the new message.
            room.publish(self._branch_event(conversation_id, history[:-1]))
            room.publish(MessageAdded(user))
            await self._announce(user)
            await self._start_reply(room, history, model)
        finally:
            self._release(room)
        return user


def _check_length(text: str) -> None:
    """ChatInputError when a message is longer than the server takes."""
    if len(text) > MAX_MESSAGE_CHARS:
        raise ChatInputError(
            TOO_LONG.format(length=f"{len(text):,}", limit=f"{MAX_MESSAGE_CHARS:,}")
        )
