"""Render a conversation's Markdown in a worker thread before a page or snapshot shows it.

Rendering is cached (`render.py`), so the page's template then finds every message already
rendered and the event loop only joins strings. A message can take seconds to render
(tens of thousands of formulas or links): on the loop, that would freeze every tab and
/healthz for as long (docs/limits.md).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence

from htmxchat.events import StreamState
from htmxchat.models import Message

from .ops import Op


async def prerender_messages(
    messages: Iterable[Message], streams: Mapping[str, StreamState] | None = None
) -> None:
    """Render the finished messages' text and reasoning, and the streaming replies'
    published blocks, in a thread (the results are cached for the template)."""
    texts = [
        text
        for m in messages
        if m.status != "streaming"
        for text in (m.content, m.reasoning)
        if text
    ]
    ops = [op for state in (streams or {}).values() for op in state.body + state.reasoning]
    if texts or ops:
        await asyncio.to_thread(_render, texts, ops)


def _render(texts: Sequence[str], ops: Sequence[Op]) -> None:
    from .html import prerender  # the renderer is loaded when first needed, not at start
    from .render import render_markdown

    for text in texts:
        render_markdown(text)
    prerender(ops)
