"""A conversation's tool settings: which servers it may use (none until the user turns one
on), how many tool rounds a reply may take, and the tools it always allows.

Kept in the chat's settings in the chat log, beside (not inside) the sampling settings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from htmxchat.tools.config import SERVER_NAME
from htmxchat.tools.offer import DEFAULT_ROUNDS, FUNCTION_NAME, MAX_ROUNDS

KEYS = ("tool_servers", "tool_rounds", "always_tools")


class ToolSettingsError(ValueError):
    """A tool setting the user entered is not usable; the message says why."""


@dataclass(frozen=True, slots=True)
class ChatTools:
    """What a conversation allows."""

    servers: tuple[str, ...] = ()
    rounds: int = DEFAULT_ROUNDS
    always: tuple[str, ...] = ()  # function names ("server__tool") allowed without asking

    def to_stored(self) -> dict[str, object]:
        """The values as the chat log keeps them (beside the other settings)."""
        return {
            "tool_servers": list(self.servers),
            "tool_rounds": self.rounds,
            "always_tools": list(self.always),
        }


def from_stored(data: Mapping[str, object]) -> ChatTools:
    """The tool settings in a chat's stored settings; anything unusable is dropped."""
    servers = data.get("tool_servers")
    always = data.get("always_tools")
    rounds = data.get("tool_rounds")
    return ChatTools(
        _names(servers, SERVER_NAME.match),
        rounds if isinstance(rounds, int) and 1 <= rounds <= MAX_ROUNDS else DEFAULT_ROUNDS,
        _names(always, FUNCTION_NAME.match),
    )


def _names(value: object, valid: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    check = valid if callable(valid) else None
    return tuple(dict.fromkeys(v for v in value if isinstance(v, str) and check and check(v)))


def parse_form(servers: Sequence[str], rounds: str, current: ChatTools) -> ChatTools:
    """The settings panel's tool fields (ToolSettingsError when the rounds are no number)."""
    text = rounds.strip()
    if text and (not text.isdigit() or not 1 <= int(text) <= MAX_ROUNDS):
        raise ToolSettingsError(f"Tool rounds must be a whole number from 1 to {MAX_ROUNDS}.")
    return ChatTools(
        tuple(dict.fromkeys(s for s in servers if SERVER_NAME.match(s))),
        int(text) if text else DEFAULT_ROUNDS,
        current.always,
    )
