"""What the chat core tells subscribers: a message joined, a reply grew, a reply ended."""

from __future__ import annotations

from dataclasses import dataclass

from htmxchat.models import Message


@dataclass(frozen=True, slots=True)
class MessageAdded:
    """A message joined the conversation (a user message, or a reply that just started)."""

    message: Message


@dataclass(frozen=True, slots=True)
class ReplyDelta:
    """New text for a streaming reply: only what arrived since the previous delta."""

    message_id: str
    text: str = ""
    reasoning: str = ""


@dataclass(frozen=True, slots=True)
class ReplyFinished:
    """A reply ended (complete, stopped, interrupted or failed); `message` is its final state."""

    message: Message


@dataclass(frozen=True, slots=True)
class ReplyNotStarted:
    """A send or regenerate was refused or failed before its reply began: nothing runs."""


@dataclass(frozen=True, slots=True)
class Resync:
    """The subscriber fell too far behind; its queue was dropped and it must re-sync."""


Event = MessageAdded | ReplyDelta | ReplyFinished | ReplyNotStarted
QueueItem = Event | Resync
