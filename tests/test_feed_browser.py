"""The conversation feed in a real browser: other pages update by themselves, over the socket."""

from __future__ import annotations

import pytest

from tests.helpers import (
    TIMEOUT,
    ServerProcess,
    at,
    seed,
    send,
    texts,
    wait_connected,
    wait_reply_done,
)

pytestmark = pytest.mark.browser


def http_requests_of(page) -> list[str]:
    """Every HTTP request the page makes from now on (the WebSocket's frames are not)."""
    seen: list[str] = []
    page.on("request", lambda request: seen.append(request.url))
    return seen


def test_a_new_conversation_appears_in_another_page_without_it_asking(
    server: ServerProcess, page, data_dir
) -> None:
    existing = seed(data_dir, ["Old question", "Old answer"])
    page.goto(at(server, f"c/{existing}"))
    wait_connected(page)
    other = page.context.new_page()
    other.goto(at(server, f"c/{existing}"))
    wait_connected(other)
    asked = http_requests_of(other)

    page.click("#new-chat")
    page.wait_for_function(
        "c => document.querySelector('#app').dataset.conversation !== c", arg=existing
    )
    fresh = page.get_attribute("#app", "data-conversation")
    send(page, "Pushed to every tab")
    other.wait_for_selector(f"#conv-{fresh}:nth-child(2)", timeout=2_000)  # under "Today"
    assert other.text_content(f"#conv-{fresh} .conv-link") == "Pushed to every tab"
    # the other page still shows its own conversation, and it is not marked current there
    assert other.get_attribute("#app", "data-conversation") == existing
    assert other.get_attribute(f"#conv-{fresh} .conv-link", "aria-current") is None
    wait_reply_done(page, 1)

    # a rename in one page reaches the other, and so does the new order after a message
    page.hover(f"#conv-{existing}")  # the item's buttons show on hover
    page.click(f"#conv-{existing} .icon-btn[title=Rename]")
    page.fill(f"#conv-{existing} input[name=title]", "Renamed elsewhere")
    page.press(f"#conv-{existing} input[name=title]", "Enter")
    other.wait_for_function(
        "() => document.querySelector('#conversation-title').textContent === 'Renamed elsewhere'",
        timeout=2_000,
    )
    assert other.text_content(f"#conv-{existing} .conv-link") == "Renamed elsewhere"
    assert asked == [], f"the other page asked the server: {asked}"
    other.close()


def test_deleting_a_conversation_closes_it_in_the_page_showing_it(
    server: ServerProcess, page, data_dir
) -> None:
    doomed = seed(data_dir, ["Doomed question", "Doomed answer"])
    keep = seed(data_dir, ["Kept question", "Kept answer"])
    page.goto(at(server, f"c/{keep}"))
    wait_connected(page)
    reader = page.context.new_page()
    reader.goto(at(server, f"c/{doomed}"))
    wait_connected(reader)
    assert texts(reader) == ["Doomed question", "Doomed answer"]

    page.hover(f"#conv-{doomed}")
    page.click(f"#conv-{doomed} .icon-danger")
    page.click("#confirm .confirm-ok")
    reader.wait_for_selector(f"#conv-{doomed}", state="detached", timeout=2_000)
    reader.wait_for_function(
        "() => document.querySelector('#notice').textContent.includes('was deleted')",
        timeout=TIMEOUT,
    )
    assert texts(reader) == []
    fresh = reader.get_attribute("#app", "data-conversation")
    assert fresh != doomed and reader.url.endswith(f"/c/{fresh}")
    # the reader can go on writing in the new, empty conversation it was given
    send(reader, "Starting over")
    wait_reply_done(reader, 1)
    assert page.is_visible(f"#conv-{keep}") and not page.is_visible(f"#conv-{doomed}")
    reader.close()
