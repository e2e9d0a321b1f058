"""Markdown replies in a real browser: rendered while they stream, Copy buttons, MathML, and
hostile Markdown kept inert under the page's CSP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.helpers import TIMEOUT, WATCH_CSP, EchoBot, assert_inert, connect, served_in_thread

pytestmark = pytest.mark.browser

# The echo bot answers with the user's text, so the test writes the "model's" Markdown.
ANSWER = """Some **bold words** to start.

- first item
- second item
- third item

```python
def greet(name):
    return f"hello {name}"
```

The area is $\\pi r^2$ here.

""" + "\n\n".join(f"Filler paragraph {n} so the reply keeps streaming." for n in range(12))

HOSTILE = [
    "[click me](javascript:alert(1))",
    "[click me](JaVaScRiPt:alert(1))",
    "[data](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "[vb](vbscript:msgbox(1))",
    "<javascript:alert(1)>",
    "![tracker](http://evil.example/pixel.png)",
    '<img src="http://evil.example/x.png" onerror="window.__pwned=1">',
    "<script>window.__pwned = 1</script>",
    '<div hx-get="/c/x" hx-trigger="load">htmx</div>',
    '<a href="#" onclick="window.__pwned=1">a</a>',
    "<style>body{background:url(http://evil.example/css.png)}</style>",
    "$$\\text{<script>window.__pwned=1</script>}$$",
    "[ref][r]\n\n[r]: javascript:alert(1)",
]


@pytest.fixture
def slow_echo(data_dir: Path) -> Iterator[str]:
    """The echo bot, five characters every 20 ms: a reply takes a few seconds."""
    with served_in_thread(data_dir, EchoBot(delay=0.02)) as url:
        yield url


def send(page, text: str) -> None:
    page.fill("#composer-input", text)
    page.press("#composer-input", "Enter")


STREAMING = "article.msg-assistant[data-status=streaming]"


def test_blocks_render_while_the_reply_streams(page, slow_echo: str) -> None:
    connect(page, slow_echo)
    send(page, ANSWER)
    # each of these shows inside the reply while it is still being written
    for selector in (
        f"{STREAMING} .msg-body strong",
        f"{STREAMING} .msg-body ul > li:nth-child(2)",
        f"{STREAMING} .msg-body .code-block pre span[class]",  # highlighted by Pygments
        f"{STREAMING} .msg-body math",
    ):
        page.wait_for_selector(selector, timeout=TIMEOUT)
    assert page.text_content(f"{STREAMING} .msg-body strong") == "bold words"
    assert page.text_content(f"{STREAMING} .code-lang") == "python"
    page.wait_for_selector("article.msg-assistant[data-status=complete]", timeout=TIMEOUT)
    body = "article.msg-assistant .msg-body"
    assert page.locator(f"{body} li").count() == 3
    assert page.locator(f"{body} math").count() == 1
    # a reload renders the same HTML that streaming ended with
    streamed = page.inner_html(body)
    page.reload()
    page.wait_for_selector('#connection[data-state="open"]', timeout=TIMEOUT)
    assert page.inner_html(body) == streamed


def test_copy_buttons_copy_the_code_text_and_the_answer_markdown(page, echo: str) -> None:
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    connect(page, echo)
    send(page, ANSWER)
    page.wait_for_selector("article.msg-assistant[data-status=complete]", timeout=TIMEOUT)
    page.click("article.msg-assistant .copy-code")
    page.wait_for_function(
        "() => document.querySelector('article.msg-assistant .copy-code').textContent === 'Copied'"
    )
    code = page.evaluate("() => navigator.clipboard.readText()")
    assert code == 'def greet(name):\n    return f"hello {name}"\n'
    page.click("article.msg-assistant .copy-answer")
    page.wait_for_function(
        "() => document.querySelector('article.msg-assistant .copy-answer').textContent "
        "=== 'Copied'"
    )
    assert page.evaluate("() => navigator.clipboard.readText()") == ANSWER


def test_hostile_markdown_stays_inert_and_loads_nothing(page, echo: str) -> None:
    page.add_init_script(WATCH_CSP)
    connect(page, echo)
    page.evaluate("window.__pwned = undefined")
    own = urlsplit(echo).netloc
    for n, payload in enumerate(HOSTILE, start=1):
        send(page, payload)
        page.wait_for_function(
            "n => document.querySelectorAll("
            "'article.msg-assistant[data-status=\"complete\"]').length >= n",
            arg=n,
            timeout=TIMEOUT,
        )
    for reloaded in (False, True):
        if reloaded:  # the same Markdown rendered for the page instead of streamed
            page.reload()
            page.wait_for_selector('#connection[data-state="open"]', timeout=TIMEOUT)
        page.wait_for_timeout(300)  # give any load trigger time to fire
        assert_inert(page)
        links = page.eval_on_selector_all(
            "#messages .msg-assistant a[href]", "els => els.map(a => a.getAttribute('href'))"
        )
        assert all(link.startswith(("http://", "https://", "mailto:")) for link in links), links
        assert page.locator("#messages .msg-assistant [style]").count() == 0
    hosts = {urlsplit(url).netloc for url in page.requested_urls}
    assert hosts == {own}, hosts


# The horizontal offset of a formula's content from the middle of its block, and whether its
# start can be scrolled to.
FORMULA_PLACE = """
block => {
  const box = block.getBoundingClientRect();
  const tokens = [...block.querySelectorAll("mi, mn, mo")].map((t) => t.getBoundingClientRect());
  const left = Math.min(...tokens.map((t) => t.left));
  const right = Math.max(...tokens.map((t) => t.right));
  return [Math.abs((left + right) / 2 - (box.left + box.width / 2)), left >= box.left - 0.5];
}
"""


def test_a_display_formula_is_centred_and_a_wide_one_scrolls_from_its_start(
    page, echo: str
) -> None:
    connect(page, echo)
    wide = " + ".join(f"x_{{{n}}}" for n in range(60))
    send(page, f"Short:\n\n$$\na = b + \\frac{{1}}{{2}}\n$$\n\nWide:\n\n$$\n{wide}\n$$\n")
    page.wait_for_selector("article.msg-assistant[data-status=complete]", timeout=TIMEOUT)
    short, long = page.locator("article.msg-assistant .math.block").all()
    off_centre, reachable = short.evaluate(FORMULA_PLACE)
    assert off_centre < 2 and reachable
    assert long.evaluate("b => b.scrollWidth > b.clientWidth")  # it scrolls inside its block
    assert long.evaluate(FORMULA_PLACE)[1]  # from its first term, none cut off to the left
