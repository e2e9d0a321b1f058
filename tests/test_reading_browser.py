"""Reading comfort in a real browser: following the reply, never moving what the reader reads,
"Jump to latest", screen-reader state (aria-busy, one announcement per answer), landmarks."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.helpers import TIMEOUT, PacedEcho, connect, send, served_in_thread, wait_reply_done

pytestmark = pytest.mark.browser

LONG = "\n\n".join(
    f"Paragraph {n} of a long answer, long enough to wrap once or twice." for n in range(40)
)


@pytest.fixture
def url(data_dir: Path) -> Iterator[str]:
    with served_in_thread(data_dir, PacedEcho()) as login:  # type: ignore[arg-type]
        yield login


def gap_below(page) -> float:
    """How far the transcript is from its bottom, in pixels."""
    return float(
        page.eval_on_selector("#transcript", "t => t.scrollHeight - t.scrollTop - t.clientHeight")
    )


def settle(page) -> None:
    """Until the transcript's offset stays put for a few samples."""
    last = None
    for _ in range(50):
        top = page.eval_on_selector("#transcript", "t => t.scrollTop")
        if top == last:
            page.wait_for_timeout(150)
            if page.eval_on_selector("#transcript", "t => t.scrollTop") == top:
                return
        last = top
        page.wait_for_timeout(50)


def streaming(page) -> bool:
    return page.locator("article.msg-assistant[data-status=streaming]").count() > 0


# A browser without CSS scroll anchoring (as Safari was): the page must follow by itself.
NO_ANCHORING = """
const supports = CSS.supports.bind(CSS);
CSS.supports = (...args) => String(args[0]).includes("overflow-anchor") ? false : supports(...args);
document.addEventListener("DOMContentLoaded", () => {
  const sheet = new CSSStyleSheet();
  sheet.replaceSync("* { overflow-anchor: none !important; }");
  document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet];
});
"""


@pytest.fixture(params=["anchoring", "no anchoring"])
def anchoring(request, page) -> None:
    if request.param == "no anchoring":
        page.add_init_script(NO_ANCHORING)


@pytest.mark.usefixtures("anchoring")
def test_the_view_follows_the_reply_while_at_the_bottom(page, url: str) -> None:
    connect(page, url)
    send(page, LONG)
    wait_reply_done(page, 1)
    send(page, "slow " + LONG[:1500])
    page.wait_for_selector("article.msg-assistant[data-status=streaming]", timeout=TIMEOUT)
    samples = []
    while streaming(page):
        samples.append(gap_below(page))
        page.wait_for_timeout(100)
    assert len(samples) > 5
    # every sample sits at the bottom (a frame may have landed since the last render)
    assert max(samples) < 60, samples
    wait_reply_done(page, 2)
    assert gap_below(page) < 2
    assert page.locator("#jump-latest").is_hidden()


@pytest.mark.usefixtures("anchoring")
def test_following_survives_the_transcript_changing_size(page, url: str) -> None:
    """A box resized by the layout around it (a notice, the top bar wrapping) moves the
    offset without the reader: following must go on (as it must without scroll anchoring)."""
    connect(page, url)
    send(page, LONG)
    wait_reply_done(page, 1)
    send(page, "slow " + LONG[:1500])
    page.wait_for_selector("article.msg-assistant[data-status=streaming]", timeout=TIMEOUT)
    hint = "document.querySelector('.hint')"
    toggles = 0
    while streaming(page) and toggles < 12:
        # taller and shorter by turns: the transcript grows, then shrinks, while at the bottom
        page.evaluate(f"{hint}.style.paddingBottom = {hint}.style.paddingBottom ? '' : '120px'")
        toggles += 1
        page.wait_for_timeout(150)
    assert toggles > 3
    wait_reply_done(page, 2)
    page.wait_for_timeout(200)
    assert gap_below(page) < 2
    assert page.locator("#jump-latest").is_hidden()


@pytest.mark.usefixtures("anchoring")
def test_scrolled_up_nothing_moves_and_jump_to_latest_goes_back(page, url: str) -> None:
    connect(page, url)
    send(page, LONG)
    wait_reply_done(page, 1)
    send(page, "slow " + LONG[:1200])
    page.wait_for_selector("article.msg-assistant[data-status=streaming]", timeout=TIMEOUT)
    page.hover("#transcript")
    page.mouse.wheel(0, -900)  # the reader scrolls up, as a person does
    page.wait_for_function("() => !document.querySelector('#jump-latest').hidden", timeout=TIMEOUT)
    settle(page)  # the wheel scrolls smoothly: wait until it is done
    # what the reader sees: the transcript's offset and a paragraph's place on screen
    probe = "#messages > article:nth-child(2) .msg-body p:nth-of-type(30)"
    before = page.eval_on_selector("#transcript", "t => t.scrollTop")
    top = page.eval_on_selector(probe, "p => p.getBoundingClientRect().top")
    seen = []
    while streaming(page):
        seen.append(page.eval_on_selector(probe, "p => p.getBoundingClientRect().top"))
        page.wait_for_timeout(80)
    wait_reply_done(page, 2)  # the finished render replaced the streamed message too
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
    wait_reply_done(page, 3)
    page.wait_for_timeout(100)
    assert gap_below(page) < 2


