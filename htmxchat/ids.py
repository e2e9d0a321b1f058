"""Identifiers that stay unique across conversations, restarts and machines."""

from __future__ import annotations

import re
import secrets
import time

_ID_RE = re.compile(r"^[0-9a-z]{16,40}$")


def new_id() -> str:
    """A new id: 10 chars of time (ms, base 36: sorts by creation) + 12 random chars.

    Random rather than a per-process counter so an id is never reused after a restart
    or an import from another machine (docs/design.md, "Streaming").
    """
    millis = int(time.time() * 1000)
    return _base36(millis).rjust(10, "0") + _base36(secrets.randbits(62)).rjust(12, "0")[:12]


def is_valid_id(value: object) -> bool:
    """True for strings shaped like ids we issue (safe in URLs and DOM ids)."""
    return isinstance(value, str) and bool(_ID_RE.fullmatch(value))


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        number, rest = divmod(number, 36)
        out = digits[rest] + out
        if number == 0:
            return out
