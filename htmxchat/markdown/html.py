"""Stream operations as HTML: out-of-band fragments for htmx, or a body's current state.

The body element (`target`, e.g. `m-ABC-body`) holds, in order: the committed blocks, at most
one open list (`{target}-l{n}`) or open code fence (`{target}-c{n}`), and last the tail
(`{target}-tail`), the unfinished text as plain text. Blocks go in *before* the tail
(`beforebegin`), so the committed HTML is exactly the final render; only an open list keeps its
id. htmx's WebSocket extension swaps each top-level element of a frame by its id, in order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jinja2
from markdown_it.common.utils import unescapeAll
from markupsafe import Markup

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

TEMPLATE = "_md_ops.html"
Piece = dict[str, Any]


def _html(html: Markup) -> Piece:
    return {"kind": "html", "html": html}


def _text(text: str) -> Piece:
    return {"kind": "text", "text": text}


def _list(target: str, op: ListOpen, items: list[Markup]) -> Piece:
    tag = "ol" if op.ordered else "ul"
    start = op.start if op.ordered and op.start not in (None, 1) else None
    return {"kind": "list", "tag": tag, "id": f"{target}-l{op.list_id}", "start": start,
            "entries": items}  # fmt: skip


def _fence(target: str, op: FenceOpen, text: str) -> Piece:
    label = language_of(unescapeAll(op.info).strip())
    return {"kind": "fence", "id": f"{target}-c{op.fence_id}", "label": label, "text": text}


def _frame(tag: str, element_id: str, swap: str, pieces: list[Piece]) -> dict[str, Any]:
    return {"tag": tag, "id": element_id, "swap": swap, "pieces": pieces}


def _loose_items(op: ListLoose) -> list[Markup]:
    return [render_list_item(source, True, op.refs) for source in op.items]


def render_ops(env: jinja2.Environment, target: str, ops: Sequence[Op]) -> str:
    """The out-of-band fragments that apply `ops` to the body element `target`."""
    tail = f"{target}-tail"
    frames: list[dict[str, Any]] = []
    for op in ops:
        if isinstance(op, Block):
            frames.append(
                _frame("div", tail, "beforebegin", [_html(render_block(op.source, op.refs))])
            )
        elif isinstance(op, ListOpen):
            frames.append(_frame("div", tail, "beforebegin", [_list(target, op, [])]))
        elif isinstance(op, ListItem):
            item = render_list_item(op.source, op.loose, op.refs)
            frames.append(_frame("div", f"{target}-l{op.list_id}", "beforeend", [_html(item)]))
        elif isinstance(op, ListLoose):
            items = [_text("\n"), *map(_html, _loose_items(op))]
            frames.append(_frame("div", f"{target}-l{op.list_id}", "innerHTML", items))
        elif isinstance(op, FenceOpen):
            frames.append(_frame("div", tail, "beforebegin", [_fence(target, op, "")]))
        elif isinstance(op, FenceAppend):
            code = f"{target}-c{op.fence_id}-code"
            frames.append(_frame("code", code, "beforeend", [_text(op.text)]))
        elif isinstance(op, FenceClose):
            fence = f"{target}-c{op.fence_id}"
            frames.append(_frame("div", fence, "beforebegin", [_html(render_fence(op.source))]))
            frames.append(_frame("div", fence, "delete", []))
        elif isinstance(op, TailSet):
            frames.append(_frame("div", tail, "innerHTML", [_text(op.text)]))
        elif isinstance(op, TailAppend):
            frames.append(_frame("div", tail, "beforeend", [_text(op.text)]))
        elif isinstance(op, Done):
            frames.append(_frame("div", tail, "delete", []))
        # ListClose changes nothing on the page.
    return env.get_template(TEMPLATE).render(frames=frames, pieces=[])


def render_state(env: jinja2.Environment, target: str, ops: Sequence[Op]) -> Markup:
    """The inside of the body element `target` after `ops`, as the fragments would build it
    from an empty body (for a page render, or a tab that joins in the middle of a reply)."""
    pieces: list[Piece] = []
    lists: dict[int, Piece] = {}
    fences: dict[int, Piece] = {}
    tail: str | None = ""
    for op in ops:
        if isinstance(op, Block):
            pieces.append(_html(render_block(op.source, op.refs)))
        elif isinstance(op, ListOpen):
            lists[op.list_id] = _list(target, op, [])
            pieces.append(lists[op.list_id])
        elif isinstance(op, ListItem):
            lists[op.list_id]["entries"].append(render_list_item(op.source, op.loose, op.refs))
        elif isinstance(op, ListLoose):
            lists[op.list_id]["entries"] = _loose_items(op)
        elif isinstance(op, FenceOpen):
            fences[op.fence_id] = _fence(target, op, "")
            pieces.append(fences[op.fence_id])
        elif isinstance(op, FenceAppend):
            fences[op.fence_id]["text"] += op.text
        elif isinstance(op, FenceClose):
            piece = fences.pop(op.fence_id)
            piece.clear()
            piece.update(_html(render_fence(op.source)))
        elif isinstance(op, TailSet):
            tail = op.text
        elif isinstance(op, TailAppend):
            tail = (tail or "") + op.text
        elif isinstance(op, Done):
            tail = None
        elif not isinstance(op, ListClose):
            raise TypeError(f"not a Markdown stream operation: {op!r}")
    if tail is not None:
        pieces.append({"kind": "tail", "id": f"{target}-tail", "text": tail})
    return Markup(env.get_template(TEMPLATE).render(frames=[], pieces=pieces))


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