# Where the newest streamed words are: the last character of the streaming answer's text,
# against the transcript's visible box (what the reader sees, not a scroll offset).
NEWEST_WORDS = """
() => {
  const body = document.querySelector('article.msg-assistant:last-of-type .msg-body');
  const t = document.getElementById('transcript');
  if (!body || !t) return null;
  const walk = document.createTreeWalker(body, NodeFilter.SHOW_TEXT);
  let last = null;
  while (walk.nextNode()) if (walk.currentNode.textContent.trim()) last = walk.currentNode;
  if (!last) return null;
  const end = last.textContent.trimEnd().length;
  const range = document.createRange();
  range.setStart(last, Math.max(0, end - 1));
  range.setEnd(last, end);
  const word = range.getBoundingClientRect();
  const box = t.getBoundingClientRect();
  return {
    words: last.textContent.trimEnd().slice(-30),
    visible: word.height > 0 && word.top >= box.top - 1 && word.bottom <= box.bottom + 1,
    length: body.textContent.length,
  };
}
"""


def newest_words_on_screen(page) -> bool:
    where = page.evaluate(NEWEST_WORDS)
    return bool(where and where["visible"])


def test_jump_to_latest_during_a_streaming_answer_shows_its_newest_words(page, url: str) -> None:
    connect(page, url)
    # Long enough (about 12 s) to still be streaming when the button is pressed.
    send(page, "burst " + "\n\n".join([LONG] * 12))
    page.wait_for_function(
        "() => (document.querySelector('article[data-status=streaming] .msg-body')"
        " ?.textContent.length || 0) > 600",
        timeout=TIMEOUT,
    )
    # A few notches of a real mouse wheel over the conversation, as a reader does.
    page.hover("#transcript")
    for _ in range(4):
        page.mouse.wheel(0, -120)
    page.wait_for_function("() => !document.querySelector('#jump-latest').hidden", timeout=TIMEOUT)
    settle(page)
    assert not newest_words_on_screen(page)
    # More of the answer arrives while the reader is up there (chunks drawn out of view).
    length = page.evaluate(NEWEST_WORDS)["length"]
    page.wait_for_function(
        "n => document.querySelector('article[data-status=streaming] .msg-body')"
        ".textContent.length > n",
        arg=length + 1500,
        timeout=TIMEOUT,
    )
    assert streaming(page), "the answer must still be streaming when Jump to latest is pressed"
    page.click("#jump-latest")
    page.wait_for_function(f"() => ({NEWEST_WORDS})()?.visible === true", timeout=TIMEOUT)
    assert page.locator("#jump-latest").is_hidden()
    # ...and the view keeps following the words as they come, to the answer's end.
    page.wait_for_selector("article.msg-assistant[data-status=complete]", timeout=60_000)
    page.wait_for_function(f"() => ({NEWEST_WORDS})()?.visible === true", timeout=TIMEOUT)
    assert page.locator("#jump-latest").is_hidden()
    assert gap_below(page) < 2


def test_sending_while_scrolled_up_goes_back_to_following(page, url: str) -> None:
    connect(page, url)
    send(page, LONG)
    wait_reply_done(page, 1)
    page.hover("#transcript")
    page.mouse.wheel(0, -1500)
    page.wait_for_function("() => !document.querySelector('#jump-latest').hidden", timeout=TIMEOUT)
    send(page, "slow " + LONG[:1000])
    page.wait_for_selector("article.msg-assistant[data-status=streaming]", timeout=TIMEOUT)
    assert page.locator("#jump-latest").is_hidden()
    wait_reply_done(page, 2)
    page.wait_for_timeout(100)
    assert gap_below(page) < 2


# Counts what the live region says: every non-empty text it is given.
RECORD_ANNOUNCEMENTS = """
window.__said = [];
document.addEventListener("DOMContentLoaded", () => {
  new MutationObserver(() => {
    const text = document.getElementById("announcer").textContent;
    if (text) window.__said.push(text);
  }).observe(document.getElementById("announcer"),
    {childList: true, characterData: true, subtree: true});
});
"""


