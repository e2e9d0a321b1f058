"""What the Servers page shows of a server, as a plain value: the template never holds the
live, changing server (its bot, its session), only this snapshot of it."""

from __future__ import annotations

from dataclasses import dataclass

from htmxchat.answering.connections import Connection, Kind, State


@dataclass(frozen=True, slots=True)
class ServerView:
    """One server as the page lists it."""

    id: str
    name: str
    kind: Kind
    state: State
    base_url: str | None
    models: tuple[str, ...]
    problem: str | None
    key_hint: str | None
    description: str | None
    editable: bool
    context: tuple[tuple[str, int], ...]  # (model, tokens) where the server says

    @property
    def down(self) -> bool:
        """Not answering (or still loading) when last asked."""
        return self.problem is not None

    @classmethod
    def of(cls, connection: Connection) -> ServerView:
        """The server as it is now."""
        return cls(
            connection.id,
            connection.name,
            connection.kind,
            connection.state,
            connection.base_url,
            connection.models,
            connection.problem,
            connection.key_hint,
            connection.description,
            connection.editable,
            tuple(sorted(connection.context.items())),
        )
