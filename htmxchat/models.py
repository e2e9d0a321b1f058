"""Plain data records shared by the store, the chat core and the templates."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from htmxchat.attachments import AttachmentInfo
from htmxchat.tools.results import ToolCall

Role = Literal["system", "user", "assistant"]
# complete: finished normally; streaming: being written now; stopped: the user pressed Stop;
# interrupted: the server stopped or crashed mid-reply; error: the bot failed.
Status = Literal["complete", "streaming", "stopped", "interrupted", "error"]


@dataclass(frozen=True, slots=True)
class Message:
    """One message of a conversation, as stored."""

    id: str
    conversation_id: str
    role: Role
    content: str
    status: Status = "complete"
    reasoning: str = ""
    error: str | None = None
    bot: str | None = None
    model: str | None = None
    created_at: float = 0.0
    finished_at: float | None = None
    first_piece_ms: float | None = None
    piece_count: int = 0
    # Files attached to a user's message (docs/design.md, "Attachments").
    attachments: tuple[AttachmentInfo, ...] = ()
    # Token counts as the model server reported them (None when it did not).
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    # What produced an answer (connection, model, parameters, system prompt), to redo it.
    provenance: Mapping[str, Any] | None = None
    # The message this one follows (docs/design.md, "Message tree"); None: the first level.
    parent_id: str | None = None
    # Its number among the versions under the same parent, and how many there are (read
    # from the tree when shown; not stored).
    version: int = 1
    versions: int = 1
    # An answer's tool calls, with what was decided and returned (docs/tools.md).
    tool_calls: tuple[ToolCall, ...] = ()


@dataclass(frozen=True, slots=True)
class Conversation:
    """A conversation's header (its messages are fetched separately)."""

    id: str
    title: str
    created_at: float
    updated_at: float
    imported_at: float | None = None  # brought in from an export file, at this time

    @property
    def listed_at(self) -> float:
        """Where the list puts it: its last message, or when it was imported if later."""
        return max(self.updated_at, self.imported_at or 0.0)


@dataclass(frozen=True, slots=True)
class SearchHit:
    """A message matching a search, with its conversation's title and a short excerpt.

    `snippet` alternates plain and matched text: (text, is_match) pairs, escaped when shown.
    """

    conversation_id: str
    title: str
    message_id: str
    role: Role
    created_at: float
    snippet: tuple[tuple[str, bool], ...]
