"""The chat core's rooms: one per conversation with anything going on, each the single owner
of its live state (room.py); reserving a room for a send, stopping, shutting down.

Part of the chat core (chat.py); see docs/design.md, "Rooms and numbering".
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable

from htmxchat.answering.bots import Bot
from htmxchat.answering.chat_settings import ChatSettings
from htmxchat.answering.routing import BotDirectory, ChatInputError
from htmxchat.answering.service import Answering
from htmxchat.channel import Channel
from htmxchat.events import FeedEvent, ReplyNotStarted
from htmxchat.models import Message
from htmxchat.room import Room
from htmxchat.store import ChatStore

# Rooms nobody uses are kept this long (in number), so a page rendered over HTTP can resume
# its socket from the page's event number instead of taking a second snapshot.
IDLE_ROOMS = 64


class ChatRooms:
    """The registry of rooms and the state every part of the core shares."""

    def __init__(
        self,
        store: ChatStore,
        answering: Answering | Bot,
        *,
        models: tuple[str, ...] = (),
        coalesce_window: float = 0.1,
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
