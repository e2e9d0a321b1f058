"""The one Markdown renderer: CommonMark + GFM bits + math, sanitised, cached per block.

Everything that turns Markdown into HTML goes through here: the full render of a finished
message and the pieces a stream commits (a block, a list item, a closed code fence). The
pieces are rendered with the same parser, so their concatenation is the full render.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.common.utils import unescapeAll
from markdown_it.renderer import RendererHTML
from markdown_it.rules_core import StateCore
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict
from markupsafe import Markup, escape
from mdit_py_plugins.dollarmath import dollarmath_plugin
from mdit_py_plugins.tasklists import tasklists_plugin

from htmxchat.limits import MAX_RENDERED_CHARS

from .cache import RenderCache
from .highlight import code_block_html
from .mathml import bracket_math_plugin, math_html
from .sanitise import sanitise

# Reference definitions a piece needs: (normalised label, href, title), in document order.
Refs = tuple[tuple[str, str, str], ...]

_ALLOWED_URL = re.compile(r"(?:https?|mailto):", re.IGNORECASE)
_ALIGN = re.compile(r"text-align:(left|center|right)")


def _validate_link(url: str) -> bool:
    """Only http(s) and mailto links; anything else (relative, javascript:, data:) is text.

    markdown-it has already decoded entities and percent-encoded control characters and
    spaces, so `java&#10;script:` arrives as `java%0Ascript:` and fails here.
    """
    return _ALLOWED_URL.match(url) is not None


def _tidy(state: StateCore) -> None:
    """Drop the list class the task plugin adds (it would change a list once streamed) and
    turn table alignment styles into classes (the page's CSP forbids inline styles)."""
    for token in state.tokens:
        if token.type in ("bullet_list_open", "ordered_list_open"):
            if token.attrGet("class") == "contains-task-list":
                del token.attrs["class"]
        elif token.type in ("th_open", "td_open"):
            style = token.attrGet("style")
            if isinstance(style, str):
                del token.attrs["style"]
                match = _ALIGN.match(style)
                if match:
                    token.attrSet("class", f"align-{match.group(1)}")


class _Renderer(RendererHTML):
    """HTML renderer with our code blocks, math, links and images."""

    def fence(self, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType) -> str:
        token = tokens[idx]
        return code_block_html(token.content, unescapeAll(token.info).strip())

    def code_block(
        self, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
    ) -> str:
        return code_block_html(tokens[idx].content, "")

    def link_open(
        self, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
    ) -> str:
        tokens[idx].attrSet("target", "_blank")
        return self.renderToken(tokens, idx, options, env)

    def image(self, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType) -> str:
        """Images are never loaded: a link to the image, labelled with its alt text."""
        token = tokens[idx]
        src = str(token.attrGet("src") or "")
        alt = self.renderInlineAsText(token.children or [], options, env) or src
        return f'<a href="{escape(src)}" class="image-link" target="_blank">{escape(alt)}</a>'

    def math_inline(
        self, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
    ) -> str:
        return math_html(tokens[idx].content, display=False)

    def math_block(
        self, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
    ) -> str:
        return math_html(tokens[idx].content, display=True)


def _make_parser() -> MarkdownIt:
    md = MarkdownIt(
        "commonmark",
        {"html": False, "linkify": True, "typographer": False},
        renderer_cls=_Renderer,
    )
    md.enable(["table", "strikethrough", "linkify"])
    md.validateLink = _validate_link  # type: ignore[method-assign]
    md.use(tasklists_plugin)
    # No blank lines inside $$ blocks: a blank line must always end a block (streaming).
    md.use(dollarmath_plugin, allow_labels=False, allow_blank_lines=False)
    md.use(bracket_math_plugin)
    # The plugin's own render rules only escape the source: replace them with MathML.
    md.add_render_rule("math_inline", _Renderer.math_inline)
    md.add_render_rule("math_block", _Renderer.math_block)
    md.core.ruler.push("htmxchat_tidy", _tidy)
    return md


MD = _make_parser()
# The same grammar without inline parsing: a stream only needs where blocks begin and end
# (their inline content is rendered later, from source), and inline parsing is most of the
# cost of a parse.
BLOCKS = _make_parser()
BLOCKS.disable(["inline", "github-tasklists", "linkify", "text_join"])


# Texts up to this size are rendered and sanitised in one go.
_WHOLE_RENDER_CHARS = 16 * 1024


def new_env(refs: Refs = ()) -> dict[str, Any]:
    """A parse environment knowing the reference definitions `refs`."""
    return {"references": {label: {"href": href, "title": title} for label, href, title in refs}}


def render_block(source: str, refs: Refs = ()) -> Markup:
    """Render Markdown `source` (one block or a whole text), sanitised.

    Cached: every browser tab watching a reply renders the same blocks.
    """
    return BLOCK_CACHE((source, refs))


def _render_block(key: tuple[str, Refs]) -> Markup:
    source, refs = key
    env = new_env(refs)
    if len(source) <= _WHOLE_RENDER_CHARS:
        return sanitise(MD.render(source, env))
    return Markup("".join(sanitise(part) for part in _top_level_html(source, env)))


def _top_level_html(source: str, env: dict[str, Any]) -> list[str]:
    """The unsanitised HTML of each top-level block of `source` (each well-formed alone):
    a long text's size is known before anything is sanitised, and it is sanitised in
    pieces of one block."""
    tokens = MD.parse(source, env)
    parts: list[str] = []
    first = depth = 0
    for index, token in enumerate(tokens):
        depth += token.nesting
        if depth == 0:
            parts.append(MD.renderer.render(tokens[first : index + 1], MD.options, env))
            first = index + 1
    return parts


def render_markdown(source: str) -> Markup:
    """The full, final render of a message; plain text when its HTML would be too big for a
    browser to lay out quickly (MAX_RENDERED_CHARS, docs/limits.md)."""
    return MARKDOWN_CACHE((source,))


def _render_markdown(key: tuple[str]) -> Markup:
    (source,) = key
    if len(source) <= _WHOLE_RENDER_CHARS:
        return render_block(source)
    parts = _top_level_html(source, new_env())
    if sum(map(len, parts)) > MAX_RENDERED_CHARS:
        return plain_text(source, "This answer is too large to show formatted")
    return Markup("".join(sanitise(part) for part in parts))


def plain_text(source: str, why: str) -> Markup:
    """`source` as escaped plain text, after a note saying why it is not formatted."""
    return Markup(
        '<p class="md-too-big">{}, so it is shown as plain text.</p><pre class="md-plain">{}</pre>'
    ).format(why, source)


def render_list_item(source: str, loose: bool, refs: Refs = ()) -> Markup:
    """One top-level list item (`<li>...</li>\\n`), tight or loose as its whole list is."""
    return ITEM_CACHE((source, loose, refs))


def _render_list_item(key: tuple[str, bool, Refs]) -> Markup:
    source, loose, refs = key
    tokens = MD.parse(source, new_env(refs))
    end = next((i for i, t in enumerate(tokens) if t.level == 0 and t.nesting == -1), len(tokens))
    items = tokens[1:end]  # inside the list's open/close
    for token in items:
        # What markdown-it's list rule does for a tight list, decided for the whole list.
        if token.level == 2 and token.type in ("paragraph_open", "paragraph_close"):
            token.hidden = not loose
    return sanitise(MD.renderer.render(items, MD.options, new_env(refs)))


def list_open_html(ordered: bool, start: int | None) -> str:
    """The opening tag of a list, as the renderer writes it (plain, no id)."""
    if not ordered:
        return "<ul>"
    return "<ol>" if start is None or start == 1 else f'<ol start="{start}">'


def render_fence(source: str) -> Markup:
    """A closed code fence, highlighted; slow for big blocks, so callers may use a thread."""
    return render_block(source)


# Every tab watching a reply renders the same blocks; a page shows the same messages again.
BLOCK_CACHE = RenderCache(_render_block, maxsize=4096)
ITEM_CACHE = RenderCache(_render_list_item, maxsize=4096)
MARKDOWN_CACHE = RenderCache(_render_markdown, maxsize=256)


def clear_caches() -> None:
    """Forget every render (tests and benchmarks measure renders from scratch)."""
    for cache in (BLOCK_CACHE, ITEM_CACHE, MARKDOWN_CACHE):
        cache.clear()
