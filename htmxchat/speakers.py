"""Who is speaking, in words a person knows: the model's name, and the server's name when it
has one (docs/design.md, "Keyboard and screen readers"). A server htmxchat only knows by its
address ("127.0.0.1:48310") is not named at all: an address says nothing about who answers.
"""

from __future__ import annotations

import re

# host:port, [IPv6]:port, a bare IP address, or a URL: addresses, not names.
_ADDRESS = re.compile(
    r"^(?:[a-z][a-z0-9+.-]*://.*|\[[0-9a-f:.]+\](?::\d+)?|[\w.-]+:\d+|\d{1,3}(?:\.\d{1,3}){3})$",
    re.IGNORECASE,
)


def is_address(label: str | None) -> bool:
    """True when a server's label is its address rather than a name."""
    return bool(label) and bool(_ADDRESS.match(str(label).strip()))


def server_name(label: str | None) -> str | None:
    """The server's name, or None when all htmxchat knows is its address."""
    return None if not label or is_address(label) else label


def picker_model(choice: str | None) -> str | None:
    """The model named by a picker value (`connection|model` or a default server's model)."""
    model = (choice or "").partition("|")[2] if "|" in (choice or "") else choice
    return model or None


def speaker(model: str | None, label: str | None) -> str:
    """What an answer's author line and the message box call who answers."""
    return model or server_name(label) or "the model"


def speaker_server(model: str | None, label: str | None) -> str | None:
    """The server's name to show beside the model's, when it has a name of its own."""
    name = server_name(label)
    return name if model and name and name != model else None
