"""What tools are and what they return, as plain records (no SDK types beyond `client.py`).

Results are bounded here: a tool is untrusted, and what it returns is stored, shown and
sent to the model again (docs/tools.md, "Limits").
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

# A result's text, all parts together; longer text is cut with a note saying so.
MAX_RESULT_CHARS = 100_000
# One image's base64 data (about 3 MiB of image); a larger one is left out, saying so.
MAX_IMAGE_CHARS = 4 * 1024 * 1024
IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")
_BASE64 = re.compile(r"^[A-Za-z0-9+/]*={0,2}$")
# A tool's description and schema as listed (some servers write essays).
MAX_DESCRIPTION_CHARS = 2_000
# One call's arguments as the model sends them, and the calls of one model request.
MAX_ARGUMENT_CHARS = 64_000
MAX_CALLS_PER_ROUND = 16
# Calls one answer may hold (rounds times calls, with room for a crafted import).
MAX_CALLS = 1_000


@dataclass(frozen=True, slots=True)
class ToolInfo:
    """One tool a server offers: its name, description and JSON Schema for its arguments."""

    name: str
    description: str = ""
    schema: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ResultPart:
    """A piece of a tool's result: text, or an image as base64 data with its MIME type."""

    kind: Literal["text", "image"]
    text: str = ""
    mime: str = ""

    def as_json(self) -> dict[str, str]:
        """The part as stored."""
        if self.kind == "image":
            return {"kind": "image", "mime": self.mime, "data": self.text}
        return {"kind": "text", "text": self.text}

    @property
    def data_url(self) -> str:
        """An image part as a data: URL (shown inline, never fetched from anywhere)."""
        return f"data:{self.mime};base64,{self.text}"


@dataclass(frozen=True, slots=True)
class ToolResult:
    """What a call returned, or why it did not: `error` parts are words for the user and
    the model alike."""

    parts: tuple[ResultPart, ...] = ()
    error: bool = False

    @property
    def text(self) -> str:
        """The text parts, joined: what the model is sent (images are described)."""
        out = []
        for part in self.parts:
            out.append(part.text if part.kind == "text" else f"[image, {part.mime}]")
        return "\n".join(out)


def failed(message: str) -> ToolResult:
    """A result saying in words why the call did not run or did not work."""
    return ToolResult((ResultPart("text", message),), error=True)


def bounded_parts(parts: list[ResultPart]) -> tuple[ResultPart, ...]:
    """`parts` within the limits: text cut at MAX_RESULT_CHARS, oversized or unknown images
    replaced by a note."""
    out: list[ResultPart] = []
    room = MAX_RESULT_CHARS
    for part in parts:
        if part.kind == "image":
            if part.mime not in IMAGE_TYPES or not _BASE64.match(part.text):
                out.append(ResultPart("text", f"[an image of type {part.mime!r} left out]"))
            elif len(part.text) > MAX_IMAGE_CHARS:
                out.append(ResultPart("text", "[an image larger than 3 MiB left out]"))
            else:
                out.append(part)
            continue
        if room <= 0:
            continue
        text = part.text
        if len(text) > room:
            text = (
                text[:room] + f"\n[cut: the result was longer than {MAX_RESULT_CHARS:,} characters]"
            )
        room -= len(text)
        out.append(ResultPart("text", text))
    return tuple(out)


def result_from_json(data: object) -> ToolResult | None:
    """A stored result (see `result_json`), or None when it is not one."""
    if not isinstance(data, dict) or not isinstance(data.get("parts"), list):
        return None
    parts = []
    for p in data["parts"]:
        if isinstance(p, dict) and p.get("kind") == "image":
            parts.append(ResultPart("image", str(p.get("data", "")), str(p.get("mime", ""))))
        elif isinstance(p, dict):
            parts.append(ResultPart("text", str(p.get("text", ""))))
    return ToolResult(tuple(parts), bool(data.get("error")))


def result_json(result: ToolResult) -> dict[str, Any]:
    """A result as stored with the answer."""
    return {"parts": [p.as_json() for p in result.parts], "error": result.error}


# streaming: the model is still writing it; asking: waiting for Allow / Deny; running: the
# tool runs; done: it returned (`result`, maybe an error); denied: the user said no;
# stopped: Stop (or a shutdown) ended it before it returned.
CallState = Literal["streaming", "asking", "running", "done", "denied", "stopped"]
# How it was decided: allowed once, "always" (allowed, and every later call of that tool
# in the conversation), "auto" (an earlier "always" allowed it), denied.
Approval = Literal["", "allowed", "always", "auto", "denied"]


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One tool call of an answer, stored with it: what the model sent, exactly, what the
    user decided and what the tool returned."""

    id: str  # the model's call id (or one made up when it sent none)
    name: str  # the function name the model called: "server__tool"
    arguments: str  # the JSON text as the model sent it (shown exactly so)
    round: int = 0  # which model request of the answer it came from, from 0
    at: int = 0  # the answer's length when the call came: text before it was that round's
    state: CallState = "streaming"
    approval: Approval = ""
    result: ToolResult | None = None

    def as_json(self) -> dict[str, Any]:
        """The call as stored."""
        data: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "arguments": self.arguments,
            "round": self.round,
            "at": self.at,
            "state": self.state,
            "approval": self.approval,
        }
        if self.result is not None:
            data["result"] = result_json(self.result)
        return data

    @property
    def server(self) -> str:
        """The server part of the name ("" when the name is not one htmxchat made)."""
        server, sep, _ = self.name.partition("__")
        return server if sep else ""

    @property
    def tool(self) -> str:
        """The tool part of the name."""
        _, sep, tool = self.name.partition("__")
        return tool if sep else self.name


_STATES = ("streaming", "asking", "running", "done", "denied", "stopped")
_APPROVALS = ("", "allowed", "always", "auto", "denied")


def calls_from_json(data: object) -> tuple[ToolCall, ...]:
    """Stored calls (see `ToolCall.as_json`); what does not fit is dropped, not fatal."""
    calls = []
    for item in data[:MAX_CALLS] if isinstance(data, list) else ():
        if not isinstance(item, dict):
            continue
        result = result_from_json(item.get("result"))
        state, approval = item.get("state"), item.get("approval", "")
        round_, at = item.get("round", 0), item.get("at", 0)
        calls.append(
            ToolCall(
                str(item.get("id", "")),
                str(item.get("name", "")),
                str(item.get("arguments", ""))[:MAX_ARGUMENT_CHARS],
                round_ if isinstance(round_, int) and round_ >= 0 else 0,
                at if isinstance(at, int) and at >= 0 else 0,
                state if state in _STATES else "stopped",
                approval if approval in _APPROVALS else "",
                result and ToolResult(bounded_parts(list(result.parts)), result.error),
            )
        )
    return tuple(calls)


def searchable(calls: tuple[ToolCall, ...]) -> str:
    """What search finds of an answer's calls: each tool's name, its arguments as sent and
    the text it returned (not its images)."""
    lines = []
    for call in calls:
        lines += [call.tool, call.arguments]
        if call.result is not None:
            lines += [p.text for p in call.result.parts if p.kind == "text"]
    return "\n".join(lines)
