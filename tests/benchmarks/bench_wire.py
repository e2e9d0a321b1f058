"""What streaming costs on the wire, and how soon a reply's first token shows, in Chromium.

Run from the repository root:

    python -m tests.benchmarks.bench_wire           # 1,000 tokens, several runs
    python -m tests.benchmarks.bench_wire --small   # quick

A scripted bot streams an answer at 20 and at 200 tokens a second (a token is a word with
the space after it) to a real page over the real socket; Chromium (headless) watches the
socket and counts every byte the server sends from Enter until the finished answer is in
place (the user's message coming back, the list's update, the stream, the finished
message), divided by the answer's tokens. Answers: plain text, and Markdown as a chat answer
looks (headings, paragraphs with emphasis, inline code and links, lists, code blocks); a
Markdown answer full of tables and formulas is reported beside them (its rendered MathML
alone is ~23 bytes a token).
Targets: <= 31 bytes a token at 200 tokens/s, <= 62 at 20 tokens/s.

First token: the time from the Enter key to the animation frame after the reply's first
word is in the page (an instant bot), in a conversation with messages and in a new chat
(opened with New chat, as a person would: the message is sent once the page settled).
Target: the new chat's within 1.2x of the existing one's.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from htmxchat.answering.bots import BuiltIn, Item, Piece, ReplyEnd, Turn
from tests.benchmarks.bench_markdown import mixed
from tests.benchmarks.bench_markdown_browser import _TOKEN, _words, new_chat, plain
from tests.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.helpers import served_in_thread

RATES = (20, 200)
SETTLE_MS = 0
CONSOLE: list[str] = []
FIRST = "Firstword"  # every answer starts with it: the first token to look for


class RatedBot(BuiltIn):
    """Streams the answer the user's message names, at that answer's rate (None: at once)."""

    label = "Rated bot"
    model: str | None = None

    def __init__(self, answers: dict[str, tuple[str, float | None]]) -> None:
        self.answers = answers

    async def stream(
        self, history: Sequence[Turn], *, model: str | None = None, params: object = None
    ) -> AsyncIterator[Item]:
        text, rate = self.answers[history[-1].content]
        loop = asyncio.get_running_loop()
        start = loop.time()
        for n, token in enumerate(_TOKEN.findall(text)):
            if rate is not None:
                await asyncio.sleep(max(start + n / rate - loop.time(), 0))
            yield Piece(text=token)
        yield ReplyEnd("stop")


def chat_markdown(tokens: int) -> str:
    """A Markdown answer as a chat model writes one: sections of prose with emphasis, inline
    code and links, a list, and now and then a short code block."""
    parts: list[str] = []
    n = 0
    while sum(len(_TOKEN.findall(p)) for p in parts) < tokens:
        n += 1
        parts += [
            f"## Step {n}\n",
            f"First, **check the input** of part {n} and make sure the `value` is what the"
            f" caller expects; otherwise the *result* will be wrong in ways that are hard to"
            f" see later. The [guide](https://example.com/{n}) explains why this matters.\n",
            f"- keep the function small\n- name things for what they do\n"
            f"- test the edge cases of step {n}\n",
        ]
        if n % 3 == 0:
            parts.append(f"```python\ndef step_{n}(value):\n    return value * {n}\n```\n")
    return _words("\n".join(parts), tokens)


@dataclass
class WireRun:
    name: str
    rate: int
    tokens: int
    frames: int
    total_bytes: int

    @property
    def per_token(self) -> float:
        return self.total_bytes / self.tokens


# The time from Enter (in the message box) to the animation frame after the first word of a
# new answer is in the page.
RECORD_FIRST_TOKEN = """
(() => {
  let enter = null, answers = 0;
  window.__firstToken = null;
  document.addEventListener("keydown", (e) => {
    if (e.key !== "Enter" || e.target.id !== "composer-input") return;
    enter = performance.now();
    answers = document.querySelectorAll("article.msg-assistant").length;
    window.__firstToken = null;
  }, true);
  new MutationObserver(() => {
    if (enter === null) return;
    const all = document.querySelectorAll("article.msg-assistant");
    if (all.length <= answers) return;
    if (!all[all.length - 1].textContent.includes("FIRST")) return;
    const start = enter;
    enter = null;
    requestAnimationFrame(() => { window.__firstToken = performance.now() - start; });
  }).observe(document, { subtree: true, childList: true, characterData: true });
})();
""".replace("FIRST", FIRST)


def _send_and_wait(page, message: str, timeout_ms: float) -> None:
    done = page.locator("article.msg-assistant[data-status=complete]").count()
    page.fill("#composer-input", message)
    page.press("#composer-input", "Enter")
    page.wait_for_function(
        "n => document.querySelectorAll('article.msg-assistant[data-status=complete]').length"
        " > n && document.querySelector('#composer-actions')?.dataset.busy === 'false'",
        arg=done,
        timeout=timeout_ms,
        polling=100,
    )


def measure_wire(page, received: list[int], name: str, text: str, rate: int) -> WireRun:
    """Bytes the server sent from Enter until `name`'s answer finished, per token."""
    tokens = len(_TOKEN.findall(text))
    new_chat(page)  # every answer from the same start
    received.clear()
    _send_and_wait(page, name, tokens / rate * 1000 * 3 + 10_000)
    return WireRun(name, rate, tokens, len(received), sum(received))


