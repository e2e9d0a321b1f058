"""Conversations in a browser: switching, back/forward, two tabs, reload mid-reply, restart."""

from __future__ import annotations

import re
import signal

import pytest
from playwright.sync_api import expect

from tests.helpers import (
    TIMEOUT,
    ServerProcess,
    at,
    seed,
    send,
    stored,
    texts,
    wait_connected,
    wait_reply_done,
)

pytestmark = pytest.mark.browser

# Records the reply text a page built from streamed pieces, just before the finished
# message is swapped in (so doubled or missing words cannot hide behind the final fragment).
RECORD_STREAMED = """
window.__streamed = {};
document.addEventListener("htmx:oobBeforeSwap", (e) => {
  const t = e.detail.target;
  if (t && t.matches && t.matches("article.msg-assistant[data-status=streaming]")) {
    window.__streamed[t.id] = t.querySelector(".msg-body").textContent;
  }
}, true);
"""


def copy_source(page, article_id: str) -> str:
    """The text Copy puts on the clipboard for a message: its Markdown, carried by a page
    render, fetched for an answer that streamed in (static/app.js)."""
    return page.evaluate(
        "async id => { const a = document.getElementById(id);"
        " return a.dataset.markdown ?? await (await fetch(a.dataset.source)).text(); }",
        article_id,
    )


def words(text: str | None) -> list[str]:
    """The words of a reply's text, without Markdown list markers ("1.", "-"), which the
    source has and the rendered list shows as bullets or numbers of its own."""
    return [w for w in (text or "").split() if not re.fullmatch(r"\d+\.|[-*+]", w)]


def test_switching_conversations_and_back_forward(server: ServerProcess, page, data_dir) -> None:
    alpha = seed(data_dir, ["Alpha question", "Alpha answer"])
    beta = seed(data_dir, ["Beta question", "Beta answer"])
    sockets: list[object] = []
    page.on("websocket", lambda ws: sockets.append(ws))
    page.goto(at(server, f"c/{alpha}"))
    wait_connected(page)
    page.evaluate("window.__samePage = true")
    assert texts(page) == ["Alpha question", "Alpha answer"]

    page.click(f"#conv-{beta} .conv-link")
    page.wait_for_url(f"**/c/{beta}")
    page.wait_for_function(
        "() => document.querySelector('#conversation-title').textContent === 'Beta question'"
    )
    assert texts(page) == ["Beta question", "Beta answer"]
    assert page.get_attribute(f"#conv-{beta} .conv-link", "aria-current") == "page"
    assert page.get_attribute("#app", "data-conversation") == beta

    # the composer now talks to Beta: the message and its reply are stored there
    send(page, "Third in beta")
    wait_reply_done(page, 2)
    assert [m["content"] for m in stored(server, beta)][:3] == [
        "Beta question", "Beta answer", "Third in beta",
    ]  # fmt: skip
    assert len(stored(server, alpha)) == 2

    page.go_back()
    page.wait_for_url(f"**/c/{alpha}")
    page.wait_for_function(
        "a => document.querySelector('#app').dataset.conversation === a", arg=alpha
    )
    page.wait_for_function("() => document.querySelectorAll('#messages .msg').length === 2")
    assert texts(page) == ["Alpha question", "Alpha answer"]
    page.wait_for_selector(f'#conv-{alpha} .conv-link[aria-current="page"]', timeout=TIMEOUT)

    page.go_forward()
    page.wait_for_url(f"**/c/{beta}")
    page.wait_for_function("() => document.querySelectorAll('#messages .msg').length === 4")
    assert texts(page)[2] == "Third in beta"

    page.click("#new-chat")
    page.wait_for_function(
        "a => document.querySelector('#app').dataset.conversation !== a", arg=beta
    )
    assert page.is_visible(".empty-state")
    fresh = page.get_attribute("#app", "data-conversation")
    assert page.url.endswith(f"/c/{fresh}")
    # its first message names it: the sidebar lists it first and the title follows
    send(page, "A brand new topic")
    # (first under the "Today" heading)
    page.wait_for_selector(f"#conv-{fresh}:nth-child(2) .conv-link[aria-current=page]")
    assert page.text_content(f"#conv-{fresh} .conv-link") == "A brand new topic"
    page.wait_for_function(
        "() => document.querySelector('#conversation-title').textContent === 'A brand new topic'"
    )
    wait_reply_done(page, 1)
    # New chat again: another new conversation, not the one just written in
    page.click("#new-chat")
    page.wait_for_function(
        "f => document.querySelector('#app').dataset.conversation !== f", arg=fresh
    )
    again = page.get_attribute("#app", "data-conversation")
    assert page.url.endswith(f"/c/{again}")
    assert page.is_visible(".empty-state") and page.locator("#messages .msg").count() == 0
    page.go_back()
    page.wait_for_url(f"**/c/{fresh}")
    page.wait_for_function("() => document.querySelectorAll('#messages .msg').length === 2")

    # no full page load happened and the one socket stayed open throughout
    assert page.evaluate("window.__samePage") is True
    assert len(sockets) == 1 and not sockets[0].is_closed()  # type: ignore[attr-defined]


