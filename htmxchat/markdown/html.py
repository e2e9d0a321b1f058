"""Stream operations as HTML: out-of-band fragments for htmx, or a body's current state.

The body element (`target`, e.g. `m-ABC-body`) holds, in order: the committed blocks, at most
one open list (`{target}-l{n}`) or open code fence (`{target}-c{n}`), and last the tail
(`{target}-tail`), the unfinished text as plain text. Blocks go in *before* the tail
(`beforebegin`), grouped in chunks (`{target}-k{n}`, class `md-chunk`, a box with no room of
its own), so the committed HTML is exactly the final render once the chunks are taken away;
only an open list keeps its id. htmx's WebSocket extension swaps each top-level element of a
frame by its id, in order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import groupby

from markdown_it.common.utils import unescapeAll
from markupsafe import Markup, escape

from .highlight import language_of
from .ops import (
    Block,
    Done,
    FenceAppend,
    FenceClose,
    FenceOpen,
    ListClose,
    ListItem,
    ListLoose,
    ListOpen,
    Op,
    TailAppend,
    TailSet,
)
from .render import render_block, render_fence, render_list_item


def _list_html(target: str, op: ListOpen, items: Sequence[str]) -> str:
    tag = "ol" if op.ordered else "ul"
    start = f' start="{op.start}"' if op.ordered and op.start not in (None, 1) else ""
    return f'<{tag} id="{target}-l{op.list_id}"{start}>\n{"".join(items)}</{tag}>\n'


def _fence_html(target: str, op: FenceOpen, text: str) -> str:
    label = escape(language_of(unescapeAll(op.info).strip()) or "text")
    fence = f"{target}-c{op.fence_id}"
    return (
        f'<div id="{fence}" class="code-block code-open"><div class="code-header">'
        f'<span class="code-lang">{label}</span><button type="button" class="copy-code" '
        f'aria-label="Copy code">Copy</button></div><pre tabindex="0"><code id="{fence}-code">'
        f"{escape(text)}</code></pre></div>"
    )


def _chunk_html(target: str, chunk: int, inner: str) -> str:
    return f'<div id="{target}-k{chunk}" class="md-chunk">{inner}</div>'


def _placed(target: str, op: Block | ListOpen | FenceOpen, html: str) -> str:
    """A new top-level element: into its chunk, or a new chunk, before the tail."""
    if op.opens_chunk:
        return _oob("div", f"{target}-tail", "beforebegin", _chunk_html(target, op.chunk, html))
    if op.chunk:
        return _oob("div", f"{target}-k{op.chunk}", "beforeend", html)
    return _oob("div", f"{target}-tail", "beforebegin", html)


def _oob(tag: str, element_id: str, swap: str, inner: str = "") -> str:
    return f'<{tag} id="{element_id}" hx-swap-oob="{swap}">{inner}</{tag}>'


def _loose_items(op: ListLoose) -> list[Markup]:
    return [render_list_item(source, True, op.refs) for source in op.items]


def render_ops(target: str, ops: Sequence[Op]) -> Markup:
    """The out-of-band fragments that apply `ops` to the body element `target`."""
    tail = f"{target}-tail"
    out: list[str] = []
    for op in ops:
        if isinstance(op, Block):
            out.append(_placed(target, op, render_block(op.source, op.refs)))
        elif isinstance(op, ListOpen):
            out.append(_placed(target, op, _list_html(target, op, [])))
        elif isinstance(op, ListItem):
            item = render_list_item(op.source, op.loose, op.refs)
            out.append(_oob("div", f"{target}-l{op.list_id}", "beforeend", item))
        elif isinstance(op, ListLoose):
            items = "\n" + "".join(_loose_items(op))
            out.append(_oob("div", f"{target}-l{op.list_id}", "innerHTML", items))
        elif isinstance(op, FenceOpen):
            out.append(_placed(target, op, _fence_html(target, op, "")))
        elif isinstance(op, FenceAppend):
            code = f"{target}-c{op.fence_id}-code"
            out.append(_oob("code", code, "beforeend", escape(op.text)))
        elif isinstance(op, FenceClose):
            fence = f"{target}-c{op.fence_id}"
            out.append(_oob("div", fence, "beforebegin", render_fence(op.source)))
            out.append(_oob("div", fence, "delete"))
        elif isinstance(op, TailSet):
            out.append(_oob("div", tail, "innerHTML", escape(op.text)))
        elif isinstance(op, TailAppend):
            out.append(_oob("div", tail, "beforeend", escape(op.text)))
        elif isinstance(op, Done):
            out.append(_oob("div", tail, "delete"))
        # ListClose changes nothing on the page.
    # Safe: every piece is escaped text, an id built from `target` and numbers, or
    # sanitised renderer output.
    return Markup("".join(out))


@dataclass
class _Piece:
    """Part of a body: finished HTML, or an open list or fence that can still grow."""

    html: str = ""
    opened: ListOpen | FenceOpen | None = None
    parts: list[str] = field(default_factory=list)  # a list's items, a fence's text
    chunk: int = 0  # the chunk it is in (ops.Block)

    def markup(self, target: str) -> str:
        if isinstance(self.opened, ListOpen):
            return _list_html(target, self.opened, self.parts)
        if isinstance(self.opened, FenceOpen):
            return _fence_html(target, self.opened, "".join(self.parts))
        return self.html


def render_state(target: str, ops: Sequence[Op]) -> Markup:
    """The inside of the body element `target` after `ops`, as the fragments would build it
    from an empty body (for a page render, or a tab that joins in the middle of a reply)."""
    pieces: list[_Piece] = []
    opened: dict[tuple[str, int], _Piece] = {}
    tail: str | None = ""
    for op in ops:
        if isinstance(op, Block):
            pieces.append(_Piece(render_block(op.source, op.refs), chunk=op.chunk))
        elif isinstance(op, ListOpen | FenceOpen):
            key = ("list", op.list_id) if isinstance(op, ListOpen) else ("fence", op.fence_id)
            opened[key] = _Piece(opened=op, chunk=op.chunk)
            pieces.append(opened[key])
        elif isinstance(op, ListItem):
            item = render_list_item(op.source, op.loose, op.refs)
            opened["list", op.list_id].parts.append(item)
        elif isinstance(op, ListLoose):
            opened["list", op.list_id].parts[:] = _loose_items(op)
        elif isinstance(op, FenceAppend):
            opened["fence", op.fence_id].parts.append(op.text)
        elif isinstance(op, FenceClose):
            fence = opened.pop(("fence", op.fence_id))
            fence.opened, fence.html = None, render_fence(op.source)
        elif isinstance(op, TailSet):
            tail = op.text
        elif isinstance(op, TailAppend):
            tail = (tail or "") + op.text
        elif isinstance(op, Done):
            tail = None
        elif not isinstance(op, ListClose):
            raise TypeError(f"not a Markdown stream operation: {op!r}")
    html: list[str] = []
    # A finished stream is the final render: no chunks.
    for chunk, run in groupby(pieces, key=lambda piece: piece.chunk if tail is not None else 0):
        inner = "".join(piece.markup(target) for piece in run)
        html.append(_chunk_html(target, chunk, inner) if chunk else inner)
    if tail is not None:
        html.append(f'<div id="{target}-tail" class="md-tail">{escape(tail)}</div>')
    # Safe: escaped text, ids from `target` and numbers, and sanitised renderer output.
    return Markup("".join(html))


def prerender(ops: Sequence[Op]) -> None:
    """Render (and cache) the blocks of `ops`: run it in a thread before `render_ops` when a
    big code block closes, so highlighting does not hold up the event loop."""
    for op in ops:
        if isinstance(op, Block):
            render_block(op.source, op.refs)
        elif isinstance(op, FenceClose):
            render_fence(op.source)
        elif isinstance(op, ListItem):
            render_list_item(op.source, op.loose, op.refs)
