"""The chat core: turns user input into stored messages, replies and numbered events.

It knows nothing of aiohttp or HTML. Each conversation with anything going on has a room
(`room.py`) that numbers its events; a reply runs as a task of its room, not of a socket.
The conversation list has one feed channel of its own. Readers (sockets, the HTTP page) get a
snapshot "as of event N" from `join`, then the events after N; see docs/design.md.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from htmxchat import tree
from htmxchat.answering.bots import Bot
from htmxchat.answering.chat_settings import ChatSettings, from_stored
from htmxchat.answering.routing import BotDirectory, ChatInputError
from htmxchat.answering.service import Answering
from htmxchat.attachments import MAX_FILES, AttachmentInfo
from htmxchat.channel import Channel, Numbered, Subscription
from htmxchat.events import (
    BranchShown,
    ChoiceChanged,
    ConversationCreated,
    ConversationDeleted,
    ConversationRenamed,
    ConversationUpdated,
    FeedEvent,
    MessageAdded,
    ModelsChanged,
    ReplyNotStarted,
    RoomEvent,
    StreamState,
)
from htmxchat.ids import new_id
from htmxchat.models import Conversation, Message
from htmxchat.reply import Reply
from htmxchat.room import Room
from htmxchat.store import ChatStore, StoreError
from htmxchat.tools import chat_tools

log = logging.getLogger(__name__)

# Raised by the chat core (and by routing, where it is defined): import it from here.
__all__ = ["ChatInputError"]

MAX_MESSAGE_CHARS = 100_000
# What str.isspace() calls blank: a message of only these is ignored (the page is told them).
BLANK_CHARS = "".join(chr(c) for c in range(0x3001) if chr(c).isspace())
# A page shows the newest messages; older ones load as the reader scrolls up.
PAGE_MESSAGES = 50
# The conversation list shows this many; search finds the older ones.
FEED_CONVERSATIONS = 200
# Rooms nobody uses are kept this long (in number), so a page rendered over HTTP can resume
# its socket from the page's event number instead of taking a second snapshot.
IDLE_ROOMS = 64


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A conversation as of event `seq` of its room (epoch `epoch`)."""

    conversation_id: str
    conversation: Conversation | None
    messages: list[Message]
    older: bool  # there are earlier messages than the first one here
    busy: bool
    epoch: str
    seq: int
    # The streaming reply's Markdown state, by message id (at most one entry).
    streams: dict[str, StreamState] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class FeedSnapshot:
    """The conversation list as of event `seq` of the feed."""

    conversations: list[Conversation]
    epoch: str
    seq: int