def test_rename_delete_and_search(server: ServerProcess, page, data_dir) -> None:
    keep = seed(data_dir, ["Keep this one", "ok"])
    doomed = seed(data_dir, ["Delete the zeppelin", "fine"])
    page.goto(at(server, f"c/{doomed}"))
    wait_connected(page)

    page.hover(f"#conv-{keep}")  # the item's buttons show on hover
    page.click(f"#conv-{keep} button[title=Rename]")
    page.fill(f"#conv-{keep} input[name=title]", "Renamed <b>chat</b>")
    page.press(f"#conv-{keep} input[name=title]", "Enter")
    page.wait_for_selector(f"#conv-{keep} .conv-link", timeout=TIMEOUT)
    assert page.text_content(f"#conv-{keep} .conv-link") == "Renamed <b>chat</b>"

    page.fill("#search-input", "zeppelin")
    page.wait_for_selector(".hit mark", timeout=TIMEOUT)
    assert page.text_content(".hit mark") == "zeppelin"

    page.fill("#search-input", "")
    page.wait_for_selector(f"#conv-{doomed}", timeout=TIMEOUT)

    # Hold the page that follows a delete back until the socket's news of the deletion (which
    # replaces the pane) has landed: the navigation must still end on the remaining chat.
    def delayed(route) -> None:
        page.wait_for_function(f"() => !document.querySelector('#conv-{doomed}')", timeout=TIMEOUT)
        route.continue_()

    page.route(f"**/c/{keep}", delayed)
    page.hover(f"#conv-{doomed}")
    page.click(f"#conv-{doomed} button[title=Delete]")
    page.click("#confirm .confirm-ok")
    page.wait_for_url(f"**/c/{keep}")
    page.wait_for_selector(f"#conv-{doomed}", state="detached", timeout=TIMEOUT)
    expect(page.locator("#conversation-title")).to_have_text("Renamed <b>chat</b>", timeout=TIMEOUT)
    assert page.get_attribute("#app", "data-conversation") == keep
    page.fill("#search-input", "zeppelin")
    page.wait_for_selector(".search-summary", timeout=TIMEOUT)
    assert "No messages match" in page.text_content(".search-summary")


