"""Render Markdown away from the event loop before a page, snapshot or frame shows it.

Rendering is cached (`render.py`), so the template then finds every message already
rendered and the event loop only joins strings. A message can take seconds to render
(tens of thousands of formulas or links): on the loop, that would freeze every tab and
/healthz for as long (docs/limits.md). Large texts go to the render process (`worker.py`),
whose work does not compete with the loop at all; small ones cost less than the trip
there and are rendered in a thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from htmxchat.events import ReplyDelta, ReplyFinished, RoomEvent, StreamState
from htmxchat.models import Message

from .ops import Block, FenceClose, ListItem, Op

if TYPE_CHECKING:
    from .jobs import RenderJob

PROCESS_CHARS = 4000
"""Texts and blocks longer than this are rendered in the render process (a round trip
there costs about a millisecond; rendering 4,000 characters, several)."""


async def prerender_messages(
    messages: Iterable[Message], streams: Mapping[str, StreamState] | None = None
) -> None:
    """Render the finished messages' text and reasoning, and the streaming replies'
    published blocks (the results are cached for the template)."""
    texts = [
        text
        for m in messages
        if m.status != "streaming"
        for text in (m.content, m.reasoning)
        if text
    ]
    ops = [op for state in (streams or {}).values() for op in state.body + state.reasoning]
    if texts or ops:
        await prerender(texts, ops)


async def prerender_events(events: Iterable[RoomEvent]) -> None:
    """Render the large blocks and finished answers that room events carry (the smaller
    ones are cheaper to render with their frame), so building the frame does not hold up
    every other socket on the event loop."""
    ops: list[Op] = []
    texts: list[str] = []
    for event in events:
        if isinstance(event, ReplyDelta):
            ops += [
                op
                for op in event.ops + event.reasoning_ops
                if isinstance(op, FenceClose | Block | ListItem) and len(op.source) > PROCESS_CHARS
            ]
        elif isinstance(event, ReplyFinished):
            message = event.message
            texts += [
                text for text in (message.content, message.reasoning) if len(text) > PROCESS_CHARS
            ]
    if ops or texts:
        await prerender(texts, ops)


async def prerender(texts: Iterable[str], ops: Sequence[Op]) -> None:
    """Render (and cache) whole messages `texts` and the blocks of `ops` off the loop:
    the large ones in the render process, the rest in a thread."""
    # The renderer is loaded by the first message that needs it, not at start.
    from .jobs import jobs_for

    jobs = [job for job in dict.fromkeys(jobs_for(texts, ops)) if not job.cached()]
    large = [job for job in jobs if len(job.source) > PROCESS_CHARS]
    small = [job for job in jobs if len(job.source) <= PROCESS_CHARS]
    await asyncio.gather(_in_process(large), _in_thread(small))


async def _in_process(jobs: Sequence[RenderJob]) -> None:
    from .worker import WORKER

    if jobs:
        await _in_thread(await WORKER.render(jobs))  # what it could not take


async def _in_thread(jobs: Sequence[RenderJob]) -> None:
    if jobs:
        await asyncio.to_thread(_run, jobs)


def _run(jobs: Sequence[RenderJob]) -> None:
    for job in jobs:
        job.run()
