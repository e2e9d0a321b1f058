"""One model server as htmxchat knows it: its bot, the models it listed, whether it answers
(up, down, loading or never found), and the checks on what a user enters for one
(docs/design.md, "Who answers"). `Connections` (connections.py) holds them all.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from htmxchat.answering.bots import Bot
from htmxchat.answering.bots.detect import DEFAULT_CANDIDATES, Candidate
from htmxchat.answering.bots.openai_models import normalize_base_url

MAX_NAME = 60
MAX_URL = 500
MAX_KEY = 500

Kind = Literal["default", "local", "demo", "added"]
# up: it listed its models when last asked; down: it did not answer (problem says why);
# loading: it answers but is still loading its model; absent: a local server never found.
State = Literal["up", "down", "loading", "absent"]


class ConnectionError_(ValueError):
    """A connection the user entered is not usable; the message says why (never the key)."""


def key_hint(key: str | None) -> str | None:
    """What the page may show of a key: `sk-…last4` (or `…last4`), None without one."""
    if not key:
        return None
    prefix = "sk-" if key.startswith("sk-") else ""
    return f"{prefix}…{key[-4:]}" if len(key) > 8 else f"{prefix}…"


def local_candidates(urls: Sequence[str] | None) -> tuple[Candidate, ...]:
    """The local servers to look for: the usual ports (None), or these base URLs, named
    after the usual server when they are its address."""
    if urls is None:
        return DEFAULT_CANDIDATES
    known = {c.base_url: c.label for c in DEFAULT_CANDIDATES}
    found = []
    for url in urls:
        base = normalize_base_url(url)
        found.append(Candidate(base, known.get(base, f"Local server at {base}")))
    return tuple(found)


@dataclass
class Connection:
    """One model server: its bot, the models it offered, and why it is down (if it is)."""

    id: str
    name: str
    kind: Kind
    bot: Bot
    base_url: str | None
    models: tuple[str, ...] = ()
    problem: str | None = None
    key_hint: str | None = None
    # A local server is offered in the picker once it has answered; before, only the
    # settings page names it ("not running").
    found: bool = True
    description: str | None = None
    loading: bool = False  # it answered HTTP 503: still loading its model
    # Tokens each model can hold, where the server says (docs/design.md, "Context window").
    context: dict[str, int] = field(default_factory=dict)

    @property
    def down(self) -> bool:
        """True when the last attempt to list its models failed (or it is still loading)."""
        return self.problem is not None

    @property
    def state(self) -> State:
        """What the page shows about it: up, down, loading, or absent (never found)."""
        if not self.found:
            return "absent"
        if self.loading:
            return "loading"
        return "down" if self.down else "up"

    @property
    def asks_server(self) -> bool:
        """True when it has a server to ask (the demo bot has none)."""
        return self.base_url is not None

    @property
    def editable(self) -> bool:
        """Only the connections the user added can be edited or removed."""
        return self.kind == "added"

    @property
    def in_picker(self) -> bool:
        """Whether the model picker shows this connection's group."""
        return self.found

    def choices(self) -> list[tuple[str, str]]:
        """The picker's (value, text) pairs: the default's models are plain names, the
        others' `<id>|<model>`; a server that names no models offers its own default."""
        prefix = "" if self.kind == "default" else f"{self.id}|"
        # A server that went down keeps the models it listed, so a conversation's choice
        # stays its own: a send then says the server is not answering, and no other bot
        # answers instead (docs/design.md, "Who answers").
        if self.models:
            return [(prefix + m, m) for m in self.models]
        text = "The server's default model" if self.asks_server else "Canned replies"
        return [(prefix, text)]


def shown_state(connection: Connection) -> tuple[object, ...]:
    """What the page shows of a connection: a change of this is worth telling the pages."""
    return (
        connection.state,
        connection.models,
        connection.problem,
        tuple(sorted(connection.context.items())),
    )


def checked_fields(name: str, base_url: str, api_key: str | None) -> tuple[str, str, str | None]:
    """The fields tidied up; ConnectionError_ (never naming the key) when one is not usable."""
    name = " ".join(name.split())[:MAX_NAME]
    base_url = base_url.strip()
    api_key = (api_key or "").strip() or None
    if not name:
        raise ConnectionError_("Give the connection a name.")
    if base_url and "://" not in base_url:  # as servers show it: "127.0.0.1:1234/v1"
        base_url = "http://" + base_url
    if not re.match(r"https?://[^\s/]+", base_url) or len(base_url) > MAX_URL:
        raise ConnectionError_(
            "The base URL must start with http:// or https://, e.g. http://127.0.0.1:8080/v1."
        )
    if api_key is not None and (len(api_key) > MAX_KEY or not api_key.isprintable()):
        raise ConnectionError_("The API key must be one line of at most 500 characters.")
    return name, normalize_base_url(base_url), api_key