def test_search_hit_opens_the_conversation_at_the_message(server, page, data_dir) -> None:
    texts_ = [f"filler message number {n}" for n in range(160)]
    texts_[30] = "the unique okapi sighting"
    conversation = seed(data_dir, texts_)
    seed(data_dir, ["another chat", "yes"])
    syncs: list[str] = []
    page.on(
        "websocket",
        lambda ws: ws.on(
            "framesent",
            lambda frame: syncs.append(frame) if '"action":"sync"' in frame else None,
        ),
    )
    page.goto(server.url)
    wait_connected(page)
    page.wait_for_function("() => document.querySelectorAll('#messages .msg').length > 0")
    page.fill("#search-input", "okapi")
    before = len(syncs)
    page.click(".hit")
    page.wait_for_url(f"**/c/{conversation}?at=*")
    # after the socket followed the new conversation, the hit is highlighted and in view
    for _ in range(200):
        if len(syncs) > before:
            break
        page.wait_for_timeout(25)
    assert len(syncs) > before, "no sync after switching"
    target = page.wait_for_selector(".msg.is-focus", timeout=TIMEOUT)
    assert "okapi" in target.text_content()
    box = target.bounding_box()
    assert box is not None and 0 <= box["y"] <= 700


def test_scrolling_up_loads_older_messages_in_place(server, page, data_dir) -> None:
    conversation = seed(data_dir, [f"line {n}" for n in range(130)])
    page.goto(at(server, f"c/{conversation}"))
    wait_connected(page)
    assert len(texts(page)) == 50
    for expected in (100, 130):
        anchor = page.eval_on_selector("#messages > .msg", "e => e.id")
        page.eval_on_selector("#transcript", "t => { t.scrollTop = 0; }")
        before = page.eval_on_selector(f"#{anchor}", "e => e.getBoundingClientRect().top")
        page.wait_for_function(
            "n => document.querySelectorAll('#messages > .msg').length === n", arg=expected
        )
        # the message that was at the top is still where the reader was looking
        top = page.eval_on_selector(f"#{anchor}", "e => e.getBoundingClientRect().top")
        assert abs(top - before) <= 2, (before, top)
    assert texts(page)[0] == "line 0" and texts(page)[-1] == "line 129"
    assert page.query_selector(".older") is None


def test_two_pages_on_one_conversation(server: ServerProcess, browser, data_dir) -> None:
    conversation = seed(data_dir, ["Shared start", "Hello"])
    context = browser.new_context(viewport={"width": 1000, "height": 700})
    try:
        one, two = context.new_page(), context.new_page()
        for page in (one, two):
            page.add_init_script(RECORD_STREAMED)
            page.goto(at(server, f"c/{conversation}"))
            wait_connected(page)
        send(one, "Sent from page one")
        # page two sees the user message and the reply streaming in
        two.wait_for_function(
            "() => [...document.querySelectorAll('.msg-user .msg-body')]"
            ".some(e => e.textContent === 'Sent from page one')",
            timeout=TIMEOUT,
        )
        for page in (one, two):
            wait_reply_done(page, 2)
        final = stored(server, conversation)[-1]
        assert final["status"] == "complete" and final["content"]
        for page in (one, two):
            article = f"m-{final['id']}"
            assert copy_source(page, article) == final["content"]
            # each page streamed exactly what the finished message shows
            shown = page.text_content(f"#{article} .msg-body")
            assert page.evaluate("window.__streamed")[article] == shown
        assert one.input_value("#composer-input") == ""
    finally:
        context.close()


