"""Stream operations as HTML: out-of-band fragments for htmx, or a body's current state.

The body element holds, in order: the committed blocks, at most one open list
(`{prefix}-l{n}`) or open code fence (`{prefix}-c{n}`, its text in `{prefix}-x{n}`), and last
the tail (`tail`), the unfinished text as plain text. Blocks go in *before* the tail
(`beforebegin`), grouped in chunks (`{prefix}-k{n}`, class `md-chunk`, a box with no room of
its own), so the committed HTML is exactly the final render once the chunks are taken away;
only an open list keeps its id. htmx's WebSocket extension swaps each top-level element of a
frame by its id, in order.

The ids are short because they travel in every frame: the tail in every streamed frame, the
others with every block (docs/design.md, "Frames"). `stream_ids` names them for a reply.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import groupby
from typing import Literal

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

Part = Literal["body", "reasoning"]


def stream_ids(message_id: str, part: Part) -> tuple[str, str]:
    """The id prefix and the tail id of a streaming reply's body or reasoning.

    A conversation streams one reply at a time, and these ids live only while it streams
    (the page takes the chunks and list ids away when the answer is finished: static/app.js),
    so they are short: the tail's, which travels in every frame, is fixed and tiny; the
    others carry the end of the message id besides, so a leftover could never be hit.
    """
    letter = "b" if part == "body" else "r"
    return f"{letter}{message_id[-3:]}", "t" if part == "body" else "rt"


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
        f'aria-label="Copy code">Copy</button></div><pre tabindex="0">'
        f'<code id="{target}-x{op.fence_id}">'
        f"{escape(text)}</code></pre></div>"
    )


def _chunk_html(target: str, chunk: int, inner: str) -> str:
    return f'<div id="{target}-k{chunk}" class="md-chunk">{inner}</div>'


Swap = tuple[str, str, str, str]  # wrapper tag, target id, hx-swap-oob, inner HTML


def _placed(target: str, tail: str, op: Block | ListOpen | FenceOpen, html: str) -> Swap:
    """A new top-level element: into its chunk, or a new chunk, before the tail."""
    if op.opens_chunk:
        return ("div", tail, "beforebegin", _chunk_html(target, op.chunk, html))
    if op.chunk:
        return ("div", f"{target}-k{op.chunk}", "beforeend", html)
    return ("div", tail, "beforebegin", html)


def _oob(swaps: Sequence[Swap]) -> str:
    """The swaps as top-level elements. Insertions into the same place one after another
    travel as one element (inserting A, then B, before or at the end of an element is
    inserting A and B); attributes are unquoted, since ids and swap names are plain tokens
    and these bytes go out with every frame."""
    out: list[str] = []
    previous: Swap | None = None
    for swap in swaps:
        if previous is not None and swap[:3] == previous[:3] and swap[2] in _JOINABLE:
            # str(): Markup + str would escape the second part
            previous = (*previous[:3], str(previous[3]) + str(swap[3]))
            continue
        if previous is not None:
            out.append(_element(previous))
        previous = swap
    if previous is not None:
        out.append(_element(previous))
    return "".join(out)


_JOINABLE = frozenset({"beforeend", "beforebegin"})


def _element(swap: Swap) -> str:
    tag, element_id, how, inner = swap
    return f"<{tag} id={element_id} hx-swap-oob={how}>{inner}</{tag}>"


def _text(element_id: str, how: str, text: str) -> Swap:
    """Plain text into an element: the shortest wrapper (its tag is never inserted)."""
    return ("b", element_id, how, str(escape(text)))


def _loose_items(op: ListLoose) -> list[Markup]:
    return [render_list_item(source, True, op.refs) for source in op.items]


def render_ops(target: str, ops: Sequence[Op], tail: str | None = None) -> Markup:
    """The out-of-band fragments that apply `ops` to a body whose ids start with `target`
    and whose tail is `tail` (default `{target}-tail`)."""
    tail = tail or f"{target}-tail"
    out: list[Swap] = []
    for op in ops:
        if isinstance(op, Block):
            out.append(_placed(target, tail, op, render_block(op.source, op.refs)))
        elif isinstance(op, ListOpen):
            out.append(_placed(target, tail, op, _list_html(target, op, [])))
        elif isinstance(op, ListItem):
            item = render_list_item(op.source, op.loose, op.refs)
            out.append(("div", f"{target}-l{op.list_id}", "beforeend", item))
        elif isinstance(op, ListLoose):
            items = "\n" + "".join(_loose_items(op))
            out.append(("div", f"{target}-l{op.list_id}", "innerHTML", items))
        elif isinstance(op, FenceOpen):
            out.append(_placed(target, tail, op, _fence_html(target, op, "")))
        elif isinstance(op, FenceAppend):
            out.append(_text(f"{target}-x{op.fence_id}", "beforeend", op.text))
        elif isinstance(op, FenceClose):
            fence = f"{target}-c{op.fence_id}"
            out.append(("div", fence, "beforebegin", render_fence(op.source)))
            out.append(("b", fence, "delete", ""))
        elif isinstance(op, TailSet):
            out.append(_text(tail, "innerHTML", op.text))
        elif isinstance(op, TailAppend):
            out.append(_text(tail, "beforeend", op.text))
        elif isinstance(op, Done):
            out.append(("b", tail, "delete", ""))
        # ListClose changes nothing on the page.
    # Safe: every piece is escaped text, an id built from `target` and numbers, or
    # sanitised renderer output.
    return Markup(_oob(out))


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


def render_state(target: str, ops: Sequence[Op], tail_id: str | None = None) -> Markup:
    """The inside of a body after `ops` (ids as in `render_ops`), as the fragments would
    build it from an empty body (for a page render, or a tab that joins in the middle of a
    reply)."""
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
        html.append(f'<div id="{tail_id or f"{target}-tail"}" class="md-tail">{escape(tail)}</div>')
    # Safe: escaped text, ids from `target` and numbers, and sanitised renderer output.
    return Markup("".join(html))
