"""What tools are and what they return, as plain records (no SDK types beyond `client.py`).

Results are bounded here: a tool is untrusted, and what it returns is stored, shown and
sent to the model again (docs/tools.md, "Limits").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

# A result's text, all parts together; longer text is cut with a note saying so.
MAX_RESULT_CHARS = 100_000
# One image's base64 data (about 3 MiB of image); a larger one is left out, saying so.
MAX_IMAGE_CHARS = 4 * 1024 * 1024
IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")
# A tool's description and schema as listed (some servers write essays).
MAX_DESCRIPTION_CHARS = 2_000


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
            if part.mime not in IMAGE_TYPES:
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