def test_reload_mid_reply_shows_text_so_far_then_the_rest(browser, data_dir) -> None:
    server = ServerProcess(data_dir, "--port", "0", "--word-delay", "0.12")
    context = browser.new_context(viewport={"width": 1000, "height": 700})
    try:
        page = context.new_page()
        page.add_init_script(RECORD_STREAMED)
        page.goto(server.url)
        wait_connected(page)
        conversation = page.get_attribute("#app", "data-conversation")
        caught = None
        for attempt in range(8):  # demo replies vary in length; catch one mid-stream
            send(page, f"Question {attempt}")
            # two words streamed in, or the (short) reply already finished
            page.wait_for_function(
                "n => (document.querySelector('article[data-status=streaming] .msg-body')"
                " || {textContent: ''}).textContent.trim().split(/\\s+/).length >= 2 ||"
                " document.querySelectorAll('article.msg-assistant[data-status=complete]')"
                ".length >= n",
                arg=attempt + 1,
                timeout=TIMEOUT,
            )
            if page.query_selector("article[data-status=streaming]") is None:
                wait_reply_done(page, attempt + 1)
                continue
            page.reload()
            wait_connected(page)
            so_far = page.evaluate(
                "() => { const b = document.querySelector('article[data-status=streaming] "
                ".msg-body'); return b ? [b.closest('article').id, b.textContent] : null; }"
            )
            if so_far is not None:
                caught = so_far
                break
            wait_reply_done(page, attempt + 1)
        assert caught is not None, "every demo reply finished before the reload"
        article_id, text_so_far = caught
        assert text_so_far.strip()  # the text so far, at once
        page.wait_for_selector(f"#{article_id}[data-status=complete]", timeout=TIMEOUT)
        final = next(m for m in stored(server, conversation) if f"m-{m['id']}" == article_id)
        assert final["status"] == "complete"
        shown = page.text_content(f"#{article_id} .msg-body") or ""
        assert words(shown)[: len(words(text_so_far))] == words(text_so_far)
        # what streaming built is what the finished message shows: nothing moved
        assert page.evaluate("window.__streamed")[article_id] == shown
        assert copy_source(page, article_id) == final["content"]
    finally:
        context.close()
        server.kill()


def test_page_recovers_from_a_server_restart(browser, data_dir, browser_errors) -> None:
    """SIGTERM mid-reply, start again on the same port and data dir: the open page
    reconnects by itself, shows the saved partial reply, and keeps working."""
    browser_errors.expect_server_down()
    server = ServerProcess(data_dir, "--port", "0", "--word-delay", "0.25")
    context = browser.new_context(viewport={"width": 1000, "height": 700})
    restarted: ServerProcess | None = None
    try:
        page = context.new_page()
        page.goto(server.url)
        wait_connected(page)
        page.evaluate("window.__samePage = true")
        conversation = page.get_attribute("#app", "data-conversation")
        for attempt in range(8):  # catch a demo reply mid-stream (some are two words long)
            send(page, f"Before the restart {attempt}")
            page.wait_for_function(
                "n => (document.querySelector('article[data-status=streaming] .msg-body')"
                " || {textContent: ''}).textContent.trim() !== '' ||"
                " document.querySelectorAll('article.msg-assistant[data-status=complete]')"
                ".length >= n",
                arg=attempt + 1,
                timeout=TIMEOUT,
            )
            if page.query_selector("article[data-status=streaming]") is not None:
                break
            wait_reply_done(page, attempt + 1)
        shown = page.text_content("article[data-status=streaming] .msg-body")
        port = server.port
        code, _, err = server.stop(signal.SIGTERM)
        assert code == 0, err
        page.wait_for_selector('#connection[data-state="closed"]', timeout=TIMEOUT)
        assert page.is_visible(".offline-banner")

        restarted = ServerProcess(data_dir, "--port", str(port), "--word-delay", "0.01")
        wait_connected(page)  # by itself: no reload
        assert not page.is_visible(".offline-banner")
        # the reply cut short by the restart was saved and is shown as interrupted
        cut = page.wait_for_selector("article[data-status=interrupted]", timeout=TIMEOUT)
        saved = stored(restarted, conversation)[-1]
        assert saved["status"] == "interrupted"
        assert words(saved["content"])[: len(words(shown))] == words(shown)
        assert copy_source(page, cut.get_attribute("id") or "") == saved["content"]

        send(page, "After the restart")
        page.wait_for_function(
            "() => document.querySelector('#messages .msg:last-child')"
            ".matches('.msg-assistant[data-status=complete]')"
            " && document.querySelector('#composer-actions').dataset.busy === 'false'",
            timeout=TIMEOUT,
        )
        assert texts(page, "#messages .msg-user .msg-body")[-1] == "After the restart"
        assert page.evaluate("window.__samePage") is True
        contents = [m["content"] for m in stored(restarted, conversation)]
        assert contents[-2] == "After the restart" and contents[-1]
    finally:
        context.close()
        server.kill()
        if restarted is not None:
            restarted.kill()
