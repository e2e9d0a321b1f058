"""When is a top-level block finished? The rules a stream needs, on one parse of the text.

Every function here looks at tokens of a parse of *complete lines only*: a half-typed line can
still change what it is (`#` -> `#x`, `2` -> `2.`), so it never proves anything.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from markdown_it.common.utils import normalizeReference
from markdown_it.token import Token


@dataclass(frozen=True, slots=True)
class TopBlock:
    """One level-0 block of a parse: its token range and its line range."""

    kind: str  # the opening token's type: paragraph_open, fence, bullet_list_open...
    first: int  # index of its first token
    end: int  # index after its last token
    start_line: int
    end_line: int


def top_blocks(tokens: Sequence[Token]) -> list[TopBlock]:
    """Group the level-0 tokens of a parse into blocks."""
    blocks: list[TopBlock] = []
    first = 0
    depth = 0
    for index, token in enumerate(tokens):
        if depth == 0:
            first = index
        depth += token.nesting
        if depth == 0:
            opener = tokens[first]
            start, end = opener.map or (0, 0)
            blocks.append(TopBlock(opener.type, first, index + 1, start, end))
    return blocks


def closed_fence(lines: Sequence[str], token: Token) -> bool:
    """Whether a fence token ends with its closing line (rather than the end of the text)."""
    start, end = token.map or (0, 0)
    if end - 1 <= start:
        return False
    return closes_fence(lines[end - 1], token.markup[0], len(token.markup))


def closes_fence(line: str, char: str, length: int) -> bool:
    """A closing fence: up to 3 spaces, at least `length` of `char`, then only spaces."""
    stripped = line.rstrip("\r\n")
    body = stripped.lstrip(" ")
    if len(stripped) - len(body) > 3:
        return False
    run = len(body) - len(body.lstrip(char))
    return run >= length and not body[run:].strip(" \t")


# A paragraph, table or block quote is finished by a blank line after it; these are finished
# as soon as they are complete, because nothing after them can change them.
_FINAL_KINDS = {"heading_open", "hr", "math_block"}
_BLANK_ENDED = {"paragraph_open", "table_open", "blockquote_open"}


def finished_as_last(block: TopBlock, tokens: Sequence[Token], lines: Sequence[str]) -> bool:
    """Whether the last block of the text is finished with nothing after it.

    Lists and indented code never are: an item or a line can always be added, and a blank
    line then an item makes a tight list loose, changing every item.
    """
    if block.kind in _FINAL_KINDS:
        return True
    if block.kind == "fence":
        return closed_fence(lines, tokens[block.first])
    if block.kind in _BLANK_ENDED:
        return block.end_line < len(lines) and not lines[block.end_line].strip()
    return False


_MATH_OPENER = re.compile(r" {0,3}(\$\$|\\\[)(.*)")
_NO_MATH_OPENERS = {"fence", "code_block", "math_block"}


def waits_for_math(block: TopBlock, lines: Sequence[str]) -> bool:
    """A `$$` or `\\[` line without its closer swallows what follows, if a closer comes
    before the next blank line: until that blank line is here, the block is not settled."""
    if block.kind in _NO_MATH_OPENERS:
        return False
    for number in range(block.start_line, block.end_line):
        match = _MATH_OPENER.match(lines[number])
        if match is None:
            continue
        closer = "$$" if match.group(1) == "$$" else "\\]"
        if closer in match.group(2):
            continue  # closed on its own line, or not a math block at all
        if not any(not line.strip() for line in lines[number + 1 :]):
            return True
    return False


_CODE_SPAN = re.compile(r"(`+).+?\1", re.DOTALL)
_MATH_SPAN = re.compile(r"\$[^$]*\$|\\\(.*?\\\)", re.DOTALL)
_TASK_BOX = re.compile(r"\[[ xX]\]\s")
_LABEL = re.compile(r"\[((?:[^\[\]\\]|\\.)+)\]")


def unresolved_label(
    tokens: Sequence[Token], first: int, end: int, references: Mapping[str, Any]
) -> bool:
    """Whether the tokens hold a `[label]` that no reference definition has resolved yet.

    Such a block is held back until the end: a definition further down would make it a link.
    Code spans and math are ignored; a false alarm only delays a block, never breaks one.
    """
    for token in tokens[first:end]:
        if token.type != "inline" or "]" not in token.content:
            continue
        text = _MATH_SPAN.sub("", _CODE_SPAN.sub("", token.content))
        if _TASK_BOX.match(text):
            text = text[4:]
        for match in _LABEL.finditer(text):
            after = text[match.end() : match.end() + 2]
            if after[:1] == "(" or (after[:1] == "[" and after != "[]"):
                continue  # an inline link, or the text part of `[text][label]`
            label = normalizeReference(match.group(1))
            if label.strip() and label not in references:
                return True
    return False
