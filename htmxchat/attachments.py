"""Files attached to a user's message: what is accepted, and how the model sees them.

Text files (anything that decodes as UTF-8) go into the message's text, fenced and labelled
with their name; images (PNG, JPEG, WebP, GIF, recognised by their first bytes, never by
their name) go as OpenAI-style `image_url` content parts. See docs/design.md, "Attachments".
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

MAX_FILES = 10
MAX_TEXT_BYTES = 1024 * 1024
MAX_IMAGE_BYTES = 10 * 1024 * 1024
MAX_NAME = 200
# Uploaded but never sent: removed when older than this (and at start-up).
PENDING_SECONDS = 3600.0
# At most this many uploads wait unsent in one conversation (a few messages' worth).
MAX_PENDING = 3 * MAX_FILES

Kind = Literal["text", "image"]


class AttachmentError(Exception):
    """A file was refused; the message says which and why."""


@dataclass(frozen=True, slots=True)
class AttachmentInfo:
    """An attachment as a message shows it (no bytes)."""

    id: str
    name: str
    mime: str
    kind: Kind
    size: int
    # The bytes, only where they are needed whole: exports and imports.
    data: bytes | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class AttachmentData:
    """An attachment with its bytes (for the model, the download route and exports)."""

    info: AttachmentInfo
    data: bytes


def sniff_image(data: bytes) -> str | None:
    """The image type from the file's first bytes (its name is never trusted)."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def clean_name(name: str) -> str:
    """A file name safe to show and to put in a header: no path, no control characters."""
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = re.sub(r"[\x00-\x1f\x7f\"]", "", name).strip()
    return name[:MAX_NAME] or "file"


def check_file(name: str, data: bytes) -> tuple[str, Kind]:
    """The checked type of an uploaded file (MIME, kind), or AttachmentError saying why not."""
    mime = sniff_image(data)
    if mime is not None:
        if len(data) > MAX_IMAGE_BYTES:
            raise AttachmentError(
                f"{name} is {size_text(len(data))}; images can be at most "
                f"{size_text(MAX_IMAGE_BYTES)}."
            )
        return mime, "image"
    if len(data) > MAX_TEXT_BYTES:
        raise AttachmentError(
            f"{name} is {size_text(len(data))}; text files can be at most "
            f"{size_text(MAX_TEXT_BYTES)}."
        )
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        raise AttachmentError(
            f"{name} is neither a text file (UTF-8) nor a PNG, JPEG, WebP or GIF image, "
            "so it cannot be attached."
        ) from None
    return "text/plain", "text"


def size_text(size: int) -> str:
    """A short human size: 512 bytes, 3.2 KB, 1.0 MiB."""
    if size < 1024:
        return f"{size} bytes"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KB"
    return f"{size / 1024 / 1024:.1f} MiB"


def fenced(name: str, text: str) -> str:
    """A text file as Markdown: its name, then a fence longer than any backtick run in it."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{name}:\n{fence}\n{text.rstrip(chr(10))}\n{fence}"


def model_content(text: str, files: Sequence[AttachmentData]) -> tuple[str, tuple[str, ...]]:
    """The text the model reads (text files appended, fenced) and the images as data URLs."""
    parts = [text] if text.strip() else []
    images: list[str] = []
    for file in files:
        if file.info.kind == "image":
            encoded = base64.b64encode(file.data).decode("ascii")
            images.append(f"data:{file.info.mime};base64,{encoded}")
        else:
            parts.append(fenced(file.info.name, file.data.decode("utf-8", "replace")))
    return "\n\n".join(parts), tuple(images)


_VISION_WORDS = re.compile(r"image|vision|multimodal|multi-modal|image_url", re.IGNORECASE)


def cannot_see(error: str) -> bool:
    """True when a model server's error says it cannot take image input."""
    return bool(_VISION_WORDS.search(error))


CANNOT_SEE = (
    "This model can't read images. Choose a vision model (llava, qwen2.5-vl, gemma3…) "
    "or remove the image."
)


def attachment_limits() -> dict[str, int]:
    """The limits the page checks before uploading (it is told them, not a copy)."""
    return {"files": MAX_FILES, "text": MAX_TEXT_BYTES, "image": MAX_IMAGE_BYTES}
