"""What the templates can call: the filters and globals of the app's Jinja environment.

Pages and fragments share them (`fragments.py`, `aiohttp_jinja2`): URLs of static files,
attachments and message sources, a reply's status and stats lines, a tool call's state in
words, the Markdown filters, and the core's own limits and refusal texts for the page.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import jinja2
from markupsafe import Markup

from htmxchat import __version__
from htmxchat.attachments import attachment_limits, size_text
from htmxchat.chat import (
    BLANK_CHARS,
    EMPTY_EDIT,
    MAX_MESSAGE_CHARS,
    OFFLINE,
    OFFLINE_EDIT,
    TOO_LONG,
)
from htmxchat.limits import INLINE_SOURCE_CHARS
from htmxchat.markdown.ops import Op
from htmxchat.models import Message
from htmxchat.provenance import without_password
from htmxchat.speakers import picker_model, speaker, speaker_server
from htmxchat.times import clock_time, full_time, iso_time, list_group
from htmxchat.tools.results import ToolResult

if TYPE_CHECKING:
    from htmxchat.markdown.html import Part

STATIC_PREFIX = "/static/"
ATTACHMENT_PREFIX = "/attachments/"


def setup_environment(env: jinja2.Environment) -> None:
    """Register the filters and globals our templates use."""
    env.filters["status_text"] = status_text
    env.globals["tool_state"] = tool_state
    env.filters["without_password"] = without_password
    env.filters["reply_stats"] = reply_stats
    env.globals["static_url"] = static_url
    env.globals["streams"] = {}  # a page or snapshot passes the streaming reply's state
    env.filters["markdown"] = markdown_html
    env.filters["stream_state"] = stream_state
    env.filters["stream_ops"] = stream_ops
    # The page checks messages by the server's own rules before sending them.
    env.globals["max_message_chars"] = MAX_MESSAGE_CHARS
    env.globals["blank_chars"] = " ".join(str(ord(c)) for c in BLANK_CHARS)  # code points
    # What the page says when it refuses before sending: the core's own words.
    env.globals["page_texts"] = {
        "too-long": TOO_LONG,
        "empty-edit": EMPTY_EDIT,
        "offline": OFFLINE,
        "offline-edit": OFFLINE_EDIT,
    }
    env.globals["attachment_url"] = attachment_url
    env.globals["source_url"] = source_url
    env.globals["inline_source_chars"] = INLINE_SOURCE_CHARS
    env.filters["file_size"] = size_text
    env.globals["attachment_limits"] = attachment_limits()
    env.filters.update(iso_time=iso_time, clock_time=clock_time, full_time=full_time)
    env.filters["list_group"] = list_group
    env.globals.update(speaker=speaker, speaker_server=speaker_server, picker_model=picker_model)
    env.trim_blocks = True
    env.lstrip_blocks = True


# The Markdown renderer is imported by the first message shown, not at start (it is most of
# the start-up's own code): hence the imports inside the three filters.


def markdown_html(text: str) -> Markup:
    """A finished message's Markdown as sanitised HTML."""
    from htmxchat.markdown.render import render_markdown

    return render_markdown(text)


def stream_state(ops: Sequence[Op], message_id: str, part: Part) -> Markup:
    """A streaming reply's body or reasoning as its Markdown operations build it."""
    from htmxchat.markdown.html import render_state, stream_ids

    prefix, tail = stream_ids(message_id, part)
    return render_state(prefix, ops, tail)


def stream_ops(ops: Sequence[Op], message_id: str, part: Part) -> Markup:
    """The out-of-band fragments applying `ops` to a streaming reply's body or reasoning."""
    from htmxchat.markdown.html import render_ops, stream_ids

    prefix, tail = stream_ids(message_id, part)
    return render_ops(prefix, ops, tail)


def source_url(conversation_id: str, message_id: str) -> str:
    """Where a message's Markdown is served (the `message_source` route): a big answer's
    Copy fetches it rather than carrying it in the page (docs/limits.md)."""
    return f"/c/{conversation_id}/m/{message_id}/source"


def attachment_url(attachment_id: str) -> str:
    """Where an attachment's bytes are served (the `attachment` route)."""
    return f"{ATTACHMENT_PREFIX}{attachment_id}"


def static_url(path: str) -> str:
    """URL of a served static file; the version busts caches after an upgrade."""
    return f"{STATIC_PREFIX}{path}?v={__version__}"


def tool_state(state: str, approval: str, result: ToolResult | None) -> str:
    """A tool call's state in words, for its summary line."""
    if state == "done":
        how = {"auto": " (always allowed)", "always": " (always allowed from now on)"}
        outcome = "failed" if result is not None and result.error else "ran"
        return outcome + how.get(approval, "")
    return {
        "streaming": "being written…",
        "asking": "waiting for you",
        "running": "running…",
        "denied": "denied",
    }.get(state, "stopped")


def status_text(message: Message) -> str:
    """The line shown under a reply that did not finish normally."""
    if message.status == "stopped":
        return "Stopped."
    if message.status == "interrupted":
        return "Interrupted: htmxchat stopped before this reply was finished."
    if message.status == "error":
        return message.error or "The reply failed."
    return message.error or ""


def reply_stats(message: Message) -> str:
    """Model, size and speed of a finished reply, e.g. "llama3 · 120 words · 35.1/s"."""
    # The demo bot streams words; model servers stream tokens (about one per chunk).
    # The server's own token count, when it reported usage, is exact; else count pieces.
    unit = "tokens" if message.model else "words"
    count = message.piece_count
    if message.completion_tokens is not None:
        unit, count = "tokens", message.completion_tokens
    parts = [message.model or message.bot or "bot", f"{count} {unit}"]
    if message.finished_at and message.first_piece_ms is not None:
        streaming = message.finished_at - message.created_at - message.first_piece_ms / 1000
        if streaming > 0.05 and count > 1:
            parts.append(f"{count / streaming:.1f} {unit}/s")
        parts.append(f"first after {message.first_piece_ms:.0f} ms")
    # How much of the model's context the conversation now uses (docs/design.md, "Context
    # window"), from the server's own counts.
    size = (message.provenance or {}).get("context")
    if isinstance(size, int) and message.prompt_tokens is not None:
        used = message.prompt_tokens + (message.completion_tokens or 0)
        parts.append(f"context {used:,} of {size:,} tokens")
    return " · ".join(parts)
