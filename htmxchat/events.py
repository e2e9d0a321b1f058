"""What the chat core tells its subscribers.

Room events concern one conversation (a message joined, a reply grew or ended); feed
events concern every page: the list of conversations (one was created, updated, renamed or
deleted) and the model servers (their models changed).
Both are numbered by their channel (`channel.py`), so a reader knows when it missed one.
"""

from __future__ import annotations

from dataclasses import dataclass

from htmxchat.markdown.ops import Op
from htmxchat.models import Conversation, Message
from htmxchat.tools.results import ToolCall


@dataclass(frozen=True, slots=True)
class MessageAdded:
    """A message joined the conversation (a user message, or a reply that just started)."""

    message: Message


@dataclass(frozen=True, slots=True)
class ReplyDelta:
    """New text for a streaming reply: only what arrived since the previous delta, and what
    it changes in the reply's Markdown (`ops`) and reasoning (`reasoning_ops`)."""

    message_id: str
    text: str = ""
    reasoning: str = ""
    ops: tuple[Op, ...] = ()
    reasoning_ops: tuple[Op, ...] = ()


@dataclass(frozen=True, slots=True)
class StreamState:
    """A streaming reply's Markdown as far as it has been published, as operations that
    build it from an empty body (see `MarkdownStream.snapshot`)."""

    body: tuple[Op, ...] = ()
    reasoning: tuple[Op, ...] = ()


@dataclass(frozen=True, slots=True)
class ReplyFinished:
    """A reply ended (complete, stopped, interrupted or failed); `message` is its final state."""

    message: Message


@dataclass(frozen=True, slots=True)
class ToolCallsChanged:
    """A streaming reply's tool calls changed (streamed, asked, decided, ran): all of them,
    and notes on tools the user expects that are not offered (docs/tools.md)."""

    message_id: str
    conversation_id: str
    calls: tuple[ToolCall, ...]
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ReplyNotStarted:
    """A send or regenerate was refused or failed before its reply began: nothing runs."""


@dataclass(frozen=True, slots=True)
class BranchShown:
    """Another branch of the conversation is shown (a version was picked, a message edited,
    an answer regenerated, a message deleted): `messages` is its newest part, oldest first,
    and `older` says whether earlier messages exist. Readers replace what they show."""

    conversation_id: str
    messages: tuple[Message, ...]
    older: bool


@dataclass(frozen=True, slots=True)
class ChoiceChanged:
    """The conversation's own settings changed (the picker, the settings panel, a send with
    another model): `choice` is the picker value it uses now (None: the default)."""

    conversation_id: str
    choice: str | None


RoomEvent = (
    MessageAdded
    | ReplyDelta
    | ToolCallsChanged
    | ReplyFinished
    | ReplyNotStarted
    | BranchShown
    | ChoiceChanged
)


@dataclass(frozen=True, slots=True)
class ConversationCreated:
    """A conversation got its first message."""

    conversation: Conversation


@dataclass(frozen=True, slots=True)
class ConversationUpdated:
    """A conversation got a new message (it moves to the top of the list)."""

    conversation: Conversation


@dataclass(frozen=True, slots=True)
class ConversationRenamed:
    """A conversation's title changed (its place in the list does not)."""

    conversation: Conversation


@dataclass(frozen=True, slots=True)
class ConversationDeleted:
    """A conversation and its messages were erased."""

    conversation_id: str


@dataclass(frozen=True, slots=True)
class ModelsChanged:
    """A model server was added, edited, removed or asked again: what the model picker
    offers may have changed, on every page."""


FeedEvent = (
    ConversationCreated
    | ConversationUpdated
    | ConversationRenamed
    | ConversationDeleted
    | ModelsChanged
)
