"""Render the README's pictures from a scripted conversation, so they never go stale.

    python -m tests.screenshots              # writes assets/screenshots/*.png

Chromium (/usr/bin/chromium) shows a conversation whose answer has Markdown and a code block,
in light and dark, wide and 360 px narrow (with the conversation drawer open, too).
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urljoin

from htmxchat.ids import new_id
from tests.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.test_browser_security import EchoBot, served_in_thread

OUT = Path(__file__).resolve().parents[1] / "assets" / "screenshots"

# The echo bot repeats the message, so the "answer" is exactly this Markdown.
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
"""

SHOTS = {
    # name: (width, height, colour scheme, drawer open)
    "light": (1100, 720, "light", False),
    "dark": (1100, 720, "dark", False),
    "narrow": (360, 740, "light", False),
    "narrow-dark-drawer": (360, 740, "dark", True),
}


@contextmanager
def conversation(data_dir: Path) -> Iterator[str]:
    """The app with the echo bot and two conversations; yields the login URL."""
    with served_in_thread(data_dir, EchoBot()) as url:
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
        for text in ("Plan a weekend in Lisbon", "Count the words in a file with Python"):
            setup.goto(urljoin(setup.url, f"/c/{new_id()}"))
            setup.wait_for_selector('#connection[data-state="open"]')
            setup.fill("#composer-input", text)
            setup.press("#composer-input", "Enter")
            setup.wait_for_selector("article.msg-assistant[data-status=complete]")
        setup.fill("#composer-input", ANSWER)
        setup.press("#composer-input", "Enter")
        setup.wait_for_function(
            "() => document.querySelectorAll('article.msg-assistant[data-status=complete]')"
            ".length === 2"
        )
        chat_url = setup.url
        setup.close()
        for name in names:
            width, height, scheme, drawer = SHOTS[name]
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
            if drawer:
                page.click("#drawer-toggle")
                page.wait_for_timeout(400)  # the slide
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
