"""One render that may be done away from the event loop, and where its result goes.

A job names a call of the renderer (a whole message, a block, a list item) by its
arguments: it can be pickled to the render process (`worker.py`), run in a thread, and its
HTML put into the cache the templates read, under the key they look up.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from markupsafe import Markup

from .ops import Block, FenceClose, ListItem, ListLoose, Op
from .render import (
    BLOCK_CACHE,
    ITEM_CACHE,
    MARKDOWN_CACHE,
    Refs,
    plain_text,
    render_block,
    render_list_item,
    render_markdown,
)


@dataclass(frozen=True, slots=True)
class RenderJob:
    """`render_markdown(source)`, `render_block(source, refs)` or
    `render_list_item(source, loose, refs)`."""

    kind: Literal["markdown", "block", "item"]
    source: str
    refs: Refs = ()
    loose: bool = False

    def run(self) -> Markup:
        """Render (and cache, in this process)."""
        if self.kind == "markdown":
            return render_markdown(self.source)
        if self.kind == "block":
            return render_block(self.source, self.refs)
        return render_list_item(self.source, self.loose, self.refs)

    def cached(self) -> bool:
        if self.kind == "markdown":
            return (self.source,) in MARKDOWN_CACHE
        if self.kind == "block":
            return (self.source, self.refs) in BLOCK_CACHE
        return (self.source, self.loose, self.refs) in ITEM_CACHE

    def remember(self, html: str) -> None:
        """Cache `html` (rendered elsewhere, and sanitised there) as this render."""
        # Safe: the render process runs this same renderer, which sanitises everything it
        # returns (nh3), and only that child holds the other end of its private socket pair.
        markup = Markup(html)
        if self.kind == "markdown":
            MARKDOWN_CACHE.put((self.source,), markup)
        elif self.kind == "block":
            BLOCK_CACHE.put((self.source, self.refs), markup)
        else:
            ITEM_CACHE.put((self.source, self.loose, self.refs), markup)

    def plain(self, why: str) -> Markup:
        """The source as plain text after a note saying `why` it is not formatted, in
        place of the render (a list item stays a list item)."""
        html = plain_text(self.source, why)
        return Markup("<li>{}</li>\n").format(html) if self.kind == "item" else html


def jobs_for(texts: Iterable[str], ops: Sequence[Op]) -> list[RenderJob]:
    """The renders that show `texts` (whole messages) and the blocks of `ops`."""
    jobs = [RenderJob("markdown", text) for text in texts]
    for op in ops:
        if isinstance(op, Block):
            jobs.append(RenderJob("block", op.source, op.refs))
        elif isinstance(op, FenceClose):
            jobs.append(RenderJob("block", op.source))  # render_fence
        elif isinstance(op, ListItem):
            jobs.append(RenderJob("item", op.source, op.refs, op.loose))
        elif isinstance(op, ListLoose):
            jobs += [RenderJob("item", source, op.refs, True) for source in op.items]
    return jobs
