"""Render the README's pictures from a scripted conversation, so they never go stale.

    python -m tests.screenshots              # writes assets/screenshots/*.png

Chromium (/usr/bin/chromium) shows a conversation whose answer has Markdown and a code block,
in light and dark, wide and 360 px narrow (with the conversation drawer open, too).
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urljoin

from htmxchat.answering.bots import BuiltIn, Piece, Turn
from htmxchat.answering.bots.detect import Candidate
from htmxchat.ids import new_id
from tests.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.helpers import served_in_thread

OUT = Path(__file__).resolve().parents[1] / "assets" / "screenshots"

QUESTION = "How do I count the words in a file with Python?"
ANSWER = """Here is a small **Python** function that counts the words in a file, with a \
`Counter`:

```python
from collections import Counter

def word_counts(path):
    with open(path, encoding="utf-8") as f:
        return Counter(f.read().split())
```

- `Counter` keeps a count per word.
- `most_common(5)` gives the five most frequent.

| call | returns |
| --- | --- |
| `word_counts("a.txt")` | a `Counter` |
| `sorted(counts)` | Returns the words, sorted |

Sorting $n$ words costs $O(n \\log n)$, and the mean count is $\\frac{1}{n}\\sum_i c_i$:

$$\\bar{c} = \\frac{1}{n} \\sum_{i=1}^{n} c_i, \\qquad
\\lim_{n \\to \\infty} \\frac{\\log n}{n} = 0$$
"""

SHOTS = {
    # name: (width, height, colour scheme, what is done before the picture)
    "light": (1100, 720, "light", ""),
    "dark": (1100, 720, "dark", ""),
    "narrow": (360, 740, "light", ""),
    "narrow-dark-drawer": (360, 740, "dark", "drawer"),
    # The whole long answer: Markdown, code, a table and formulas.
    "answer": (1100, 1180, "light", ""),
    "answer-dark-narrow": (360, 1500, "dark", ""),
    # A phone with the top bar's menu open.
    "narrow-menu": (360, 740, "light", "menu"),
    "menu-settings-dark": (1100, 720, "dark", "settings"),
    # Deleting a chat asks in the page's own dialog.
    "delete-dialog": (1100, 720, "light", "delete"),
    "narrow-dark-delete-dialog": (360, 740, "dark", "delete"),
    # A new user's Servers page: what answers first, the rest as quiet lines.
    "servers-first-run": (1100, 860, "light", "servers"),
}
# Where the usual local servers would be, at ports nothing listens on: a computer without them.
NOT_INSTALLED = [
    Candidate("http://127.0.0.1:9/v1", "Ollama"),
    Candidate("http://127.0.0.1:7/v1", "llama.cpp"),
    Candidate("http://127.0.0.1:13/v1", "LM Studio"),
]


class CannedBot(BuiltIn):
    """Answers the Markdown above to the question, and a line to anything else."""

    label = "Local model server"
    model: str | None = "llama3.1:8b"

    async def close(self) -> None:
        """Nothing to release."""

    async def stream(
        self, history: Sequence[Turn], *, model: str | None = None, params: object = None
    ) -> AsyncIterator[Piece]:
        text = ANSWER if history[-1].content == QUESTION else "Happy to help with that."
        for start in range(0, len(text), 40):
            yield Piece(text=text[start : start + 40])


@contextmanager
def conversation(data_dir: Path) -> Iterator[str]:
    """The app with the canned bot; yields the login URL."""
    with served_in_thread(data_dir, CannedBot(), NOT_INSTALLED) as url:  # type: ignore[arg-type]
        yield url


def render(url: str, out: Path, names: list[str]) -> list[Path]:
    """One PNG per name in SHOTS; returns their paths."""
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    written = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        # The conversation: two chats, the second with a Markdown answer.
        setup = browser.new_page()
        setup.goto(url)  # logs in
        setup.wait_for_selector('#connection[data-state="open"]')
        for text in ("Plan a weekend in Lisbon", QUESTION):
            setup.goto(urljoin(setup.url, f"/c/{new_id()}"))
            setup.wait_for_selector('#connection[data-state="open"]')
            setup.fill("#composer-input", text)
            setup.press("#composer-input", "Enter")
            setup.wait_for_selector("article.msg-assistant[data-status=complete]")
        chat_url = setup.url
        setup.close()
        for name in names:
            width, height, scheme, action = SHOTS[name]
            context = browser.new_context(
                viewport={"width": width, "height": height}, color_scheme=scheme
            )
            page = context.new_page()
            page.goto(url)  # logs this context in
            page.wait_for_selector("#app")
            page.goto(chat_url)
            page.wait_for_selector('#connection[data-state="open"]', state="attached")
            page.wait_for_selector("article.msg-assistant .code-block")
            page.evaluate("document.activeElement && document.activeElement.blur()")
            # The math font has loaded (it comes with the first formula).
            page.evaluate("document.fonts.load('16px \"STIX Two Math\"')")
            if action == "drawer":
                page.click("#drawer-toggle")
                page.wait_for_timeout(400)  # the slide
            elif action in ("menu", "settings"):
                page.click(".menu-button")
            if action == "settings":
                page.click(".chat-settings-button")
                page.wait_for_selector(".chat-settings-form")
            elif action == "delete":
                if width <= 720:  # the list is in the drawer
                    page.click("#drawer-toggle")
                    page.wait_for_timeout(400)  # the slide
                page.hover("#conversations .conv >> nth=0")
                page.click("#conversations .conv >> nth=0 >> .icon-danger")
                page.wait_for_selector("#confirm[open]")
            elif action == "servers":
                page.goto(urljoin(page.url, "/settings"))
                page.wait_for_selector(".absent-server")
            path = out / f"{name}.png"
            page.screenshot(path=str(path))
            written.append(path)
            context.close()
        browser.close()
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help="folder for the PNGs")
    parser.add_argument("names", nargs="*", default=list(SHOTS), help="which pictures")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, conversation(Path(tmp)) as url:
        for path in render(url, args.out, args.names):
            print(path)


if __name__ == "__main__":
    main()
