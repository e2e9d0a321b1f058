"""Formulas: `\\(..\\)` and `\\[..\\]` syntax, and LaTeX to MathML with latex2mathml.

The dollar forms come from mdit-py-plugins' dollarmath; the bracket forms are parsed here with
the same rules (a display block ends at a blank line), so one blank line always ends a block.
"""

from __future__ import annotations

import logging
from bisect import bisect_left

from markdown_it import MarkdownIt
from markdown_it.rules_block import StateBlock
from markdown_it.rules_inline import StateInline
from markupsafe import escape

from htmxchat.markdown.math_spacing import tex_spacing

log = logging.getLogger(__name__)


def math_html(tex: str, display: bool) -> str:
    """MathML for `tex` (not yet sanitised), or the source as code when it does not convert."""
    from latex2mathml.converter import convert  # at the first formula, not at start-up

    tex = tex.strip()
    try:
        mathml = tex_spacing(convert(tex, display="block" if display else "inline"))
    except Exception as exc:  # latex2mathml raises many types on bad input
        log.debug("formula shown as code: %s", exc)
        if display:
            return f'<pre class="math-error"><code>{escape(tex)}</code></pre>\n'
        return f'<code class="math-error">{escape(tex)}</code>'
    if display:
        return f'<div class="math block">{mathml}</div>\n'
    return f'<span class="math inline">{mathml}</span>'


def _bracket_inline(state: StateInline, silent: bool) -> bool:
    """`\\( x \\)` inside a paragraph (runs before the backslash-escape rule)."""
    if not state.src.startswith("\\(", state.pos):
        return False
    end = _closer_after(state, state.pos + 2)
    if end < 0 or not state.src[state.pos + 2 : end].strip():
        return False
    if not silent:
        token = state.push("math_inline", "math", 0)
        token.content = state.src[state.pos + 2 : end]
        token.markup = "\\("
    state.pos = end + 2
    return True


def _closer_after(state: StateInline, start: int) -> int:
    """The first `\\)` at or after `start` (-1: none), found in linear time overall.

    A plain `find` from every `\\(` makes a text of many openers and no closer quadratic
    (60,000 openers took 12 s). The positions of all closers are found once per inline
    text and kept in the parse's env; each lookup is then a binary search.
    """
    cache = state.env.setdefault("_bracket_closers", {})
    closers = cache.get(id(state.src))
    if closers is None or closers[0] is not state.src:
        positions: list[int] = []
        found = state.src.find("\\)")
        while found >= 0:
            positions.append(found)
            found = state.src.find("\\)", found + 2)
        closers = cache[id(state.src)] = (state.src, positions)
    index = bisect_left(closers[1], start)
    return closers[1][index] if index < len(closers[1]) else -1


def _bracket_block(state: StateBlock, start_line: int, end_line: int, silent: bool) -> bool:
    """`\\[` ... `\\]` on its own lines; like dollarmath without blank lines inside."""
    if state.sCount[start_line] - state.blkIndent >= 4:
        return False  # indented code
    begin = state.bMarks[start_line] + state.tShift[start_line]
    line = state.src[begin : state.eMarks[start_line]].strip()
    if not line.startswith("\\["):
        return False
    rest = line[2:]
    next_line = start_line
    if rest.endswith("\\]") and len(rest) >= 2:
        content = rest[:-2]
    else:
        if "\\]" in rest:
            return False  # a closer in the middle of the line: not a block
        parts = [rest]
        while True:
            next_line += 1
            if next_line >= end_line:
                return False
            text = state.src[
                state.bMarks[next_line] + state.tShift[next_line] : state.eMarks[next_line]
            ].strip()
            if not text:
                return False  # a blank line ends the search: no blank lines inside
            if text.endswith("\\]"):
                parts.append(text[:-2])
                break
            parts.append(text)
        content = "\n".join(parts)
    if silent:
        return True
    state.line = next_line + 1
    token = state.push("math_block", "math", 0)
    token.block = True
    token.content = content
    token.markup = "\\["
    token.map = [start_line, state.line]
    return True


def bracket_math_plugin(md: MarkdownIt) -> None:
    """Add the `\\(..\\)` and `\\[..\\]` forms, producing dollarmath's token types."""
    md.inline.ruler.before("escape", "math_bracket_inline", _bracket_inline)
    md.block.ruler.before(
        "fence",
        "math_bracket_block",
        _bracket_block,
        {"alt": ["paragraph", "reference", "blockquote", "list"]},
    )
