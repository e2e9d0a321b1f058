"""Message times for templates: a machine-readable `datetime` and short readable text.

The server runs on the reader's own computer, so its local time is the reader's.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime


def iso_time(timestamp: float) -> str:
    """`2026-12-04T15:34:32Z`: the value of a `<time datetime>` attribute."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def clock_time(timestamp: float, now: float | None = None) -> str:
    """`15:34` today, `4 Dec 15:34` another day this year, else `4 Dec 2025 15:34`."""
    when = datetime.fromtimestamp(timestamp).astimezone()
    today = datetime.fromtimestamp(time.time() if now is None else now).astimezone()
    clock = when.strftime("%H:%M")
    if when.date() == today.date():
        return clock
    day = f"{when.day} {when.strftime('%b')}"
    return f"{day} {clock}" if when.year == today.year else f"{day} {when.year} {clock}"


def full_time(timestamp: float) -> str:
    """`Friday 4 December 2026, 15:34:32`: the tooltip."""
    when = datetime.fromtimestamp(timestamp).astimezone()
    return f"{when.strftime('%A')} {when.day} {when.strftime('%B %Y, %H:%M:%S')}"


def list_group(timestamp: float, now: float | None = None) -> tuple[str, str]:
    """The conversation list's heading for a time: its key and its text (Today, Yesterday,
    Previous 7 days, then the month, with the year when it is not this year's)."""
    when = datetime.fromtimestamp(timestamp).astimezone().date()
    today = datetime.fromtimestamp(time.time() if now is None else now).astimezone().date()
    days = (today - when).days
    if days <= 0:
        return "today", "Today"
    if days == 1:
        return "yesterday", "Yesterday"
    if days <= 7:
        return "week", "Previous 7 days"
    month = when.strftime("%B")
    label = month if when.year == today.year else f"{month} {when.year}"
    return when.strftime("%Y-%m"), label