def test_a_streaming_answer_is_busy_and_announced_once_when_finished(page, url: str) -> None:
    page.add_init_script(RECORD_ANNOUNCEMENTS)
    connect(page, url)
    assert page.get_attribute("#messages", "role") is None  # not a live region: no tokens read
    assert page.get_attribute("#messages", "aria-live") is None
    send(page, "slow " + LONG[:700])
    page.wait_for_selector("article.msg-assistant[data-status=streaming]", timeout=TIMEOUT)
    assert page.get_attribute("article.msg-assistant", "aria-busy") == "true"
    page.wait_for_timeout(300)
    assert page.evaluate("window.__said") == []  # nothing while it streams
    wait_reply_done(page, 1)
    assert page.get_attribute("article.msg-assistant", "aria-busy") is None
    said = page.evaluate("window.__said")
    assert len(said) == 1, said
    assert said[0].startswith("echo-1 answered: slow Paragraph 0")
    # a second answer: one more announcement, the first is not repeated
    send(page, "slow short")
    wait_reply_done(page, 2)
    page.wait_for_timeout(200)
    said = page.evaluate("window.__said")
    assert len(said) == 2 and said[1] == "echo-1 answered: slow short", said
    # the author line names the model; the message's time is machine-readable
    assert page.text_content("article.msg-assistant .msg-model") == "echo-1"
    stamp = page.get_attribute("article.msg-assistant time.msg-time", "datetime")
    assert stamp and stamp.endswith("Z") and "T" in stamp


def test_time_shows_on_hover_and_focus(page, url: str) -> None:
    connect(page, url)
    send(page, "hello")
    wait_reply_done(page, 1)
    page.mouse.move(1, 700)
    time = "article.msg-assistant time.msg-time"
    assert page.eval_on_selector(time, "t => getComputedStyle(t).opacity") == "0"
    page.hover("article.msg-assistant .msg-body")
    page.wait_for_function(
        "s => getComputedStyle(document.querySelector(s)).opacity === '1'", arg=time
    )
    page.mouse.move(1, 700)
    page.focus("article.msg-assistant .copy-answer")
    page.wait_for_function(
        "s => getComputedStyle(document.querySelector(s)).opacity === '1'", arg=time
    )


def test_landmarks_hold_the_sidebar_the_conversation_and_the_composer(page, url: str) -> None:
    connect(page, url)
    assert page.eval_on_selector("#sidebar", "e => e.tagName") == "ASIDE"
    assert page.get_attribute("#sidebar", "aria-label") == "Conversations"
    assert page.eval_on_selector("#main", "e => e.tagName") == "MAIN"
    assert page.eval_on_selector("#composer", "e => e.closest('main') !== null")
    assert page.get_attribute("#composer", "aria-label") == "Write a message"
    assert page.get_attribute("#transcript", "aria-label") == "Messages"


NARROW = {"width": 360, "height": 740}


def test_narrow_screen_drawer(browser, url: str) -> None:
    context = browser.new_context(viewport=NARROW)
    page = context.new_page()
    try:
        connect_narrow(page, url)
        send(page, "hello")
        wait_reply_done(page, 1)
        # the conversation has the whole width; the sidebar is out of sight and out of reach
        box = page.locator("#transcript").bounding_box()
        assert box is not None and box["x"] == 0 and box["width"] == 360
        assert page.is_hidden("#sidebar .conv-link")
        toggle = "#drawer-toggle"
        assert page.is_visible(toggle) and page.get_attribute(toggle, "aria-expanded") == "false"

        page.click(toggle)
        assert page.get_attribute(toggle, "aria-expanded") == "true"
        page.wait_for_function("() => document.activeElement.closest('#sidebar') !== null")
        page.wait_for_timeout(300)  # the slide
        side = page.locator("#sidebar").bounding_box()
        assert side is not None and side["x"] == 0 and side["width"] <= 320
        assert page.evaluate("document.getElementById('main').inert") is True
        # Esc closes it and the focus goes back to the button
        page.keyboard.press("Escape")
        assert page.get_attribute(toggle, "aria-expanded") == "false"
        assert page.evaluate("document.activeElement.id") == "drawer-toggle"
        assert page.evaluate("document.getElementById('main').inert") is False
        page.wait_for_function(
            "() => getComputedStyle(document.getElementById('sidebar')).visibility === 'hidden'"
        )
        # choosing a conversation in the drawer closes it and opens the conversation
        page.click(toggle)
        page.click("#new-chat")
        page.wait_for_function("() => !document.querySelector('#messages .msg')")
        assert page.get_attribute(toggle, "aria-expanded") == "false"
        assert page.evaluate("document.activeElement.id") == "composer-input"
        # the backdrop closes it too
        page.click(toggle)
        page.mouse.click(350, 400)
        assert page.get_attribute(toggle, "aria-expanded") == "false"
    finally:
        context.close()


