"""What a reply may call: the conversation's tool servers, their tools in the OpenAI
`tools` form, and how names sent to the model map back (docs/tools.md).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from htmxchat.tools.results import ToolInfo
from htmxchat.tools.servers import ToolServers

DEFAULT_ROUNDS = 5  # model requests with tool calls before an answer must come
MAX_ROUNDS = 50
DEFAULT_CALL_TIMEOUT = 120.0
# Most model servers take function names matching this; others are left out, saying so.
FUNCTION_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True, slots=True)
class ToolOffer:
    """The tools one reply may call: which servers, how many rounds, what runs unasked."""

    toolbox: ToolServers
    servers: tuple[str, ...]  # the conversation's servers that are configured and on
    rounds: int = DEFAULT_ROUNDS
    always: frozenset[str] = frozenset()  # function names allowed without asking
    timeout: float = DEFAULT_CALL_TIMEOUT  # seconds one call may run
    notes: tuple[str, ...] = field(default=())  # why tools the user expects are not offered


def function_name(server: str, tool: str) -> str:
    """The name the model sees for `tool` of `server`."""
    return f"{server}__{tool}"


def functions(
    found: dict[str, tuple[ToolInfo, ...]],
) -> tuple[list[dict[str, Any]], list[str]]:
    """The OpenAI `tools` list for the servers' tools, and notes on tools left out."""
    specs: list[dict[str, Any]] = []
    left_out: list[str] = []
    for server, tools in found.items():
        for tool in tools:
            name = function_name(server, tool.name)
            if not FUNCTION_NAME.match(name):
                left_out.append(
                    f'The tool "{tool.name}" of "{server}" has a name models cannot take.'
                )
                continue
            schema = dict(tool.schema) or {"type": "object", "properties": {}}
            specs.append(
                {
                    "type": "function",
                    "function": {
                        "name": name,
                        "description": tool.description,
                        "parameters": schema,
                    },
                }
            )
    return specs, left_out


def offered_names(specs: Sequence[dict[str, Any]]) -> set[str]:
    """The function names in a `tools` list."""
    return {spec["function"]["name"] for spec in specs}
