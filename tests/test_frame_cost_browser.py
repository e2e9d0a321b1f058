"""What keeps a streamed frame cheap for the page, checked in a real browser.

The time itself is measured by benchmarks (tests/benchmarks/bench_reading.py and
bench_markdown_browser.py), never by timed tests. These tests fail when a change brings back
what made frames expensive (docs/design.md, "What a streamed frame costs the page"): anything
but the reply changing in the DOM per frame, a `:has()` rule whose subject holds the transcript
(the browser then restyles every message on each frame), answer blocks that are painted
together, finished messages far from the view laid out and painted again.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path

import pytest

from htmxchat.answering.bots import BuiltIn, Piece, Turn
from tests.helpers import TIMEOUT, PacedEcho, connect, send, served_in_thread, wait_reply_done

pytestmark = pytest.mark.browser

# Several short Markdown blocks, streamed a few characters at a time (PacedEcho's "slow").
ANSWER = "slow start\n\n" + "\n\n".join(
    f"Block {n} with **bold** words, `code` and a list:\n\n- one\n- two" for n in range(12)
)


@pytest.fixture
def url(data_dir: Path) -> Iterator[str]:
    with served_in_thread(data_dir, PacedEcho()) as login:  # type: ignore[arg-type]
        yield login


# Records every DOM change outside the streaming answer's body while it streams.
WATCH_OUTSIDE_THE_REPLY = """
() => {
  window.__outside = [];
  window.__inside = 0;
  const observer = new MutationObserver((records) => {
    const body = document.querySelector("article.msg-assistant[data-status=streaming] .msg-body");
    for (const r of records) {
      if (body && body.contains(r.target)) { window.__inside++; continue; }
      const where = r.target.id || r.target.className || r.target.nodeName;
      window.__outside.push(`${r.type} ${r.attributeName || ""} on ${where}`);
    }
  });
  observer.observe(document.documentElement, {subtree: true, childList: true, attributes: true,
                                              characterData: true});
  window.__stopWatching = () => observer.disconnect();
}
"""


def test_a_streamed_frame_changes_nothing_but_the_reply(page, url: str) -> None:
    """Mid-stream, frames touch only the answer's body: no header element swapped in,
    no attribute rewritten on the pane, the app or the message."""
    connect(page, url)
    send(page, ANSWER)
    page.wait_for_function(
        "() => (document.querySelector('article.msg-assistant[data-status=streaming] .msg-body')"
        "?.textContent.length || 0) > 40",
        timeout=TIMEOUT,
    )
    page.evaluate(WATCH_OUTSIDE_THE_REPLY)
    page.wait_for_function(
        "() => window.__inside >= 15 || !document.querySelector("
        "'article.msg-assistant[data-status=streaming]')",
        timeout=TIMEOUT,
    )
    page.evaluate("() => window.__stopWatching()")
    inside, outside = page.evaluate("() => [window.__inside, window.__outside]")
    assert inside >= 15, "the answer finished before enough frames were watched"
    assert outside == []
    wait_reply_done(page, 1)


# The subjects of every `:has()` rule in the page's own stylesheets that match an element
# holding #messages (the transcript, the pane, the app...).
HAS_SUBJECTS_HOLDING_THE_MESSAGES = r"""
() => {
  const splitTopLevel = (text, separators) => {
    const parts = []; let depth = 0, start = 0;
    for (let i = 0; i < text.length; i++) {
      const c = text[i];
      if (c === "(" || c === "[") depth++;
      else if (c === ")" || c === "]") depth--;
      else if (depth === 0 && separators.includes(c)) {
        parts.push(text.slice(start, i));
        start = i + 1;
      }
    }
    parts.push(text.slice(start));
    return parts.map((p) => p.trim()).filter(Boolean);
  };
  const rules = [];
  const collect = (list) => { for (const rule of list) {
    if (rule.selectorText) rules.push(rule.selectorText);
    if (rule.cssRules) collect(rule.cssRules);
  } };
  for (const sheet of document.styleSheets) {
    if (sheet.href && new URL(sheet.href).origin === location.origin) collect(sheet.cssRules);
  }
  const holders = [];
  for (let e = document.getElementById("messages"); e; e = e.parentElement) holders.push(e);
  const found = [];
  for (const selector of rules) {
    for (const complex of splitTopLevel(selector, [","])) {
      for (const compound of splitTopLevel(complex, [" ", ">", "+", "~"])) {
        const at = compound.indexOf(":has(");
        if (at < 0) continue;
        // The compound's own part before :has(, without a :not( wrapped around it.
        const subject = compound.slice(0, at).replace(/:not\($/, "") || "*";
        if (holders.some((e) => e.matches(subject))) found.push(`${complex}  (subject ${subject})`);
      }
    }
  }
  return [rules.length, found];
}
"""


def test_no_has_rule_has_a_subject_that_holds_the_transcript(page, url: str) -> None:
    connect(page, url)
    count, found = page.evaluate(HAS_SUBJECTS_HOLDING_THE_MESSAGES)
    assert count > 100, "the page's stylesheets were not read"
    assert found == []


def test_answer_blocks_are_painted_each_on_their_own(page, url: str) -> None:
    """Each top-level element of an answer is a stacking context: while it streams, the
    chunks its blocks are grouped in (and the tail); once finished, each block."""
    connect(page, url)
    send(page, ANSWER)
    page.wait_for_function(
        "() => document.querySelectorAll("
        "'article.msg-assistant[data-status=streaming] .msg-body > .md-chunk > *').length > 3",
        timeout=TIMEOUT,
    )
    check = (
        "() => [...document.querySelectorAll('article.msg-assistant .msg-body > *')]"
        ".map((block) => getComputedStyle(block).isolation)"
    )
    streaming = page.evaluate(check)
    wait_reply_done(page, 1)
    finished = page.evaluate(check)
    assert page.locator("article.msg-assistant .md-chunk").count() == 0
    assert len(finished) > 12
    assert set(streaming) == set(finished) == {"isolate"}


def test_empty_state_download_links_and_tree_actions_follow_the_conversation(
    page, url: str
) -> None:
    """The states the styles read from attributes: a new chat shows its empty state and no
    download links; once it has messages, the reverse; while a reply is written the message
    actions that change the tree are hidden."""
    connect(page, url)
    assert page.is_visible(".empty-state")
    page.click(".menu-button")
    assert not page.is_visible(".export")
    page.keyboard.press("Escape")
    send(page, "hello")
    wait_reply_done(page, 1)
    assert not page.is_visible(".empty-state")
    page.click(".menu-button")
    assert page.is_visible(".export")
    page.keyboard.press("Escape")
    regenerate = page.locator("article.msg-assistant .regenerate").first
    assert regenerate.evaluate("b => getComputedStyle(b).visibility") == "visible"
    send(page, ANSWER)
    page.wait_for_selector("article.msg-assistant[data-status=streaming]", timeout=TIMEOUT)
    assert regenerate.evaluate("b => getComputedStyle(b).visibility") == "hidden"
    wait_reply_done(page, 2)
    assert regenerate.evaluate("b => getComputedStyle(b).visibility") == "visible"
    # Delete the whole conversation's first message (and so everything): empty again.
    first = page.locator("article.msg-user").first
    first.scroll_into_view_if_needed()  # as a reader does: a message far above is drawn
    first.hover()  # once it comes near the view (reading.css), then shows its actions
    first.locator(".delete-message").click()
    page.click("#confirm .confirm-ok")
    page.wait_for_function("() => !document.querySelector('#messages > .msg')", timeout=TIMEOUT)
    assert page.is_visible(".empty-state")
    assert not page.is_visible(".export")


# What is inside a skipped message is not rendered (the message's own box still is).
SKIPPED = "m => !m.querySelector('.msg-body').checkVisibility({contentVisibilityAuto: true})"
CHUNK_SKIPPED = "c => !c.firstElementChild.checkVisibility({contentVisibilityAuto: true})"


def test_finished_messages_away_from_the_view_are_skipped(page, url: str) -> None:
    """A frame costs the same in a long conversation as in a short one: the browser skips the
    layout and painting of finished messages far from the view (content-visibility), never
    of the streaming answer; a skipped message keeps its real height once it was drawn."""
    connect(page, url)
    send(page, "first")
    wait_reply_done(page, 1)
    send(page, "\n\n".join(f"Paragraph {n}, long enough to fill a line or two." for n in range(60)))
    wait_reply_done(page, 2)
    send(page, ANSWER)
    streaming = page.locator("article.msg-assistant[data-status=streaming]")
    streaming.wait_for(timeout=TIMEOUT)
    assert streaming.evaluate("m => getComputedStyle(m).contentVisibility") == "visible"
    assert not streaming.evaluate(SKIPPED)
    first = page.locator("#messages > .msg").first
    assert first.evaluate("m => getComputedStyle(m).contentVisibility") == "auto"
    assert first.evaluate(SKIPPED)  # far above the view: not laid out
    wait_reply_done(page, 3)
    newest = page.locator("#messages > .msg").last
    assert not newest.evaluate(SKIPPED)
    # The finished answer came in as a new element: never a candidate for skipping (Firefox
    # lays a new one out at its estimated height first, which moved a reader scrolled up).
    assert newest.evaluate("m => getComputedStyle(m).contentVisibility") == "visible"
    assert (
        page.locator("#messages > .msg")
        .nth(-2)
        .evaluate("m => getComputedStyle(m).contentVisibility")
        == "auto"
    )
    # Scrolled to, it is drawn; scrolled away again, it keeps the height it had.
    first.scroll_into_view_if_needed()
    page.wait_for_function(f"m => !({SKIPPED})(m)", arg=first.element_handle(), timeout=TIMEOUT)
    height = first.evaluate("m => m.getBoundingClientRect().height")
    page.press("#transcript", "End")
    page.wait_for_function(f"m => ({SKIPPED})(m)", arg=first.element_handle(), timeout=TIMEOUT)
    assert first.evaluate("m => m.getBoundingClientRect().height") == height


class HeldEcho(BuiltIn):
    """Repeats the user's text quickly, then holds the reply open until `release` is set."""

    label = "Held echo"
    model: str | None = "echo-1"

    def __init__(self) -> None:
        self.release = threading.Event()

    async def close(self) -> None:
        """Nothing to release."""

    async def stream(
        self, history: Sequence[Turn], *, model: str | None = None, params: object = None
    ) -> AsyncIterator[Piece]:
        text = history[-1].content
        for start in range(0, len(text), 400):
            await asyncio.sleep(0.01)
            yield Piece(text=text[start : start + 400])
        await asyncio.to_thread(self.release.wait, 30)  # the test sets it


# Every kind of top-level block, and the neighbours whose margins met across a chunk edge
# before (a rule then a paragraph or a heading, a list ending in a nested list or a code
# block), repeated into several chunks of 20.
VARIED = (
    "\n\n".join(
        f"## Part {n}\n\nA paragraph with **bold** and $x^{n}$.\n\n---\n\nAfter the rule.\n\n"
        f"- item\n- item with a nested list\n  - inner\n  - inner\n\n---\n\n"
        f"### Right after a rule\n\n"
        f"1. first\n2. with code\n\n   ```\n   code {n}\n   ```\n\n> quoted\n\n"
        f"| a | b |\n|---|---|\n| {n} | 2 |\n\n$$\na_{n} = b\n$$\n\n```python\nprint({n})\n```"
        for n in range(5)
    )
    + "\n\nThe end."
)

# The top of each top-level block of the answer's body, from the body's top (chunks taken
# away: a chunk's children are its blocks), and the body's height.
BLOCK_TOPS = """
body => {
  const top = body.getBoundingClientRect().top;
  const blocks = [...body.children].flatMap(
    (e) => e.classList.contains("md-chunk") ? [...e.children] : [e]);
  return blocks.map((b) => Math.round((b.getBoundingClientRect().top - top) * 10) / 10);
}
"""


def test_chunks_far_from_the_view_are_skipped_and_blocks_never_move(page, data_dir: Path) -> None:
    """While the view follows a streaming answer, its chunks far above the view are neither
    laid out nor painted (content-visibility), the one being written is, and a reader who
    scrolls up gets them all drawn; every block is exactly where the finished render puts it,
    so nothing moves when the chunks go."""
    bot = HeldEcho()
    with served_in_thread(data_dir, bot) as login:  # type: ignore[arg-type]
        connect(page, login)
        # The math font first: it would otherwise arrive when a chunk with a formula is first
        # drawn, and a line of the formula set in it is a fraction of a pixel taller.
        page.evaluate("document.fonts.load('16px \"STIX Two Math\"')")
        send(page, VARIED)
        body = page.locator("article.msg-assistant .msg-body")
        page.wait_for_function(
            "() => (document.querySelector('article.msg-assistant .msg-body > .md-tail') || {})"
            ".textContent === 'The end.'",
            timeout=TIMEOUT,
        )
        chunks = page.locator("article.msg-assistant .msg-body > .md-chunk")
        assert chunks.count() >= 3
        assert chunks.first.evaluate("c => getComputedStyle(c).contentVisibility") == "auto"
        assert chunks.first.evaluate(CHUNK_SKIPPED)  # far above the view
        assert not chunks.last.evaluate(CHUNK_SKIPPED)  # being written, in view
        streamed = body.evaluate(BLOCK_TOPS)
        # A reader who scrolls up gets every chunk drawn, so nothing moves when it lands.
        page.hover("#transcript")
        page.mouse.wheel(0, -800)
        page.wait_for_function(
            "() => !document.getElementById('transcript').classList.contains('is-following')",
            timeout=TIMEOUT,
        )
        assert chunks.first.evaluate("c => getComputedStyle(c).contentVisibility") == "visible"
        assert not chunks.first.evaluate(CHUNK_SKIPPED)
        assert body.evaluate(BLOCK_TOPS) == streamed
        bot.release.set()
        wait_reply_done(page, 1)
        assert chunks.count() == 0
        finished = body.evaluate(BLOCK_TOPS)
    assert len(finished) == len(streamed) > 60
    assert streamed == finished  # the tail sits where the last paragraph lands, too


# Counts htmx's clean-up events on elements inside a message body or its reasoning while the
# frame with the finished answer is applied.
COUNT_CLEANUPS_INSIDE_BODIES = """
() => {
  window.__cleanups = 0;
  let final = false;
  document.addEventListener("htmx:wsBeforeMessage", (e) => {
    final = e.detail.message.includes('data-status="complete"');
  });
  document.addEventListener("htmx:wsAfterMessage", () => { final = false; });
  document.addEventListener("htmx:beforeCleanupElement", (e) => {
    const parent = e.target.parentElement;
    if (final && parent && parent.closest("[hx-disable]")) window.__cleanups++;
  });
}
"""


def test_the_finished_answer_replaces_the_streamed_one_without_walking_it(page, url: str) -> None:
    """htmx sets up nothing inside a body (hx-disable), so when the finished answer replaces
    the streamed one, it is not made to walk the thousands of elements a long answer has."""
    connect(page, url)
    page.evaluate(COUNT_CLEANUPS_INSIDE_BODIES)
    send(page, ANSWER)
    page.wait_for_function(
        "() => document.querySelectorAll("
        "'article.msg-assistant[data-status=streaming] .msg-body *').length > 40",
        timeout=TIMEOUT,
    )
    wait_reply_done(page, 1)
    body = page.locator("article.msg-assistant .msg-body")
    assert body.locator("li").count() == 24  # the finished answer is all there
    assert "Block 11 with bold words" in body.text_content()
    assert page.evaluate("() => window.__cleanups") == 0
