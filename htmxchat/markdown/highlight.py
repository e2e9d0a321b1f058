"""Code blocks: Pygments highlighting into CSS classes, inside a header with label and Copy."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

from markupsafe import escape

if TYPE_CHECKING:
    from pygments.formatters import HtmlFormatter
    from pygments.lexer import Lexer

# Pygments is imported when the first code block is highlighted, not at start-up.
COPY_BUTTON = '<button type="button" class="copy-code" aria-label="Copy code">Copy</button>'


@lru_cache(maxsize=1)
def _formatter() -> HtmlFormatter[str]:
    from pygments.formatters import HtmlFormatter

    # nowrap: only the token spans; the page's CSP forbids inline styles, so classes it is.
    return HtmlFormatter(nowrap=True)


@lru_cache(maxsize=64)
def _lexer(language: str) -> Lexer | None:
    if not language:
        return None
    from pygments.lexers import get_lexer_by_name
    from pygments.util import ClassNotFound

    try:
        # stripnl=False: a block that starts with blank lines shows them, as written.
        return get_lexer_by_name(language, stripnl=False)
    except ClassNotFound:
        return None  # an unknown language is shown as plain text, labelled as written


def language_of(info: str) -> str:
    """The language word of a fence's info string (`python {.x}` -> `python`)."""
    return info.split(maxsplit=1)[0] if info.strip() else ""


def code_header(label: str) -> str:
    """The bar above a code block: its language and the Copy button (page JS copies)."""
    return (
        f'<div class="code-header"><span class="code-lang">{escape(label or "text")}</span>'
        f"{COPY_BUTTON}</div>"
    )


def code_block_html(code: str, info: str) -> str:
    """One code block as HTML (not yet sanitised): header, then highlighted `<pre><code>`."""
    language = language_of(info)
    lexer = _lexer(language.lower())
    if lexer is None:
        body = str(escape(code))
    else:
        from pygments import highlight

        body = highlight(code, lexer, _formatter())
    if lexer is not None and not code.endswith("\n"):
        body = body.removesuffix("\n")  # Pygments always ends with a newline; keep the source's
    return f'<div class="code-block">{code_header(language)}<pre><code>{body}</code></pre></div>\n'