def measure_first_token(page, message: str, *, new: bool) -> float:
    """Milliseconds from Enter to the first token on screen, in a new or the current chat."""
    if new:
        new_chat(page)
        page.wait_for_timeout(SETTLE_MS)
    _send_and_wait(page, message, 10_000)
    page.wait_for_function("() => window.__firstToken !== null", timeout=10_000)
    return float(page.evaluate("() => window.__firstToken"))


def run(tokens: int, data_dir: Path, repeats: int = 3, first_runs: int = 7) -> dict[str, object]:
    """Wire bytes per token for each answer and rate (the median of `repeats` runs), and the
    first-token times in an existing and in a new chat (`first_runs` each, in turn)."""
    from playwright.sync_api import sync_playwright

    markdown = chat_markdown(tokens)
    texts = {
        "plain": f"{FIRST} " + plain(markdown),
        "markdown": f"{FIRST}\n\n" + markdown,
        "tables and formulas": f"{FIRST}\n\n" + _words(mixed(tokens), tokens),
    }
    answers: dict[str, tuple[str, float | None]] = {
        f"{kind} at {rate}": (text, rate) for kind, text in texts.items() for rate in RATES
    }
    answers["instant"] = (f"{FIRST} and a few more words.", None)
    bot = RatedBot(answers)
    wire: dict[str, list[WireRun]] = {name: [] for name in answers if name != "instant"}
    first: dict[str, list[float]] = {"existing chat": [], "new chat": []}
    with served_in_thread(data_dir, bot) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1100, "height": 800})
        page.add_init_script(RECORD_FIRST_TOKEN)
        page.on("console", lambda message: CONSOLE.append(message.text))
        received: list[int] = []

        def watch(ws) -> None:
            ws.on(
                "framereceived",
                lambda payload: received.append(
                    len(payload.encode() if isinstance(payload, str) else payload)
                ),
            )

        page.on("websocket", watch)
        page.goto(url)
        page.wait_for_selector('#connection[data-state="open"]')
        measure_first_token(page, "instant", new=False)  # warm up, not counted
        for _ in range(repeats):
            for name, (text, rate) in answers.items():
                if rate is not None:
                    wire[name].append(measure_wire(page, received, name, text, int(rate)))
        new_chat(page)
        measure_first_token(page, "instant", new=False)  # an existing chat to come back to
        for _ in range(first_runs):
            first["existing chat"].append(measure_first_token(page, "instant", new=False))
            first["new chat"].append(measure_first_token(page, "instant", new=True))
            measure_first_token(page, "instant", new=False)  # the new chat has messages now
        browser.close()
    medians = {
        name: sorted(runs, key=lambda r: r.per_token)[(len(runs) - 1) // 2]
        for name, runs in wire.items()
    }
    return {"wire": medians, "first": first}


def report(results: dict[str, object]) -> dict[str, float]:
    """Print the figures; return them by name."""
    figures: dict[str, float] = {}
    wire = results["wire"]
    assert isinstance(wire, dict)
    print(f"{'answer':<28}{'tok/s':>6}{'tokens':>8}{'frames':>8}{'bytes':>9}{'bytes/token':>13}")
    for name, r in wire.items():
        print(
            f"{name:<28}{r.rate:>6}{r.tokens:>8}{r.frames:>8}{r.total_bytes:>9}{r.per_token:>13.1f}"
        )
        figures[f"bytes/token {name}"] = r.per_token
    first = results["first"]
    assert isinstance(first, dict)
    for name, times in first.items():
        figures[f"first token {name}"] = statistics.median(times)
        spread = f"{min(times):.0f}-{max(times):.0f}"
        print(f"first token on screen, {name}: median {statistics.median(times):.0f} ms ({spread})")
    ratio = figures["first token new chat"] / figures["first token existing chat"]
    figures["first token new/existing"] = ratio
    print(f"new chat / existing chat: {ratio:.2f}x")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="200 tokens, one run, quick")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        if args.small:
            results = run(200, Path(tmp), repeats=1, first_runs=3)
        else:
            results = run(1_000, Path(tmp))
        report(results)
        print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
