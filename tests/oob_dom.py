"""A small DOM and the htmx out-of-band swaps the WebSocket extension applies, for tests.

Each top-level element of a frame is swapped by its id, in order: `beforeend`, `beforebegin`
and `innerHTML` use the element's children, `outerHTML` the element itself, `delete` removes
the target. Elements without a matching target are dropped (htmx reports an error).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape
from html.parser import HTMLParser

VOID = {"br", "hr", "input", "img", "wbr", "meta", "link"}


@dataclass
class Node:
    tag: str  # "" for a text node
    attrs: list[tuple[str, str | None]] = field(default_factory=list)
    children: list[Node] = field(default_factory=list)
    text: str = ""
    parent: Node | None = None

    def attr(self, name: str) -> str | None:
        return next((v for k, v in self.attrs if k == name), None)


class _Builder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#root")
        self.stack = [self.root]

    def _add(self, node: Node) -> None:
        node.parent = self.stack[-1]
        self.stack[-1].children.append(node)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, list(attrs))
        self._add(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._add(Node(tag, list(attrs)))

    def handle_endtag(self, tag: str) -> None:
        for depth in range(len(self.stack) - 1, 0, -1):
            if self.stack[depth].tag == tag:
                del self.stack[depth:]
                return
        raise AssertionError(f"stray </{tag}>")

    def handle_data(self, data: str) -> None:
        self._add(Node("", text=data))


def parse(html: str) -> list[Node]:
    builder = _Builder()
    builder.feed(html)
    builder.close()
    assert len(builder.stack) == 1, f"unclosed elements in {html!r}"
    return builder.root.children


def unchunked(nodes: list[Node]) -> list[Node]:
    """A streamed body's nodes with its chunks (`md-chunk`, no box of their own) taken away:
    what the final render has."""
    out: list[Node] = []
    for node in nodes:
        out.extend(node.children if node.attr("class") == "md-chunk" else [node])
    return out


def serialise(nodes: list[Node], drop_ids: str | None = None) -> str:
    """HTML of `nodes`; `drop_ids`: leave out id attributes starting with this prefix."""
    out: list[str] = []
    for node in nodes:
        if not node.tag:
            out.append(escape(node.text, quote=False))
            continue
        attrs = "".join(
            f' {k}="{escape(v or "")}"' if v is not None else f" {k}"
            for k, v in node.attrs
            if not (drop_ids and k == "id" and (v or "").startswith(drop_ids))
        )
        out.append(f"<{node.tag}{attrs}>")
        if node.tag not in VOID:
            out.append(serialise(node.children, drop_ids))
            out.append(f"</{node.tag}>")
    return "".join(out)


class Page:
    """A document holding one element, swapped into by frames like htmx does."""

    def __init__(self, html: str) -> None:
        self.root = Node("#root")
        for node in parse(html):
            node.parent = self.root
            self.root.children.append(node)

    def find(self, element_id: str, node: Node | None = None) -> Node | None:
        for child in (node or self.root).children:
            if child.tag and child.attr("id") == element_id:
                return child
            found = self.find(element_id, child) if child.tag else None
            if found:
                return found
        return None

    def apply(self, frame: str, *, lenient: bool = False) -> None:
        """Swap `frame`'s elements in; `lenient`: drop those without a target (htmx
        reports an error and goes on), instead of failing."""
        for element in parse(frame):
            if not element.tag:
                assert not element.text.strip(), f"text outside elements: {element.text!r}"
                continue
            swap = element.attr("hx-swap-oob") or "outerHTML"
            swap = "outerHTML" if swap == "true" else swap
            element.attrs = [(k, v) for k, v in element.attrs if k != "hx-swap-oob"]
            target = self.find(element.attr("id") or "")
            if target is None and lenient:
                continue
            if target is None:
                raise AssertionError(f"no target for {serialise([element])[:200]}")
            self._preserve(element)
            parent = target.parent
            assert parent is not None
            for child in element.children:
                child.parent = target if swap in ("beforeend", "innerHTML") else parent
            at = parent.children.index(target)
            if swap == "beforeend":
                target.children.extend(element.children)
            elif swap == "innerHTML":
                target.children = element.children
            elif swap == "beforebegin":
                parent.children[at:at] = element.children
            elif swap == "outerHTML":
                element.parent = parent
                parent.children[at] = element
            elif swap == "delete":
                del parent.children[at]
            else:
                raise AssertionError(f"unknown swap {swap}")

    def _preserve(self, node: Node) -> None:
        """What static/app.js does for a finished answer: an element marked `data-streamed`
        in new content gets the children of the page's element of the same id (its
        streamed blocks), out of their chunks."""
        for child in node.children:
            if not child.tag:
                continue
            marked = any(name == "data-streamed" for name, _ in child.attrs)
            old = self.find(child.attr("id") or "") if marked else None
            if old is not None:
                child.children = unchunked(old.children)
                for moved in child.children:
                    moved.parent = child
                child.attrs = [(k, v) for k, v in child.attrs if k != "data-streamed"]
            else:
                self._preserve(child)


def text_of(node: Node) -> str:
    """All the text inside `node`, as `textContent` reads it."""
    return node.text if not node.tag else "".join(text_of(child) for child in node.children)
