"""A conversation's room: its numbered events, its subscribers and the reply being written.

The room is the single owner of a conversation's live state. Everything that happens in it
is published on its channel with the next number, so a tab that joins gets "the state as of
event N" and then exactly the events after N (docs/design.md, "Rooms and numbering").
"""

from __future__ import annotations

from typing import Literal

from htmxchat.channel import Channel
from htmxchat.events import RoomEvent, StreamState
from htmxchat.models import Message, Status
from htmxchat.reply import Reply

# idle: nothing runs; starting: a send or regenerate is storing its message (sends are
# refused meanwhile); replying: `reply` is being written.
Phase = Literal["idle", "starting", "replying"]


class Room:
    """The live state of one conversation that has subscribers or a reply running."""

    def __init__(self, conversation_id: str) -> None:
        self.conversation_id = conversation_id
        self.channel: Channel[RoomEvent] = Channel()
        self.phase: Phase = "idle"
        self.reply: Reply | None = None
        self.stop_requested = False  # Stop arrived while starting: stop the reply it starts

    @property
    def busy(self) -> bool:
        """True while a reply is being written, or about to be."""
        return self.phase != "idle"

    @property
    def unused(self) -> bool:
        """Nothing subscribes and nothing runs: the room can be forgotten."""
        return self.phase == "idle" and not len(self.channel)

    def live_reply(self) -> Message | None:
        """The streaming reply as far as it has been published, if one runs."""
        return self.reply.snapshot() if self.reply is not None else None

    def live_stream(self) -> StreamState | None:
        """The streaming reply's Markdown as far as it has been published, if one runs."""
        return self.reply.stream_state() if self.reply is not None else None

    def publish(self, event: RoomEvent) -> int:
        """Number the event and hand it to every subscriber."""
        return self.channel.publish(event)

    def stop(self, status: Status = "stopped") -> bool:
        """Stop the running reply (or the one about to start). False when nothing runs."""
        if self.reply is not None:
            return self.reply.request_stop(status)
        if self.phase == "starting":
            self.stop_requested = True
            return True
        return False
