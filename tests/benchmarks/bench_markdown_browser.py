"""Streaming Markdown in Chromium: main-thread time per token, Markdown against plain text.

Run from the repository root:

    python -m tests.benchmarks.bench_markdown_browser           # 1,000 and 10,000 tokens
    python -m tests.benchmarks.bench_markdown_browser --small   # quick

A bot streams an answer at 200 tokens a second (one token ~ one word) to a real page; the
page's main-thread time (CDP `Performance.getMetrics`, TaskDuration) is divided by the number
of tokens, and by the number of socket frames applied (with the main thread's CPU time,
ThreadTime, and the layouts per frame beside it). "plain" is the same words with no Markdown
structure (one growing paragraph, the cheapest path: text appended to the tail). Every answer
is measured several times (`REPEATS`, `LONG_REPEATS` above 1,000 tokens), Markdown and plain
taken in turn, and each row is the median run: this machine's noise (~15% between runs)
would otherwise decide whether a ratio near its target passes. Targets:
Markdown <= 1.5x plain per token, and the 10,000-token answer within 1.3x of the 1,000-token
one per token. The final fragment's size and the time from the last token to the finished
message are reported too.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from htmxchat.answering.bots import BuiltIn, Item, Piece, ReplyEnd, Turn
from tests.benchmarks.bench_markdown import mixed
from tests.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.helpers import served_in_thread

TOKENS_PER_SECOND = 200
_TOKEN = re.compile(r"\S+\s*|\s+")


class PacedBot(BuiltIn):
    """Streams the answer named by the user's message, token by token, at a steady rate."""

    label = "Paced bot"
    model: str | None = None

    def __init__(self, answers: dict[str, str], rate: float = TOKENS_PER_SECOND) -> None:
        self.answers = answers
        self.rate = rate

    async def close(self) -> None:
        """Nothing to release."""

    async def stream(
        self, history: Sequence[Turn], *, model: str | None = None, params: object = None
    ) -> AsyncIterator[Item]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        for n, token in enumerate(_TOKEN.findall(self.answers[history[-1].content])):
            delay = start + n / self.rate - loop.time()
            await asyncio.sleep(max(delay, 0))
            yield Piece(text=token)
        yield ReplyEnd("stop")


def plain(text: str) -> str:
    """The same words with no Markdown structure: one paragraph of plain words."""
    return " ".join(re.sub(r"[#*`|$\\_\[\]()>-]", " ", text).split())


@dataclass
class Run:
    name: str
    tokens: int
    ms_per_token: float
    final_bytes: int
    final_ms: float
    frames: int = 0
    ms_per_frame: float = 0.0
    layouts_per_frame: float = 0.0
    layout_ms_per_frame: float = 0.0
    cpu_per_frame: float = 0.0  # the main thread's CPU time (ThreadTime): steadier when busy
    runs: int = 1  # how many runs of this answer the row is the median of


def measure(page, cdp, name: str, text: str) -> Run:
    """Send `name`, wait for the finished reply; main-thread time per token."""
    tokens = len(_TOKEN.findall(text))
    before = _metrics(cdp)
    frames_before = page.evaluate("() => window.__frames || 0")
    done = page.locator("article.msg-assistant[data-status=complete]").count()
    page.fill("#composer-input", name)
    page.press("#composer-input", "Enter")
    page.wait_for_function(
        "n => document.querySelectorAll('article.msg-assistant[data-status=complete]').length > n",
        arg=done,
        timeout=tokens / TOKENS_PER_SECOND * 1000 * 3 + 10_000,
        polling=250,  # not every animation frame: the poll's own cost would be measured
    )
    after = _metrics(cdp)
    total_ms = (after["TaskDuration"] - before["TaskDuration"]) * 1000
    frames = max(int(page.evaluate("() => window.__frames || 0")) - int(frames_before), 1)
    final = page.evaluate(
        "() => { const a = [...document.querySelectorAll('article.msg-assistant')].pop();"
        " return [a.outerHTML.length, performance.now() - (window.__lastDelta || 0)]; }"
    )
    return Run(
        name,
        tokens,
        total_ms / tokens,
        int(final[0]),
        float(final[1]),
        frames,
        total_ms / frames,
        (after["LayoutCount"] - before["LayoutCount"]) / frames,
        (after["LayoutDuration"] - before["LayoutDuration"]) * 1000 / frames,
        (after["ThreadTime"] - before["ThreadTime"]) * 1000 / frames,
    )


def _metrics(cdp) -> dict[str, float]:
    """Chromium's counters for the page: TaskDuration (s), LayoutCount, LayoutDuration (s)..."""
    return {m["name"]: float(m["value"]) for m in cdp.send("Performance.getMetrics")["metrics"]}


