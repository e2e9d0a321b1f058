"""The Markdown renderer: what it builds, and that hostile input comes out inert."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from markupsafe import Markup

from htmxchat.markdown.render import render_block, render_list_item, render_markdown
from htmxchat.markdown.sanitise import sanitise


def test_constructs() -> None:
    html = render_markdown(
        "**bold** ~~gone~~\n\n- one\n- two\n\n1. first\n\n- [x] done\n- [ ] todo\n\n"
        "| a | b |\n|:-|-:|\n| 1 | 2 |\n"
    )
    assert "<strong>bold</strong>" in html
    assert "<s>gone</s>" in html
    assert "<ul>\n<li>one</li>\n<li>two</li>\n</ul>" in html
    assert "<ol>\n<li>first</li>\n</ol>" in html
    assert 'class="task-list-item-checkbox" checked="checked" disabled="disabled"' in html
    assert '<th class="align-left">a</th>' in html and '<td class="align-right">2</td>' in html
    assert "contains-task-list" not in html and "style=" not in html


def test_code_block_is_highlighted_with_classes_label_and_copy_button() -> None:
    html = render_markdown("```python\ndef f():\n    return 1\n```\n")
    assert '<span class="k">def</span>' in html
    assert '<span class="code-lang">python</span>' in html
    assert '<button type="button" class="copy-code" aria-label="Copy code">Copy</button>' in html
    assert '<div class="code-header">' in html and "style" not in html


def test_math_becomes_mathml_and_a_broken_formula_code() -> None:
    html = render_markdown("Inline $a^2$ and \\(b\\).\n\n$$\n\\frac{1}{2}\n$$\n\n\\[ c \\]\n")
    assert html.count('<math xmlns="http://www.w3.org/1998/Math/MathML" display="inline">') == 2
    assert html.count('display="block"') == 2
    assert "<mfrac>" in html
    broken = render_markdown("$\\left( x$ and\n\n$$\nx^\n$$\n")
    assert '<code class="math-error">\\left( x</code>' in broken and "<math" not in broken
    assert '<pre class="math-error" tabindex="0"><code>x^</code></pre>' in broken


def test_links_images_and_linkify() -> None:
    html = render_markdown("[a](https://e.com) ![the alt](https://e.com/x.png) www.e.org")
    assert '<a href="https://e.com" target="_blank" rel="noopener noreferrer">a</a>' in html
    assert (
        '<a href="https://e.com/x.png" class="image-link" target="_blank" '
        'rel="noopener noreferrer">the alt</a>'
    ) in html
    assert '<a href="http://www.e.org"' in html
    assert "<img" not in html
    assert "<a" not in render_markdown("[rel](/relative) [ftp](ftp://e.com)")


HOSTILE = [
    "[x](javascript:alert(1))",
    "[x](JaVaScRiPt:alert(1))",
    "[x](javascript&#58;alert(1))",
    "[x](&#106;avascript:alert(1))",
    "[x](java&#x09;script:alert(1))",
    "[x](java\tscript:alert(1))",
    "[x](%20javascript:alert(1))",
    "[x]( javascript:alert(1))",
    "[x](<javascript:alert(1)>)",
    "<javascript:alert(1)>",
    "[x](vbscript:msgbox(1))",
    "[x](data:text/html;base64,PHNjcmlwdD4=)",
    "[x](DATA:text/html,<script>alert(1)</script>)",
    "![x](javascript:alert(1))",
    "![x](data:image/svg+xml,<svg onload=alert(1)>)",
    "[x][r]\n\n[r]: javascript:alert(1)",
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "<svg><script>alert(1)</script></svg>",
    '<iframe src="https://evil.example"></iframe>',
    "<style>body{display:none}</style>",
    "<!-- comment --> <div hx-get=/x hx-trigger=load>x</div>",
    "<button ws-send hx-vals='{\"a\":1}'>x</button>",
    '<div id="m-1-body" hx-swap-oob="innerHTML">owned</div>',
    '<a href="https://e.com" onclick="alert(1)" style="color:red" data-hx-get="/x">a</a>',
    "<math><mtext><script>alert(1)</script></mtext></math>",
    "$\\text{<script>alert(1)</script>}$",
    "$$\n\\text{<img src=x onerror=alert(1)>}\n$$",
    "$\\href{javascript:alert(1)}{x}$",
    "$\\text{<a href='javascript:alert(1)' hx-get='/x'>a</a>}$",
    "![remote](https://tracker.example/pixel.gif)",
    "```html\n<script>alert(1)</script>\n```",
    "`<script>`",
    "| <script> | b |\n|---|---|\n| <img src=x onerror=y> | c |",
]
ALLOWED_SCHEMES = ("https:", "http:", "mailto:")
FORBIDDEN_TAGS = {"script", "img", "svg", "iframe", "style", "object", "embed", "form", "link"}


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.comments: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))

    def handle_comment(self, data: str) -> None:
        self.comments.append(data)


@pytest.mark.parametrize("source", HOSTILE)
def test_hostile_input_is_inert(source: str) -> None:
    html = render_markdown(source)
    parser = _Collect()
    parser.feed(html)
    assert not parser.comments
    for tag, attrs in parser.tags:
        assert tag not in FORBIDDEN_TAGS, html
        for name, value in attrs:
            assert name not in ("id", "style", "src"), html
            assert not name.startswith(("on", "hx-", "ws-", "data-")), html
            if name == "href":
                assert (value or "").lower().startswith(ALLOWED_SCHEMES), html
                assert "javascript" not in (value or "").lower(), html
    assert sanitise(html) == html  # sanitising the render again changes nothing


def test_images_become_links_with_their_alt_text() -> None:
    html = render_markdown("![A cat](https://e.com/cat.png)")
    assert "<img" not in html and ">A cat</a>" in html
    assert "<a" not in render_markdown("![A cat](javascript:alert(1))")


def test_sanitising_a_whole_render_again_is_a_no_op() -> None:
    text = "\n\n".join(HOSTILE) + "\n\n| a |\n|---|\n| $x$ |\n\n- [x] t\n\n```js\nlet a = 1\n```\n"
    html = render_markdown(text)
    assert sanitise(html) == html
    assert re.search(r"<math[^>]*>", html)


def test_pieces_are_cached_and_match_the_full_render() -> None:
    assert render_block("# t\n") is render_block("# t\n")
    items = render_list_item("- a\n", False) + render_list_item("- b\n", False)
    assert render_markdown("- a\n- b\n") == Markup("<ul>\n") + items + Markup("</ul>\n")


def test_function_names_get_tex_spacing_and_limits_go_under_in_display() -> None:
    inline = render_markdown("$n \\log n$ and $\\sin(x)$")
    # a thin space each side of "log" between ordinary symbols, none before a bracket
    assert '<mi>n</mi><mspace width="0.1667em"></mspace><mi>log</mi>' in inline
    assert '<mi>log</mi><mspace width="0.1667em"></mspace><mi>n</mi>' in inline
    assert "<mi>sin</mi><mo" in inline
    display = render_markdown("$$\n\\lim_{x \\to 0} f(x) = a \\pm b\n$$")
    assert '<munder><mo lspace="0" rspace="0" movablelimits="true">lim</mo>' in display
    assert "<mo>±</mo>" in display
