"""An open top-level list, streamed item by item: each finished item is sent once.

A list can grow without end (hundreds of items), so its finished items are committed as they
end, and the stream keeps only the last one at the start of its pending text, as context for
the parser. Lines that are plain items (`PLAIN_ITEM`) end the item before them without a parse.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .ops import Block, ListClose, ListItem, ListOpen
from .render import Refs

# An item's first line: the bullet character, or the ordered list's delimiter.
_MARKER = re.compile(r"(?:([-*+])|\d{1,9}([.)])) ")
# A whole line that is one plain item: a marker at the margin, then text that starts with a
# letter, digit, bracket or quote (never a rule, fence, heading or nested marker) and holds
# nothing that could reach past the line or wait for later text (links and references, math,
# escapes, HTML, tables). Such a line ends the item before it, without a parse.
PLAIN_ITEM = re.compile(r"(?:[-*+]|\d{1,9}[.)]) [A-Za-z0-9(\"'][^\[\]$\\<|\n]*\n")


@dataclass
class OpenList:
    """A top-level list on the page that is still open, and the items it was sent."""

    list_id: int
    ordered: bool
    start: int | None
    loose: bool = False
    items: list[str] = field(default_factory=list)  # committed items' sources
    refs: list[Refs] = field(default_factory=list)
    context: int = 0  # length of the last committed item, kept at the start of the text
    chunk: int = 0  # the chunk it was placed in on the page

    def add(self, source: str, refs: Refs) -> ListItem:
        """Commit a finished item; the operation that shows it."""
        self.items.append(source)
        self.refs.append(refs)
        return ListItem(self.list_id, source, self.loose, refs)

    def closed(self, refs: Refs) -> tuple[ListClose, Block]:
        """The operation that closes the list, and the list as one block (for snapshots)."""
        return ListClose(self.list_id), Block("".join(self.items), refs, self.chunk)

    def rebuilt(self) -> list[ListOpen | ListItem]:
        """The operations that show the list as it is, on an empty body (a snapshot)."""
        items = zip(self.items, self.refs, strict=True)
        return [
            ListOpen(self.list_id, self.ordered, self.start, self.chunk),
            *(ListItem(self.list_id, source, self.loose, refs) for source, refs in items),
        ]

    def plain_lines(self, source: str) -> list[str] | None:
        """The lines of `source` after the context when every one is a plain item of this
        list (same kind of marker), else None, for the parser to judge."""
        marker = _MARKER.match(source)
        if marker is None or bool(marker[2]) != self.ordered:
            return None
        lines = source[self.context :].splitlines(keepends=True)
        for line in lines:
            same = _MARKER.match(line)
            if not PLAIN_ITEM.fullmatch(line) or same is None or same[0][-2] != marker[0][-2]:
                return None
        return lines
