"""Reading in Chromium: main-thread time per streamed frame, following the reply and scrolled
up, and per keystroke after a 1 MB paste.

    python -m tests.benchmarks.bench_reading            # 2,000-token answers, 1 MB paste
    python -m tests.benchmarks.bench_reading --small    # quick

Main-thread time is CDP `Performance.getMetrics`' TaskDuration, with LayoutCount beside it.
"Following": the reader is at the bottom and the view follows the reply. "Scrolled up": the
reader scrolled up (with the wheel, as a person does) before the reply started. The first two
answers are one long paragraph of plain words (the whole answer is the open tail); the third
is the same length of Markdown (headings, lists, tables, code, math), as models answer.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.benchmarks.bench_markdown import mixed
from tests.benchmarks.bench_markdown_browser import (
    RECORD_LAST_DELTA,
    TOKENS_PER_SECOND,
    PacedBot,
    _metrics,
    _words,
    plain,
)
from tests.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.helpers import served_in_thread


@dataclass
class Result:
    name: str
    count: int  # frames or keystrokes
    ms_each: float  # main-thread ms per frame or keystroke
    layouts_each: float


def stream(page, cdp, name: str, tokens: int, *, scrolled_up: bool, label: str = "") -> Result:
    """Send `name` (the bot streams its answer); main-thread time per frame applied."""
    done = page.locator("article.msg-assistant[data-status=complete]").count()
    before = _metrics(cdp)
    frames_before = int(page.evaluate("() => window.__frames || 0"))
    # Sent from the script, not the keyboard: pressing Enter in the box is a send, which
    # goes back to following the reply.
    page.evaluate(
        "text => { document.getElementById('composer-input').value = text;"
        " document.getElementById('composer').requestSubmit(); }",
        name,
    )
    if scrolled_up:  # sending jumps to the latest; the reader scrolls back up at once
        page.hover("#transcript")
        page.mouse.wheel(0, -600)
    page.wait_for_function(
        "n => document.querySelectorAll('article.msg-assistant[data-status=complete]').length > n",
        arg=done,
        timeout=tokens / TOKENS_PER_SECOND * 1000 * 3 + 10_000,
        polling=250,
    )
    after = _metrics(cdp)
    frames = max(int(page.evaluate("() => window.__frames || 0")) - frames_before, 1)
    return Result(
        f"{'scrolled up' if scrolled_up else 'following'}, {tokens} tokens{label}",
        frames,
        (after["TaskDuration"] - before["TaskDuration"]) * 1000 / frames,
        (after["LayoutCount"] - before["LayoutCount"]) / frames,
    )


def paste(page, cdp, size: int, keys: int) -> Result:
    """Put `size` characters in the message box as a paste does, then type `keys` keys."""
    page.focus("#composer-input")
    page.evaluate(
        "n => { const box = document.getElementById('composer-input');"
        " box.value = 'pasted words '.repeat(Math.ceil(n / 13)).slice(0, n);"
        " box.dispatchEvent(new InputEvent('input',"
        " {bubbles: true, inputType: 'insertFromPaste'})); }",
        size,
    )
    page.keyboard.press("End")
    page.wait_for_timeout(300)
    before = _metrics(cdp)
    for _ in range(keys):
        page.keyboard.type("x")
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => setTimeout(r)))")
    after = _metrics(cdp)
    page.fill("#composer-input", "")
    return Result(
        f"keystroke after a {size / 1_000_000:g} MB paste",
        keys,
        (after["TaskDuration"] - before["TaskDuration"]) * 1000 / keys,
        (after["LayoutCount"] - before["LayoutCount"]) / keys,
    )


def run(tokens: int, paste_size: int, keys: int, data_dir: Path) -> list[Result]:
    """A long first answer (so there is something to scroll), then the measurements."""
    from playwright.sync_api import sync_playwright

    answer = plain(_words(mixed(tokens), tokens))
    answers = {
        "history": _words(mixed(600), 600),
        "following": answer,
        "scrolled": answer,
        "markdown": _words(mixed(tokens), tokens),
    }
    bot = PacedBot(answers, rate=2000)  # the history quickly, then the measured pace
    with served_in_thread(data_dir, bot) as url:  # type: ignore[arg-type]
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1100, "height": 800})
            page.add_init_script(RECORD_LAST_DELTA)
            cdp = page.context.new_cdp_session(page)
            cdp.send("Performance.enable")
            page.goto(url)
            page.wait_for_selector('#connection[data-state="open"]')
            page.fill("#composer-input", "history")
            page.press("#composer-input", "Enter")
            page.wait_for_selector("article.msg-assistant[data-status=complete]")
            bot.rate = TOKENS_PER_SECOND
            results = [
                stream(page, cdp, "following", tokens, scrolled_up=False),
                stream(page, cdp, "scrolled", tokens, scrolled_up=True),
                stream(page, cdp, "markdown", tokens, scrolled_up=False, label=", Markdown"),
                paste(page, cdp, paste_size, keys),
            ]
            browser.close()
    return results


def report(results: Sequence[Result]) -> None:
    print(f"{'':<34}{'count':>7}{'main-thread ms':>16}{'layouts':>9}")
    for r in results:
        print(f"{r.name:<34}{r.count:>7}{r.ms_each:>16.2f}{r.layouts_each:>9.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="200 tokens, 100 KB, quick")
    args = parser.parse_args()
    tokens, size, keys = (200, 100_000, 5) if args.small else (2_000, 1_000_000, 30)
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        report(run(tokens, size, keys, Path(tmp)))
        print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
