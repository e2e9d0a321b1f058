"""Bots: what writes the replies. Every bot follows the small `Bot` protocol below."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass, field
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


class ServerLoading(BotError):
    """The server answers but is still loading its model (llama.cpp's HTTP 503)."""


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a bot is and can do, declared by the bot itself (nothing else probes it)."""

    base_url: str | None = None  # its server's address; None: built in, nothing to ask
    images: bool = False  # takes images as content parts
    reasoning: bool = False  # may stream reasoning ("thinking") beside the answer
    usage: bool = False  # reports token counts
    tools: bool = False  # can call tools


@dataclass(frozen=True, slots=True)
class ServerInfo:
    """What a server said when asked: its models and, where it tells, their context size."""

    models: tuple[str, ...] = ()
    # Tokens each model can hold (prompt and answer together), for the models that say.
    context: Mapping[str, int] = field(default_factory=dict)


class BuiltIn:
    """For bots that need no server: nothing to ask and nothing to release."""

    capabilities = Capabilities()

    async def probe(self, timeout: float) -> ServerInfo:  # noqa: ASYNC109 (protocol's own)
        """Nothing to ask: no models of its own."""
        return ServerInfo()

    async def close(self) -> None:
        """Nothing to release."""


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

    @property
    def capabilities(self) -> Capabilities:
        """What it is (its server's address) and what it can do."""
        ...

    async def probe(self, timeout: float) -> ServerInfo:  # noqa: ASYNC109 (a deadline it keeps)
        """Ask its server what it offers, within `timeout` seconds; `ServerLoading` while
        the server loads its model, `BotError` (saying why) when it does not answer."""
        ...

    def stream(
        self,
        history: Sequence[Turn],
        *,
        model: str | None = None,
        params: Mapping[str, object] | None = None,
    ) -> AsyncGenerator[Item, None]:
        """Stream the reply to the last user turn of `history` (optionally with `model`).

        A first `system` turn is the chat's own system prompt; `params` are sampling
        parameters (temperature, top_p, max_tokens, seed) for bots that have them.
        """
        ...

    async def close(self) -> None:
        """Release connections and the like; the bot is not used afterwards."""
        ...