# Counts the socket frames applied, and notes when the last streamed fragment (before the
# finished message) was applied.
RECORD_LAST_DELTA = """
document.addEventListener("htmx:wsAfterMessage", (e) => {
  window.__frames = (window.__frames || 0) + 1;
  if (typeof e.detail.message === "string" && /^<!--[0-9-]+--><b id=t /.test(e.detail.message)) {
    window.__lastDelta = performance.now();
  }
});
"""


WARM_UP = "warm up"  # the message that asks for the unmeasured first answer
REPEATS = 5  # measurements of each answer of up to 1,000 tokens (the median is reported)
LONG_REPEATS = 3  # and of each longer answer (a 10,000-token one streams for ~45 s)


def run(
    sizes: Sequence[int], data_dir: Path, repeats: int = REPEATS, long_repeats: int = LONG_REPEATS
) -> list[Run]:
    """Stream a Markdown and a plain answer of each size to Chromium; the median Run of each
    (measured `repeats` times, `long_repeats` above 1,000 tokens, the two kinds in turn)."""
    from playwright.sync_api import sync_playwright

    answers: dict[str, str] = {}
    for size in sizes:
        answers[f"markdown {size}"] = _words(mixed(size), size)
        answers[f"plain {size}"] = plain(answers[f"markdown {size}"])
    warm_up = _words(mixed(200), 200)
    bot = PacedBot({**answers, WARM_UP: warm_up})
    runs: dict[str, list[Run]] = {name: [] for name in answers}
    with served_in_thread(data_dir, bot) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1100, "height": 800})
        page.add_init_script(RECORD_LAST_DELTA)
        cdp = page.context.new_cdp_session(page)
        cdp.send("Performance.enable")
        page.goto(url)
        page.wait_for_selector('#connection[data-state="open"]')
        # Not measured: the first answer on a fresh page also pays for compiling the scripts
        # and warming the browser's caches, which would be billed to whichever row came first.
        measure(page, cdp, WARM_UP, warm_up)
        for size in sizes:
            for _ in range(repeats if size <= 1_000 else long_repeats):
                for kind in ("markdown", "plain"):
                    # Each answer in a new chat, so every row starts from the same page: one
                    # answer above another would make the rows cost differently for a reason
                    # of its own.
                    new_chat(page)
                    name = f"{kind} {size}"
                    runs[name].append(measure(page, cdp, name, answers[name]))
        browser.close()
    return [median_run(measured) for measured in runs.values()]


def median_run(runs: list[Run]) -> Run:
    """The run with the median time per token, with how many runs it was chosen from."""
    chosen = sorted(runs, key=lambda r: r.ms_per_token)[(len(runs) - 1) // 2]
    return replace(chosen, runs=len(runs))


def new_chat(page) -> None:
    """Open a new, empty conversation (the sidebar's New chat) and wait until it is live."""
    page.click("#new-chat")
    page.wait_for_function(
        "() => document.getElementById('pane')?.hasAttribute('data-empty')"
        " && !document.querySelector('#messages > .msg')"
        " && document.querySelector('#connection[data-state=open]')",
        polling=100,
    )


def _words(text: str, tokens: int) -> str:
    """`text` cut to about `tokens` tokens, at a line end."""
    cut = "".join(_TOKEN.findall(text)[:tokens])
    return cut[: cut.rfind("\n") + 1] if "\n" in cut else cut


def report(results: list[Run]) -> dict[str, float]:
    """Print the table; return the ratios the targets are about."""
    print(
        f"{'answer':<16}{'tokens':>8}{'ms/token':>10}{'frames':>8}{'ms/frame':>10}"
        f"{'CPU ms/frame':>14}{'layouts/frame':>15}{'layout ms/frame':>17}"
        f"{'final KB':>10}{'final ms':>10}{'runs':>6}"
    )
    for r in results:
        print(
            f"{r.name:<16}{r.tokens:>8}{r.ms_per_token:>10.3f}{r.frames:>8}{r.ms_per_frame:>10.2f}"
            f"{r.cpu_per_frame:>14.2f}{r.layouts_per_frame:>15.2f}{r.layout_ms_per_frame:>17.2f}"
            f"{r.final_bytes / 1024:>10.1f}{r.final_ms:>10.0f}{r.runs:>6}"
        )
    by_name = {r.name: r for r in results}
    sizes = sorted({int(r.name.split()[1]) for r in results})
    ratios = {
        f"markdown/plain {size}": by_name[f"markdown {size}"].ms_per_token
        / by_name[f"plain {size}"].ms_per_token
        for size in sizes
    }
    if len(sizes) > 1:
        small, large = by_name[f"markdown {sizes[0]}"], by_name[f"markdown {sizes[-1]}"]
        ratios[f"markdown {sizes[-1]}/{sizes[0]}"] = large.ms_per_token / small.ms_per_token
    for name, ratio in ratios.items():
        print(f"{name}: {ratio:.2f}x")
    return ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="200 and 400 tokens, quick")
    args = parser.parse_args()
    sizes = (200, 400) if args.small else (1_000, 10_000)
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        report(run(sizes, Path(tmp)))
        print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