def connect_narrow(page, url: str) -> None:
    page.goto(url)
    page.wait_for_selector('#connection[data-state="open"]', state="attached", timeout=TIMEOUT)


def test_wide_screen_shows_the_sidebar_without_a_drawer_button(page, url: str) -> None:
    connect(page, url)
    assert page.is_hidden("#drawer-toggle")
    assert page.is_visible("#sidebar #new-chat")


def active(page) -> str:
    return str(page.evaluate("document.activeElement.id || document.activeElement.className"))


def test_keyboard_shortcuts(page, url: str) -> None:
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    connect(page, url)
    send(page, "first chat")
    wait_reply_done(page, 1)
    first = page.get_attribute("#app", "data-conversation")
    # new chat
    page.keyboard.press("Alt+Shift+N")
    page.wait_for_function(
        "a => document.querySelector('#app').dataset.conversation !== a", arg=first
    )
    send(page, "second chat")
    wait_reply_done(page, 1)
    second = page.get_attribute("#app", "data-conversation")
    page.wait_for_selector(f"#conv-{second}")
    # copy the last answer
    page.keyboard.press("Alt+Shift+C")
    page.wait_for_function(
        "() => document.querySelector('.msg-assistant .copy-answer').textContent === 'Copied'"
    )
    assert page.evaluate("navigator.clipboard.readText()") == "second chat"
    # previous / next conversation (the list is newest first)
    page.keyboard.press("Alt+Shift+ArrowDown")
    page.wait_for_function(
        "a => document.querySelector('#app').dataset.conversation === a", arg=first
    )
    page.keyboard.press("Alt+Shift+ArrowUp")
    page.wait_for_function(
        "a => document.querySelector('#app').dataset.conversation === a", arg=second
    )
    # focus search, from the message box too; "/" outside text fields
    page.focus("#composer-input")
    page.keyboard.press("Alt+Shift+F")
    assert active(page) == "search-input"
    page.keyboard.press("Alt+Shift+M")
    assert active(page) == "composer-input"
    page.focus("#transcript")
    page.keyboard.press("/")
    assert active(page) == "search-input"
    page.keyboard.type("?/")  # typing in a text field is typing, not a shortcut
    assert page.input_value("#search-input") == "?/"
    # ...and a search: wait for its answer, which would otherwise come after the server
    # this test started is gone.
    expect(page.locator("#search-results")).to_contain_text("“?/”")
    assert page.evaluate("document.getElementById('shortcuts').open") is False
    # Esc stops a reply
    page.keyboard.press("Alt+Shift+M")
    send(page, "slow " + LONG[:1500])
    page.wait_for_selector("article.msg-assistant[data-status=streaming]", timeout=TIMEOUT)
    page.keyboard.press("Escape")
    page.wait_for_selector("article.msg-assistant[data-status=stopped]", timeout=TIMEOUT)


def test_help_dialog_lists_the_shortcuts(page, url: str) -> None:
    connect(page, url)
    page.focus("#transcript")
    page.keyboard.press("?")
    assert page.evaluate("document.getElementById('shortcuts').open") is True
    listed = page.text_content("#shortcuts table") or ""
    for what in (
        "New chat",
        "Search",
        "message box",
        "Stop",
        "Copy the last answer",
        "conversation",
    ):
        assert what in listed
    page.keyboard.press("Escape")
    assert page.evaluate("document.getElementById('shortcuts').open") is False
    assert active(page) == "transcript"  # the focus is back where it was
    # the top bar's menu opens it too; Close closes it
    page.click(".menu-button")
    page.click(".shortcuts-button")
    assert page.evaluate("document.getElementById('shortcuts').open") is True
    page.click(".shortcuts-close")
    assert page.evaluate("document.getElementById('shortcuts').open") is False
    assert "menu-button" in active(page)  # the menu closed behind it


# Is the focused element visibly marked: an outline, or (text fields) a border of its own?
FOCUS_VISIBLE = """() => {
  const e = document.activeElement;
  const s = getComputedStyle(e);
  if (s.outlineStyle !== "none" && parseFloat(s.outlineWidth) > 0) return true;
  const box = e.closest(".composer") || e;
  return getComputedStyle(box).borderColor === getComputedStyle(document.querySelector(
    "#new-chat")).backgroundColor;  // the accent colour
}"""


