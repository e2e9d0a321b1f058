"""An answer's provenance as it may be shown and shared: known fields of the right types,
and server addresses without a user name or password (docs/limits.md).

Provenance is written by the app, but also read back from imported files and from older
chat logs, so every reader goes through `clean_provenance`: a page, an export or a template
never meets a field of the wrong type, and a password in a server's address never leaves
the Servers page's saved settings.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from yarl import URL

_TEXT_FIELDS = ("connection", "bot", "base_url", "model", "system_prompt")
MAX_PARAMS = 32  # sampling parameters shown under an answer; real ones are a handful
_SCALAR = (str, int, float, bool)


def without_password(url: str) -> str:
    """`url` with any `user:password@` part removed (as shown and exported)."""
    if "@" not in url:
        return url
    try:
        parsed = URL(url)
    except (ValueError, TypeError):
        parsed = None
    if parsed is not None and parsed.absolute:
        return str(parsed.with_user(None)) if parsed.user or parsed.password else url
    return url.rpartition("@")[2]  # not a URL we can read: drop everything up to the @


def clean_provenance(value: object) -> dict[str, Any] | None:
    """Only the known fields, each of its type (text or null; `params` a flat mapping of
    names to plain values), with the server address stripped of credentials. None when
    nothing usable is left."""
    if not isinstance(value, Mapping):
        return None
    clean: dict[str, Any] = {}
    for key in _TEXT_FIELDS:
        item = value.get(key)
        if isinstance(item, str):
            clean[key] = without_password(item) if key == "base_url" else item
        elif item is None and key in value:
            clean[key] = None
    params = value.get("params")
    if isinstance(params, Mapping):
        clean["params"] = {
            str(k): v
            for k, v in list(params.items())[:MAX_PARAMS]
            if isinstance(k, str) and (v is None or isinstance(v, _SCALAR))
        }
    return clean or None
