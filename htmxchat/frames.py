"""Frames from the page: the htmx ws extension's JSON (form fields plus `HEADERS`),
validated and narrowed to a `ClientFrame` before the chat core sees them.

Anything the server cannot use raises `FrameError`, whose message is shown to the user.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from htmxchat.answering.routing import MAX_MODEL_NAME
from htmxchat.ids import is_valid_id

MAX_EPOCH = 32

Action = Literal["send", "stop", "sync", "regenerate", "edit", "version", "delete", "tool"]
ACTIONS: tuple[Action, ...] = (
    "send", "stop", "sync", "regenerate", "edit", "version", "delete", "tool"
)  # fmt: skip
DECISIONS = ("allow", "deny", "always")


@dataclass(frozen=True, slots=True)
class Position:
    """Where the page is in a channel: its epoch and the last event number it applied."""

    epoch: str = ""
    seq: int = -1  # -1: unknown, a snapshot is needed


@dataclass(frozen=True, slots=True)
class ClientFrame:
    """A validated frame from the page."""

    action: Action
    conversation_id: str
    message: str = ""
    model: str | None = None
    since: str | None = None  # sync: the oldest message the page shows (keep it shown)
    req: int | None = None  # sync: the page's request number, echoed in every later frame
    room: Position = Position()
    feed: Position = Position()
    attachments: tuple[str, ...] = ()  # send: ids of uploaded files the message carries
    # edit, version, delete, regenerate: the message acted on (regenerate: None = the last
    # answer); version: -1 for the previous version, +1 for the next.
    target: str | None = None
    step: int = 0
    # tool: the call's number in the answer `target`, and "allow", "deny" or "always".
    call: int = -1
    decision: str = ""


class FrameError(Exception):
    """A frame the server cannot use; the message is shown to the user."""


def parse_client_frame(raw: str) -> ClientFrame:
    """Validate a frame's JSON and narrow it to a ClientFrame (or raise FrameError)."""
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: "[[[[…" nested past the limit
        raise FrameError("The page sent something that is not JSON; reload the page.") from None
    if not isinstance(data, dict):
        raise FrameError("The page sent a frame of the wrong shape; reload the page.")
    action = data.get("action", "send")
    if action not in ACTIONS:
        raise FrameError("The page asked for something the server does not know; reload it.")
    conversation_id = data.get("conversation")
    if not is_valid_id(conversation_id):
        raise FrameError("The page did not say which conversation this is for; reload it.")
    message = data.get("message", "")
    if not isinstance(message, str):
        raise FrameError("The message must be text.")
    model = data.get("model") or None
    if model is not None and (not isinstance(model, str) or len(model) > MAX_MODEL_NAME):
        raise FrameError(f"The model name must be text of at most {MAX_MODEL_NAME} characters.")
    if model is not None:
        model = _valid_unicode(model)
    since = data.get("since")
    req = _number(data.get("req"), -1)
    return ClientFrame(
        action,
        str(conversation_id),
        _valid_unicode(message),
        model,
        since if is_valid_id(since) else None,
        req if req >= 0 else None,
        Position(_epoch(data.get("epoch")), _number(data.get("seq"), -1)),
        Position(_epoch(data.get("feed_epoch")), _number(data.get("feed_seq"), -1)),
        _attachment_ids(data.get("attachments")),
        *_target(action, data),
        *_decision(action, data),
    )


def _decision(action: str, data: dict[str, Any]) -> tuple[int, str]:
    """A tool call's number and the user's decision on it (FrameError when unusable)."""
    if action != "tool":
        return -1, ""
    call, decision = _number(data.get("call"), -1), data.get("decision")
    if call < 0 or decision not in DECISIONS:
        raise FrameError("The page sent a tool decision the server does not know; reload it.")
    return call, str(decision)


def _target(action: str, data: dict[str, Any]) -> tuple[str | None, int]:
    """The message an action is about, and a version step (FrameError when missing)."""
    target = data.get("target")
    if target in (None, "") and action not in ("edit", "version", "delete", "tool"):
        return None, 0
    if not is_valid_id(target):
        raise FrameError("The page did not say which message this is for; reload it.")
    if action != "version":
        return str(target), 0
    step = data.get("step")
    if step not in ("-1", "1", -1, 1):
        raise FrameError("The page asked for a version the server does not know; reload it.")
    return str(target), int(step)


def _attachment_ids(value: Any) -> tuple[str, ...]:
    """The attachment ids of a send: a space-separated string of ids (the hidden input)."""
    if value is None or value == "":
        return ()
    if not isinstance(value, str) or len(value) > 2000:
        raise FrameError("The page sent attachments in a form the server does not know.")
    ids = tuple(value.split())
    if not all(is_valid_id(i) for i in ids):
        raise FrameError("The page sent attachments in a form the server does not know.")
    return ids


def _number(value: Any, default: int) -> int:
    """A non-negative int from JSON (numbers or digit strings), else `default`."""
    if isinstance(value, str) and value.isdigit() and len(value) < 12:
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**53:
        return value
    return default


def _epoch(value: Any) -> str:
    if isinstance(value, str) and len(value) <= MAX_EPOCH and value.isalnum():
        return value
    return ""


def _valid_unicode(text: str) -> str:
    """Join surrogate pairs and replace lone halves: JSON allows "\\ud800", but neither
    SQLite nor a WebSocket text frame can carry it (UnicodeEncodeError)."""
    if text.isascii():
        return text
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
