"""Reading the chat core: a conversation (or the conversation list) as of an event number,
and the events after it (docs/design.md, "Rooms and numbering").

Part of the chat core (chat.py).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from htmxchat.channel import Numbered, Subscription
from htmxchat.chat_rooms import ChatRooms
from htmxchat.events import BranchShown, MessageAdded, RoomEvent, StreamState
from htmxchat.models import Conversation, Message

# A page shows the newest messages; older ones load as the reader scrolls up.
PAGE_MESSAGES = 50
# The conversation list shows this many; search finds the older ones.
FEED_CONVERSATIONS = 200


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


class ChatReading(ChatRooms):
    """Snapshots and resumption for every reader (sockets, the HTTP page)."""

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

    @staticmethod
    def _branch_event(conversation_id: str, path: list[Message]) -> BranchShown:
        """The branch down to the end of `path` (its newest page), as an event."""
        window = path[-PAGE_MESSAGES:]
        return BranchShown(conversation_id, tuple(window), len(path) > len(window))
