"""What a Markdown stream produces: small immutable operations carrying Markdown text only.

The chat core can keep and publish these as they are; they become HTML later, in the
presentation layer (`htmxchat.markdown.html`), through the cached renderer. Numbers (`list_id`,
`fence_id`) are unique within one reply and name the element the operation changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the renderer loads markdown-it: the chat core imports ops at start
    from .render import Refs


@dataclass(frozen=True, slots=True)
class Block:
    """A finished top-level block (or several), appended once, before the tail.

    While a reply streams, the top-level elements (blocks, open lists and fences) are grouped
    on the page into chunks of a few (`chunk` names one; `opens_chunk` starts it), so the
    browser lays out and paints a long answer a chunk at a time rather than block by block.
    0: not in a chunk. The final render has no chunks; they take no room of their own.
    """

    source: str
    refs: Refs = ()
    chunk: int = 0
    opens_chunk: bool = False


@dataclass(frozen=True, slots=True)
class ListOpen:
    """A top-level list starts streaming item by item; an empty list element is appended."""

    list_id: int
    ordered: bool
    start: int | None = None
    chunk: int = 0  # as for Block
    opens_chunk: bool = False


@dataclass(frozen=True, slots=True)
class ListItem:
    """A finished item of an open list, appended into it."""

    list_id: int
    source: str
    loose: bool
    refs: Refs = ()


@dataclass(frozen=True, slots=True)
class ListLoose:
    """The open list turned loose (a blank line between items): its items, rendered again."""

    list_id: int
    items: tuple[str, ...]
    refs: Refs = ()


@dataclass(frozen=True, slots=True)
class ListClose:
    """The open list is finished; nothing changes on the page."""

    list_id: int


@dataclass(frozen=True, slots=True)
class FenceOpen:
    """A top-level code fence opened: a plain code block is appended, its text follows."""

    fence_id: int
    info: str
    chunk: int = 0  # as for Block
    opens_chunk: bool = False


@dataclass(frozen=True, slots=True)
class FenceAppend:
    """Plain text for the open code fence."""

    fence_id: int
    text: str


@dataclass(frozen=True, slots=True)
class FenceClose:
    """The fence closed: its whole source, highlighted once, replaces the plain block."""

    fence_id: int
    source: str


@dataclass(frozen=True, slots=True)
class TailSet:
    """The unfinished rest of the text, shown as plain text, replaced."""

    text: str


@dataclass(frozen=True, slots=True)
class TailAppend:
    """More unfinished text, added to the end of the tail."""

    text: str


@dataclass(frozen=True, slots=True)
class Done:
    """The reply is finished: the (empty) tail element goes away."""


Op = (
    Block
    | ListOpen
    | ListItem
    | ListLoose
    | ListClose
    | FenceOpen
    | FenceAppend
    | FenceClose
    | TailSet
    | TailAppend
    | Done
)
