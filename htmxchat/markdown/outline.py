"""Headings moved down a level or more, so a message's own outline nests under the heading
a document gives the message (the Markdown export: `## Speaker`, then the answer's `#`s)."""

from __future__ import annotations

import re

from htmxchat.markdown.render import BLOCKS, new_env

DEEPEST = 6  # Markdown has six heading levels: deeper ones stay at six
# An ATX heading's hashes, after any block quote and list markers in front of them.
_ATX = re.compile(r"^((?:[ \t]*(?:>|[-+*]|\d{1,9}[.)])(?=[ \t]|$))*[ \t]*)#{1,6}(?=[ \t]|$)")


def demote_headings(source: str, levels: int) -> str:
    """`source` with every heading `levels` deeper (at most six), found by the same parser
    the page renders with, so a `#` in a code block or a formula is never touched.
    Setext headings (text underlined with === or ---) become ATX headings."""
    lines = source.split("\n")
    dropped: set[int] = set()
    for token in BLOCKS.parse(source, new_env()):
        if token.type != "heading_open" or token.map is None:
            continue
        start, end = token.map
        hashes = "#" * min(int(token.tag[1]) + levels, DEEPEST)
        if token.markup.startswith("#"):
            lines[start] = _ATX.sub(r"\g<1>" + hashes, lines[start], count=1)
        elif token.level == 0 and end - start >= 2:  # text lines, then the underline
            text = " ".join(line.strip() for line in lines[start : end - 1])
            lines[start] = f"{hashes} {text}"
            dropped.update(range(start + 1, end))
    return "\n".join(line for n, line in enumerate(lines) if n not in dropped)
