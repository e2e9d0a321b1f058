"""Bots: what writes the replies. Every bot follows the small `Bot` protocol below."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True, slots=True)
class Turn:
    """One earlier message of the conversation, as a bot sees it."""

    role: Role
    content: str


@dataclass(frozen=True, slots=True)
class Piece:
    """A bit of a reply: answer text, reasoning text ("thinking"), or both."""

    text: str = ""
    reasoning: str = ""


class BotError(Exception):
    """A reply failed for a reason the user should read (what happened, what to do next)."""


class Bot(Protocol):
    """Anything that turns a conversation into a stream of reply pieces.

    `stream` is an async generator: it yields pieces as they arrive and raises `BotError`
    with a user-facing message when it cannot go on. Cancelling the consuming task must
    stop all work at once (close upstream connections in `finally`).
    """

    @property
    def label(self) -> str:
        """Short human name shown in the page, e.g. "Demo bot" or "Ollama"."""
        ...

    @property
    def model(self) -> str | None:
        """The model replies are written with, if the bot has one."""
        ...

    def stream(self, history: Sequence[Turn], *, model: str | None = None) -> AsyncIterator[Piece]:
        """Stream the reply to the last user turn of `history` (optionally with `model`)."""
        ...
