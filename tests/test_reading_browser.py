"""Reading comfort in a real browser: following the reply, never moving what the reader reads,
"Jump to latest", screen-reader state (aria-busy, one announcement per answer), landmarks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path

import pytest

from htmxchat.bots import Piece, Turn
from tests.test_browser_security import served_in_thread

pytestmark = pytest.mark.browser
TIMEOUT = 15_000

LONG = "\n\n".join(
    f"Paragraph {n} of a long answer, long enough to wrap once or twice." for n in range(40)
)


class PacedEcho:
    """Repeats the user's text: at once, or (text starting "slow") a few characters at a time."""

    label = "Paced echo"
    model: str | None = "echo-1"

    async def close(self) -> None:
        """Nothing to release."""

    async def stream(
        self, history: Sequence[Turn], *, model: str | None = None
    ) -> AsyncIterator[Piece]:
        text = history[-1].content
        slow = text.startswith("slow")
        step = 12 if slow else 4000
        for start in range(0, len(text), step):
            await asyncio.sleep(0.03 if slow else 0)
            yield Piece(text=text[start : start + step])


@pytest.fixture
def url(data_dir: Path) -> Iterator[str]:
    with served_in_thread(data_dir, PacedEcho()) as login:  # type: ignore[arg-type]
        yield login


def connect(page, url: str) -> None:
    page.goto(url)
    page.wait_for_selector('#connection[data-state="open"]', timeout=TIMEOUT)


def send(page, text: str) -> None:
    page.fill("#composer-input", text)
    page.press("#composer-input", "Enter")


def wait_done(page, count: int) -> None:
    page.wait_for_function(
        "n => document.querySelectorAll('article.msg-assistant[data-status=complete]').length"
        " >= n && document.querySelector('#composer-actions').dataset.busy === 'false'",
        arg=count,
        timeout=TIMEOUT,
    )


def gap_below(page) -> float:
    """How far the transcript is from its bottom, in pixels."""
    return float(
        page.eval_on_selector("#transcript", "t => t.scrollHeight - t.scrollTop - t.clientHeight")
    )


def streaming(page) -> bool:
    return page.locator("article.msg-assistant[data-status=streaming]").count() > 0


def test_the_view_follows_the_reply_while_at_the_bottom(page, url: str) -> None:
    connect(page, url)
    send(page, LONG)
    wait_done(page, 1)
    send(page, "slow " + LONG[:1500])
    page.wait_for_selector("article.msg-assistant[data-status=streaming]", timeout=TIMEOUT)
    samples = []
    while streaming(page):
        samples.append(gap_below(page))
        page.wait_for_timeout(100)
    assert len(samples) > 5
    # every sample sits at the bottom (a frame may have landed since the last render)
    assert max(samples) < 60, samples
    wait_done(page, 2)
    assert gap_below(page) < 2
    assert page.locator("#jump-latest").is_hidden()


def test_scrolled_up_nothing_moves_and_jump_to_latest_goes_back(page, url: str) -> None:
    connect(page, url)
    send(page, LONG)
    wait_done(page, 1)
    send(page, "slow " + LONG[:1200])
    page.wait_for_selector("article.msg-assistant[data-status=streaming]", timeout=TIMEOUT)
    page.hover("#transcript")
    page.mouse.wheel(0, -900)  # the reader scrolls up, as a person does
    page.wait_for_function("() => !document.querySelector('#jump-latest').hidden", timeout=TIMEOUT)
    # what the reader sees: the transcript's offset and a paragraph's place on screen
    probe = "#messages > article:nth-child(2) .msg-body p:nth-of-type(30)"
    before = page.eval_on_selector("#transcript", "t => t.scrollTop")
    top = page.eval_on_selector(probe, "p => p.getBoundingClientRect().top")
    seen = []
    while streaming(page):
        seen.append(page.eval_on_selector(probe, "p => p.getBoundingClientRect().top"))
        page.wait_for_timeout(80)
    wait_done(page, 2)  # the finished render replaced the streamed message too
    seen.append(page.eval_on_selector(probe, "p => p.getBoundingClientRect().top"))
    assert len(seen) > 5
    assert set(seen) == {top}, seen
    assert page.eval_on_selector("#transcript", "t => t.scrollTop") == before
    assert gap_below(page) > 300

    page.click("#jump-latest")
    page.wait_for_function("() => document.querySelector('#jump-latest').hidden", timeout=TIMEOUT)
    assert gap_below(page) < 2
    # following again: the next reply is followed to its end
    send(page, "slow " + LONG[:800])
    page.wait_for_selector("article.msg-assistant[data-status=streaming]", timeout=TIMEOUT)
    wait_done(page, 3)
    page.wait_for_timeout(100)
    assert gap_below(page) < 2


def test_sending_while_scrolled_up_goes_back_to_following(page, url: str) -> None:
    connect(page, url)
    send(page, LONG)
    wait_done(page, 1)
    page.hover("#transcript")
    page.mouse.wheel(0, -1500)
    page.wait_for_function("() => !document.querySelector('#jump-latest').hidden", timeout=TIMEOUT)
    send(page, "slow " + LONG[:1000])
    page.wait_for_selector("article.msg-assistant[data-status=streaming]", timeout=TIMEOUT)
    assert page.locator("#jump-latest").is_hidden()
    wait_done(page, 2)
    page.wait_for_timeout(100)
    assert gap_below(page) < 2
