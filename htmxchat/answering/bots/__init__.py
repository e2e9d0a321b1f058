"""Bots: what writes the replies. Every bot follows the small `Bot` protocol below."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from htmxchat.answering.bots.tool_stream import ToolCallsPiece
from htmxchat.tools.results import ToolCall

Role = Literal["system", "user", "assistant", "tool"]


@dataclass(frozen=True, slots=True)
class Turn:
    """One earlier message of the conversation, as a bot sees it."""

    role: Role
    content: str
    # Attached images as data URLs, and the names of all attached files (text files are
    # already inside `content`); see docs/design.md, "Attachments".
    images: tuple[str, ...] = ()
    files: tuple[str, ...] = ()
    # An assistant turn's tool calls, and the call a `tool` turn answers (docs/tools.md).
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None


@dataclass(frozen=True, slots=True)
class Piece:
    """A bit of a reply: answer text, reasoning text ("thinking"), or both."""

    text: str = ""
    reasoning: str = ""


@dataclass(frozen=True, slots=True)
class ReplyEnd:
    """How a reply ended, sent by the bot as the stream's last item.

    `finish_reason` is the server's ("stop", "length", ...) or None when it sent none;
    token counts are filled in when the server reports usage.
    """

    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None

    @property
    def truncated(self) -> bool:
        """True when the model stopped at its length limit: the reply may be cut short."""
        return self.finish_reason == "length"


Item = Piece | ToolCallsPiece | ReplyEnd


class BotError(Exception):
    """A reply failed for a reason the user should read (what happened, what to do next)."""


class Bot(Protocol):
    """Anything that turns a conversation into a stream of reply pieces.

    `stream` is an async generator: it yields pieces as they arrive, then one `ReplyEnd`
    saying how the reply ended, and raises `BotError` with a user-facing message when it
    cannot go on. Cancelling the consuming task must stop all work at once (close upstream
    connections in `finally`). `close` releases what the bot holds (at shutdown).
    """

    @property
    def label(self) -> str:
        """Short human name shown in the page, e.g. "Demo bot" or "Ollama"."""
        ...

    @property
    def model(self) -> str | None:
        """The model replies are written with, if the bot has one."""
        ...

    def stream(
        self,
        history: Sequence[Turn],
        *,
        model: str | None = None,
        params: Mapping[str, object] | None = None,
    ) -> AsyncIterator[Item]:
        """Stream the reply to the last user turn of `history` (optionally with `model`).

        A first `system` turn is the chat's own system prompt; `params` are sampling
        parameters (temperature, top_p, max_tokens, seed) for bots that have them. Callers
        pass `params` only when there are any.
        """
        ...

    async def close(self) -> None:
        """Release connections and the like; the bot is not used afterwards."""
        ...