def test_every_control_is_reachable_and_visibly_focused(page, url: str) -> None:
    connect(page, url)
    send(page, "hello")
    wait_reply_done(page, 1)
    page.evaluate("document.activeElement.blur()")
    seen = []
    for _ in range(80):  # once round the page: until the first control has the focus again
        page.keyboard.press("Tab")
        name = page.evaluate(
            "() => { const e = document.activeElement; if (e === document.body) return '';"
            " if (window.__first === e) return null; window.__first = window.__first || e;"
            " return e.id || e.className || e.textContent.trim().slice(0, 20) || e.tagName; }"
        )
        if name is None:
            break
        if not name:
            continue
        assert page.evaluate(FOCUS_VISIBLE), f"{name} has no visible focus"
        seen.append(name)
    for control in (
        "new-chat", "search-input", "composer-input", "transcript", "attach-button",
        "btn btn-send", "msg-action copy-answer", "icon-btn menu-button",
    ):  # fmt: skip
        assert control in seen, (control, seen)


def test_the_message_box_grows_to_a_limit_then_scrolls(page, url: str) -> None:
    connect(page, url)
    box = "#composer-input"
    one = page.eval_on_selector(box, "b => b.getBoundingClientRect().height")
    page.fill(box, "line\n" * 4)
    page.wait_for_function(f"h => document.querySelector('{box}').clientHeight > h + 40", arg=one)
    page.fill(box, "line\n" * 200)
    limit = 760 * 0.4
    page.wait_for_function(
        f"l => Math.abs(document.querySelector('{box}').getBoundingClientRect().height - l) < 2",
        arg=limit,
    )
    assert page.eval_on_selector(box, "b => b.scrollHeight > b.clientHeight + 100")
    # emptied: it shrinks back
    page.fill(box, "")
    page.wait_for_function(f"h => document.querySelector('{box}').clientHeight <= h + 2", arg=one)
    # sent at its limit: the server's fresh, empty box grows again as it is typed in
    page.fill(box, "line\n" * 200)
    page.press(box, "Enter")
    wait_reply_done(page, 1)
    page.wait_for_function(f"h => document.querySelector('{box}').clientHeight <= h + 2", arg=one)
    page.fill(box, "line\n" * 4)
    page.wait_for_function(f"h => document.querySelector('{box}').clientHeight > h + 40", arg=one)


def test_typing_after_a_large_paste_lays_the_page_out_once_a_key(page, url: str) -> None:
    connect(page, url)
    cdp = page.context.new_cdp_session(page)
    cdp.send("Performance.enable")
    page.focus("#composer-input")
    page.evaluate(
        "() => { const box = document.getElementById('composer-input');"
        " box.value = 'pasted words '.repeat(80000);"  # about 1 MB
        " box.dispatchEvent(new InputEvent('input', {bubbles: true})); }"
    )
    page.keyboard.press("End")
    page.wait_for_timeout(300)

    def layouts() -> float:
        metrics = cdp.send("Performance.getMetrics")["metrics"]
        return float(next(m["value"] for m in metrics if m["name"] == "LayoutCount"))

    before = layouts()
    for _ in range(10):
        page.keyboard.type("x")
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => setTimeout(r)))")
    # the box is at its limit: no script measures it again (it used to cost 3 layouts a key)
    assert layouts() - before <= 12
    assert page.input_value("#composer-input").endswith("x" * 10)


PASTE = """(text) => {
  const data = new DataTransfer();
  data.setData("text/plain", text);
  const box = document.getElementById("composer-input");
  box.focus();
  const event = new ClipboardEvent("paste", {clipboardData: data, bubbles: true, cancelable: true});
  return box.dispatchEvent(event);  // false: the page took the paste
}"""


def test_a_paste_longer_than_a_message_is_attached_as_a_text_file(page, url: str) -> None:
    connect(page, url)
    big = "pasted words " * 80_000  # about 1 MB: over the 100,000 characters of a message
    assert page.evaluate(PASTE, big) is False
    chip = page.locator("#attach-chips .attach-chip")
    chip.wait_for(timeout=TIMEOUT)
    page.wait_for_selector("#attach-chips .attach-chip[data-state=ready]", timeout=TIMEOUT)
    assert "pasted text.txt" in (chip.text_content() or "")
    assert page.input_value("#composer-input") == ""  # typing stays quick
    page.keyboard.type("see the file")
    assert page.input_value("#composer-input") == "see the file"
    # a short paste is left to the browser: it goes into the box
    assert page.evaluate(PASTE, "short text") is True
    assert chip.count() == 1
