"""The page's side of the frame numbering (docs/design.md, "Frames"), in Chromium.

The page's socket goes through Playwright's WebSocket route: every frame still travels
between the page and the real server, and the test slips its own frames in between to play
a stale frame, a gap or a late join, and watches what the page shows and asks.
"""

from __future__ import annotations

import json

import pytest

from tests.helpers import TIMEOUT, ServerProcess, at, seed, send, wait_connected, wait_reply_done

pytestmark = pytest.mark.browser

INJECTED = "Injected text that must not show"


def notice(text: str) -> str:
    return f'<div id="notice" class="notice" role="alert" hx-swap-oob="true">{text}</div>'


class Relay:
    """Forwards the page's socket to the server, records the page's syncs, and can hold a
    sync back while frames are slipped in ahead of the server's answer."""

    def __init__(self, page) -> None:
        self.syncs: list[dict] = []
        self.from_server: list[str] = []
        self.before_sync: list[str] = []  # frames sent to the page just before a sync goes on
        self.route = None
        page.route_web_socket("**/ws", self._connect)

    def _connect(self, route) -> None:
        server = route.connect_to_server()
        self.route = route
        route.on_message(lambda message: self._from_page(message, server))
        server.on_message(lambda message: self._from_server(message, route))

    def _from_server(self, message, route) -> None:
        self.from_server.append(message)
        route.send(message)

    def _from_page(self, message, server) -> None:
        frame = json.loads(message)
        if frame.get("action") == "sync":
            self.syncs.append(frame)
            for early in self.before_sync:
                assert self.route is not None
                self.route.send(early)
            self.before_sync.clear()
        server.send(message)


def wait_until(page, check) -> None:
    """Poll `check` (Playwright delivers the socket's messages while the page waits)."""
    for _ in range(TIMEOUT // 25):
        if check():
            return
        page.wait_for_timeout(25)
    raise AssertionError("timed out")


def _open(page, server: ServerProcess, data_dir) -> tuple[Relay, str]:
    seed(data_dir, ["Other question", "Other answer"])
    conversation = seed(data_dir, ["Question", "Answer"])
    relay = Relay(page)
    page.goto(at(server, f"c/{conversation}"))
    wait_connected(page)
    page.wait_for_function("() => document.querySelectorAll('#messages .msg').length === 2")
    # the server's answer to the sync (the feed's join comes last) has reached the page
    wait_until(page, lambda: any(f.startswith("<!--frame kind=feed") for f in relay.from_server))
    return relay, conversation


def test_a_frame_after_a_gap_is_dropped_and_the_page_resumes_from_its_own_number(
    server: ServerProcess, page, data_dir
) -> None:
    relay, conversation = _open(page, server, data_dir)
    joined = len(relay.syncs)
    seq = int(relay.syncs[-1]["seq"])  # the page's own, from the HTML page
    assert relay.route is not None
    relay.route.send(f"<!--{seq + 2}-->" + notice(INJECTED))  # event seq + 1 never came
    wait_until(page, lambda: len(relay.syncs) > joined)  # a gap asks the server to resume
    again = relay.syncs[-1]
    assert (again["conversation"], int(again["seq"])) == (conversation, seq)
    assert INJECTED not in (page.text_content("#notice") or "")
    # and the conversation goes on: a reply streams in and finishes
    send(page, "more")
    wait_reply_done(page, 2)
    assert INJECTED not in (page.text_content("#notice") or "")


def test_frames_of_a_conversation_the_page_left_are_dropped_until_the_join(
    server: ServerProcess, page, data_dir
) -> None:
    """Frames in flight when the page switched conversations carry only their numbers:
    the page drops them until the server's answer to its new sync (the join) arrives, and a
    join answering an older sync is dropped too."""
    relay, first = _open(page, server, data_dir)
    second = page.eval_on_selector(
        "#conversations .conv:not([data-id='" + first + "'])", "e => e.dataset.id"
    )
    seq = int(relay.syncs[-1]["seq"])
    relay.before_sync = [
        # the next event of the conversation being left, in flight
        f"<!--{seq + 1}-->" + notice(INJECTED),
        # a join answering the sync before this one
        f"<!--frame kind=snapshot req=1 conversation={second} epoch=abc seq=0-->"
        + notice(INJECTED),
    ]
    page.click(f"#conv-{second} .conv-link")
    page.wait_for_url(f"**/c/{second}", timeout=TIMEOUT)
    page.wait_for_function(
        "() => document.querySelector('#conversation-title').textContent === 'Other question'",
        timeout=TIMEOUT,
    )
    assert not relay.before_sync, "the frames went to the page ahead of the server's answer"
    assert INJECTED not in (page.text_content("#notice") or "")
    assert first != second
    # the new conversation's own frames apply: a reply streams in and finishes
    send(page, "more")
    wait_reply_done(page, 2)
    assert page.locator("#messages .msg").count() == 4
    assert INJECTED not in (page.text_content("#notice") or "")
