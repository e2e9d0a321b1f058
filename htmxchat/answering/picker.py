"""The model picker as plain values: the templates render these, never the live servers.

One group per server, in the order the Servers page lists them; the conversation's own
choice is selected by the server, and it stays selected (and offered) while its server is
down, so a send never goes to another bot (docs/design.md, "Who answers").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from htmxchat.answering.connections import Connection

# The "Down: …" entry is short, so the picker stays narrow; its title has the whole reason.
PROBLEM_CHARS = 36


@dataclass(frozen=True, slots=True)
class Option:
    """One entry of the picker."""

    value: str
    text: str
    selected: bool = False
    disabled: bool = False
    title: str | None = None


@dataclass(frozen=True, slots=True)
class Group:
    """One server's entries."""

    connection: str  # the server's id
    label: str  # its name, with "(down)" or "(loading)" when it is
    options: tuple[Option, ...]


@dataclass(frozen=True, slots=True)
class Picker:
    """The whole picker; no groups when there is nothing to choose between."""

    groups: tuple[Group, ...]
    selected: str | None


def build(connections: Sequence[Connection], selected: str | None) -> Picker:
    """The picker for `connections` (those the picker shows) with `selected` chosen."""
    groups = tuple(_group(c, selected) for c in connections)
    return Picker(groups, selected)


def _group(connection: Connection, selected: str | None) -> Group:
    choices = connection.choices()
    options = [Option(value, text, value == selected) for value, text in choices]
    values = {value for value, _ in choices}
    prefix = f"{connection.id}|"
    # The conversation's own choice stays while its server no longer lists it (a send then
    # says why), instead of the picker quietly showing another server's model.
    if (
        selected
        and connection.kind != "default"
        and selected.startswith(prefix)
        and selected not in values
    ):
        text = selected.removeprefix(prefix) or "The server's default model"
        options.append(Option(selected, text, True))
    state = connection.state
    if state in ("down", "loading"):
        problem = connection.problem or ""
        word = "Loading" if state == "loading" else "Down"
        short = problem if len(problem) <= PROBLEM_CHARS else problem[: PROBLEM_CHARS - 1] + "…"
        options.append(Option("", f"{word}: {short}", disabled=True, title=problem))
    label = connection.name + {"down": " (down)", "loading": " (loading)"}.get(state, "")
    return Group(connection.id, label, tuple(options))