class ChatService:
    """Accepts messages, runs replies, and numbers what happens for every reader."""

    def __init__(
        self,
        store: ChatStore,
        answering: Answering | Bot,
        *,
        models: tuple[str, ...] = (),
        coalesce_window: float = 0.04,
        checkpoint_interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        defaults: ChatSettings | None = None,
        directory: BotDirectory | None = None,
    ) -> None:
        self.store = store
        # Who answers, and with what (answering/): a bare bot is the only one there is.
        if not isinstance(answering, Answering):
            answering = Answering(answering, models=models, defaults=defaults, directory=directory)
        self.answering = answering
        self.coalesce_window = coalesce_window
        self.checkpoint_interval = checkpoint_interval
        self.feed: Channel[FeedEvent] = Channel()
        self._clock = clock
        self._rooms: OrderedDict[str, Room] = OrderedDict()
        self._closing = False

    # -- rooms -------------------------------------------------------------------------

    def _room(self, conversation_id: str) -> Room:
        room = self._rooms.get(conversation_id)
        if room is None:
            room = self._rooms[conversation_id] = Room(conversation_id)
        self._rooms.move_to_end(conversation_id)
        return room

    def _tidy(self) -> None:
        """Forget the least recently used rooms that nothing uses, beyond IDLE_ROOMS."""
        unused = [cid for cid, room in self._rooms.items() if room.unused]
        for conversation_id in unused[: max(0, len(unused) - IDLE_ROOMS)]:
            del self._rooms[conversation_id]

    @property
    def rooms_in_use(self) -> int:
        """Rooms with a subscriber or a running reply (kept idle rooms are not counted)."""
        return sum(not room.unused for room in self._rooms.values())

    @property
    def replies_in_flight(self) -> int:
        """How many conversations have a reply being written (or about to be)."""
        return sum(room.busy for room in self._rooms.values())

    def is_busy(self, conversation_id: str) -> bool:
        """True while a reply is being written (or about to be) in the conversation."""
        room = self._rooms.get(conversation_id)
        return room is not None and room.busy

    def live_reply(self, conversation_id: str) -> Message | None:
        """The reply being written in the conversation, as far as it has been published."""
        room = self._rooms.get(conversation_id)
        return room.live_reply() if room is not None else None

    # -- reading -----------------------------------------------------------------------

    async def join(
        self,
        conversation_id: str,
        wake: asyncio.Event,
        *,
        since: str | None = None,
        limit: int = PAGE_MESSAGES,
    ) -> tuple[Subscription[RoomEvent], Snapshot]:
        """Subscribe to a conversation and read it as of the subscription's start.

        Messages whose `MessageAdded` is already waiting in the subscription are left out
        of the snapshot, and a streaming reply shows exactly the text published so far, so
        applying the subscription's events to the snapshot is exact. `since` (a message id)
        keeps older messages in the window (see `ChatStore.messages`).
        """
        while True:
            room = self._room(conversation_id)
            subscription = room.channel.subscribe(wake)
            live, stream, busy = room.live_reply(), room.live_stream(), room.busy
            try:
                # The branch shown (docs/design.md, "Message tree"), its newest part.
                messages, older = await self.store.shown(conversation_id, limit=limit, since=since)
                conversation = await self.store.conversation(conversation_id)
            except BaseException:
                self.leave(subscription)
                raise
            if not subscription.overflowed:
                break
            self.leave(subscription)  # too much happened meanwhile to tell what is new
        coming = {
            item.event.message.id
            for item in subscription.pending()
            if isinstance(item.event, MessageAdded)
        }
        shown = [
            live if live is not None and m.id == live.id else m
            for m in messages
            if m.id not in coming
        ]
        snapshot = Snapshot(
            conversation_id,
            conversation,
            shown,
            older,
            busy,
            room.channel.epoch,
            subscription.last_seq,
            {live.id: stream} if live is not None and stream is not None else {},
        )
        return subscription, snapshot

    async def snapshot(
        self, conversation_id: str, *, since: str | None = None, limit: int = PAGE_MESSAGES
    ) -> Snapshot:
        """The conversation as of now (for a page rendered over HTTP)."""
        subscription, snapshot = await self.join(
            conversation_id, asyncio.Event(), since=since, limit=limit
        )
        self.leave(subscription)
        return snapshot

    def resume(
        self, conversation_id: str, wake: asyncio.Event, epoch: str, seq: int
    ) -> tuple[Subscription[RoomEvent], list[Numbered[RoomEvent]]] | None:
        """Subscribe and get the events after `seq`, or None when a snapshot is needed."""
        room = self._rooms.get(conversation_id)
        if room is None or room.channel.epoch != epoch:
            return None
        missed = room.channel.since(seq)
        if missed is None:
            return None
        self._rooms.move_to_end(conversation_id)
        return room.channel.subscribe(wake), missed

    def leave(self, subscription: Subscription[RoomEvent]) -> None:
        """Stop receiving a conversation's events."""
        subscription.close()
        self._tidy()

    async def feed_snapshot(self) -> FeedSnapshot:
        """The conversation list as of the feed's current event."""
        seq = self.feed.seq
        conversations = await self.store.conversations(limit=FEED_CONVERSATIONS)
        if self.feed.seq != seq:  # changed while reading: read once more, then it is exact
            seq = self.feed.seq
            conversations = await self.store.conversations(limit=FEED_CONVERSATIONS)
        return FeedSnapshot(conversations, self.feed.epoch, seq)

    # -- writing -----------------------------------------------------------------------

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
            raise ChatInputError("An edited message cannot be empty; type something or cancel.")
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

    async def show_version(self, conversation_id: str, target: str, step: int) -> None:
        """Show the previous (`step` -1) or next (+1) version of message `target` and the
        branch below it, in every tab; remembered in the chat log."""
        room = self._room(conversation_id)
        if room.busy:
            raise ChatInputError(
                "A reply is still being written. Wait for it to finish or press Stop."
            )
        await self._own_message(conversation_id, target, None)
        await self.store.show_version(conversation_id, target, step)
        await self._publish_branch(room)

    async def reveal(self, conversation_id: str, message_id: str) -> None:
        """Show the branch through `message_id` (a search hit on another version), in every
        tab; left as it is while a reply is being written."""
        room = self._room(conversation_id)
        if room.busy:
            return
        if await self.store.show_path(conversation_id, message_id):
            await self._publish_branch(room)
        self._tidy()

    async def delete_message(self, conversation_id: str, target: str) -> int:
        """Erase message `target` and everything below it (every version of what followed),
        for real; the number of messages erased."""
        room = self._reserve(conversation_id)
        try:
            await self._own_message(conversation_id, target, None)
            erased = await self.store.delete_messages(conversation_id, target)
            await self._publish_branch(room)
        finally:
            self._release(room)
            self._tidy()
        return erased

    async def _own_message(
        self, conversation_id: str, message_id: str, role: str | None
    ) -> Message:
        """The message `message_id` of this conversation (of `role` if given), or a
        ChatInputError the page shows."""
        message = await self.store.message(message_id)
        if message is None or message.conversation_id != conversation_id:
            raise ChatInputError("That message is no longer there; it may have been deleted.")
        if role is not None and message.role != role:
            raise ChatInputError(
                "Only your own messages can be edited."
                if role == "user"
                else "Only answers can be regenerated."
            )
        return message

    async def _publish_branch(self, room: Room) -> None:
        """Tell every reader which branch is shown now."""
        messages, older = await self.store.shown(room.conversation_id, limit=PAGE_MESSAGES)
        room.publish(BranchShown(room.conversation_id, tuple(messages), older))

    @staticmethod
    def _branch_event(conversation_id: str, path: list[Message]) -> BranchShown:
        """The branch down to the end of `path` (its newest page), as an event."""
        window = path[-PAGE_MESSAGES:]
        return BranchShown(conversation_id, tuple(window), len(path) > len(window))

    def decide(self, conversation_id: str, message_id: str, call: int, decision: str) -> None:
        """The user's Allow / Deny / Always allow on a tool call of the reply being written
        (docs/tools.md, "Asking"); ChatInputError when that call no longer waits."""
        room = self._rooms.get(conversation_id)
        reply = room.reply if room is not None else None
        if reply is None or reply.message.id != message_id or not reply.decide(call, decision):
            raise ChatInputError(
                "That tool call is no longer waiting for an answer (it was decided in "
                "another tab, or the reply ended)."
            )

    def stop(self, conversation_id: str) -> bool:
        """Stop the conversation's running reply, keeping its text. False if none runs."""
        room = self._rooms.get(conversation_id)
        return room is not None and room.stop("stopped")

    def _reserve(self, conversation_id: str) -> Room:
        if self._closing:
            raise ChatInputError("htmxchat is shutting down; send this again once it is back.")
        room = self._room(conversation_id)
        if room.busy:
            raise ChatInputError(
                "A reply is still being written. Wait for it to finish or press Stop."
            )
        room.phase = "starting"  # refuse concurrent sends while we await the store
        return room

    def _release(self, room: Room) -> None:
        room.stop_requested = False
        if room.phase == "starting":
            # The reply never began: tabs that showed "busy" meanwhile must learn it is off.
            room.phase = "idle"
            room.publish(ReplyNotStarted())
        self._tidy()

    async def _start_reply(
        self,
        room: Room,
        history: list[Message],
        model: str | None,
        *,
        new_branch: bool = False,
    ) -> None:
        """Store a streaming answer below the end of `history` and start it. `new_branch`:
        the answer is another version, so readers are first shown the branch down to its
        question (in the same step as the answer appears, so a join in between stays exact)."""
        files = await self.store.attachment_data(room.conversation_id)
        # The chat's own settings over the app's defaults; the picker's model, when the page
        # sent one, is remembered as the chat's (docs/design.md, "Connections and chat
        # settings").
        stored = await self.store.chat_settings(room.conversation_id)
        own = from_stored(stored)
        if model is not None and model != own.model:
            await self.store.save_chat_settings(room.conversation_id, {**stored, "model": model})
            room.publish(ChoiceChanged(room.conversation_id, model))
        tools = chat_tools.from_stored(stored)
        plan = self.answering.plan(history, own, model, files, tools=tools)
        message = await self.store.add_message(
            Message(
                id=new_id(),
                conversation_id=room.conversation_id,
                role="assistant",
                content="",
                status="streaming",
                bot=plan.label,
                model=plan.model_name,
                provenance=plan.provenance,
                parent_id=history[-1].id if history else tree.ROOT,
            )
        )
        reply = Reply(
            message,
            plan=plan,
            store=self.store,
            publish=room.publish,
            clock=self._clock,
            coalesce_window=self.coalesce_window,
            checkpoint_interval=self.checkpoint_interval,
        )
        room.reply, room.phase = reply, "replying"
        if new_branch:
            room.publish(self._branch_event(room.conversation_id, history))
        room.publish(MessageAdded(message))
        reply.start(self._reply_ended)
        if room.stop_requested or self._closing:
            reply.request_stop("interrupted" if self._closing else "stopped")

    def _reply_ended(self, reply: Reply) -> None:
        room = self._rooms.get(reply.message.conversation_id)
        if room is not None and room.reply is reply:
            room.reply, room.phase = None, "idle"
        self._tidy()

    async def _announce(self, user: Message) -> None:
        """Tell every conversation list that this conversation has a new message."""
        try:
            conversation = await self.store.conversation(user.conversation_id)
        except StoreError as exc:
            log.warning(
                "could not read conversation %s for the list: %s", user.conversation_id, exc
            )
            return
        if conversation is None:
            return
        created = conversation.created_at == user.created_at
        self.feed.publish(
            ConversationCreated(conversation) if created else ConversationUpdated(conversation)
        )

    async def rename(self, conversation_id: str, title: str) -> Conversation | None:
        """Set a conversation's title; None when it does not exist."""
        conversation = await self.store.rename_conversation(conversation_id, title)
        if conversation is not None:
            self.feed.publish(ConversationRenamed(conversation))
        return conversation

    async def delete(self, conversation_id: str) -> bool:
        """Stop the conversation's reply and erase it for good; False if it did not exist."""
        self.stop(conversation_id)
        deleted = await self.store.delete_conversation(conversation_id)
        if deleted:
            self.feed.publish(ConversationDeleted(conversation_id))
        return deleted

    async def remembered_choice(self, conversation_id: str) -> str | None:
        """The picker value the conversation's settings name, if any (offered or not)."""
        return from_stored(await self.store.chat_settings(conversation_id)).model

    async def own_settings(self, conversation_id: str) -> ChatSettings:
        """The conversation's own settings (unset ones are None)."""
        return from_stored(await self.store.chat_settings(conversation_id))

    async def choose(self, conversation_id: str, choice: str | None) -> None:
        """Remember the picker value the conversation uses (ChatInputError when it is not
        offered); every tab on it shows the choice."""
        own = await self.own_settings(conversation_id)
        await self.save_settings(conversation_id, replace(own, model=choice or None))

    async def save_settings(
        self,
        conversation_id: str,
        settings: ChatSettings,
        tools: chat_tools.ChatTools | None = None,
    ) -> None:
        """Replace the conversation's own settings, and its tool settings when `tools` is
        given (kept otherwise); ChatInputError when its model is not offered. Every tab on
        it learns the choice at once."""
        if settings.model is not None:
            self.answering.check(settings.model)
        stored = await self.store.chat_settings(conversation_id)
        kept = (
            tools.to_stored() if tools is not None else chat_tools.from_stored(stored).to_stored()
        )
        await self.store.save_chat_settings(conversation_id, {**settings.to_dict(), **kept})
        self._room(conversation_id).publish(ChoiceChanged(conversation_id, settings.model))
        self._tidy()

    def models_changed(self) -> None:
        """Tell every page that the model servers changed (its picker is rendered anew)."""
        self.feed.publish(ModelsChanged())

    async def shutdown(self) -> None:
        """Interrupt every running reply, saving what it has written so far."""
        self._closing = True
        while busy := [room for room in self._rooms.values() if room.busy]:
            for room in busy:
                room.stop("interrupted")
            tasks = [room.reply.task for room in busy if room.reply and room.reply.task]
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
            else:
                await asyncio.sleep(0.01)  # a send is still storing its message


def _check_length(text: str) -> None:
    """ChatInputError when a message is longer than the server takes."""
    if len(text) > MAX_MESSAGE_CHARS:
        raise ChatInputError(
            f"Your message is {len(text):,} characters long; the limit is "
            f"{MAX_MESSAGE_CHARS:,}. Shorten it or split it into several messages."
        )
