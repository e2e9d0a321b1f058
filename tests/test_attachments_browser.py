"""Attachments in a browser: pick, drop, paste, remove, refuse and send files."""

from __future__ import annotations

import base64
import json
import urllib.request

import pytest

from tests.helpers import TIMEOUT, ServerProcess, at, wait_connected, wait_reply_done

pytestmark = pytest.mark.browser

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


def chip_names(page) -> list[str]:
    return page.eval_on_selector_all(
        "#attach-chips .attach-chip .attach-name", "els => els.map(e => e.textContent)"
    )


def wait_chips_ready(page, count: int) -> None:
    page.wait_for_function(
        "n => document.querySelectorAll('#attach-chips .attach-chip[data-state=ready]').length"
        " === n",
        arg=count,
        timeout=TIMEOUT,
    )


def test_pick_remove_and_send_files(server: ServerProcess, page) -> None:
    page.goto(at(server, "/"))
    wait_connected(page)
    page.fill("#composer-input", "Please look")
    # The paperclip is a real button with an accessible name, reachable by keyboard.
    button = page.get_by_role("button", name="Attach files")
    assert button.is_visible()
    page.set_input_files(
        "#attach-input",
        [
            {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"walrus notes"},
            {"name": "dot.png", "mimeType": "image/png", "buffer": PNG},
            {"name": "extra.md", "mimeType": "text/markdown", "buffer": b"# extra"},
        ],
    )
    wait_chips_ready(page, 3)
    assert chip_names(page) == ["notes.txt", "dot.png", "extra.md"]
    thumb = page.get_attribute("#attach-chips .attach-image img", "src")
    assert thumb and thumb.startswith("blob:")
    remove = page.get_by_role("button", name="Remove extra.md")
    remove.focus()
    page.keyboard.press("Enter")
    assert chip_names(page) == ["notes.txt", "dot.png"]
    page.focus("#composer-input")
    page.press("#composer-input", "Enter")
    wait_reply_done(page, 1)
    # the chips became part of the sent message; the composer is empty again
    user = page.locator("article.msg-user").last
    assert user.locator(".file-chip .file-name").all_text_contents() == ["notes.txt"]
    image = user.locator(".msg-file-image img")
    assert image.get_attribute("src", timeout=TIMEOUT).startswith("/attachments/")
    page.wait_for_function("() => document.querySelector('.msg-file-image img').naturalWidth > 0")
    assert chip_names(page) == [] and page.input_value("#attach-ids") == ""
    # the demo bot saw both files
    reply = page.locator("article.msg-assistant .msg-body").last.text_content() or ""
    assert "notes.txt" in reply and "dot.png" in reply
    # everything the page loaded came from this server (thumbnails are local blob: URLs)
    assert all(
        url.startswith((server.base_url, "blob:", "data:")) for url in page.requested_urls
    ), page.requested_urls
    # stored: a reload shows them again
    page.reload()
    wait_connected(page)
    assert page.locator("article.msg-user .file-chip").count() == 1
    assert page.locator("article.msg-user .msg-file-image img").count() == 1
    conversation = page.get_attribute("#pane", "data-conversation")
    request = urllib.request.Request(
        f"{server.base_url}c/{conversation}/export.json", headers=server.headers
    )
    with urllib.request.urlopen(request) as response:
        messages = json.loads(response.read())["messages"]
    assert [a["name"] for a in messages[0]["attachments"]] == ["notes.txt", "dot.png"]


def test_drop_and_paste_add_files(server: ServerProcess, page) -> None:
    page.goto(at(server, "/"))
    wait_connected(page)
    page.evaluate(
        """() => {
        const dt = new DataTransfer();
        dt.items.add(new File(["a,b\\n1,2"], "table.csv", {type: "text/csv"}));
        const target = document.querySelector("#transcript");
        const init = {dataTransfer: dt, bubbles: true, cancelable: true};
        target.dispatchEvent(new DragEvent("dragover", init));
        target.dispatchEvent(new DragEvent("drop", init));
    }"""
    )
    wait_chips_ready(page, 1)
    page.evaluate(
        """(encoded) => {
        const bytes = Uint8Array.from(atob(encoded), (c) => c.charCodeAt(0));
        const dt = new DataTransfer();
        dt.items.add(new File([bytes], "image.png", {type: "image/png"}));
        const init = {clipboardData: dt, bubbles: true, cancelable: true};
        document.querySelector("#composer-input").dispatchEvent(new ClipboardEvent("paste", init));
    }""",
        base64.b64encode(PNG).decode(),
    )
    wait_chips_ready(page, 2)
    assert chip_names(page) == ["table.csv", "image.png"]
    assert page.locator("#attach-chips .attach-image img").count() == 1


def test_refused_files_say_why_and_keep_the_text(server: ServerProcess, page) -> None:
    page.goto(at(server, "/"))
    wait_connected(page)
    page.fill("#composer-input", "my words stay")
    page.set_input_files(
        "#attach-input",
        [{"name": "tool.exe", "mimeType": "application/octet-stream", "buffer": bytes(range(256))}],
    )
    page.wait_for_function(
        "() => document.querySelector('#notice').textContent.includes('tool.exe')",
        timeout=TIMEOUT,
    )
    assert "neither a text file" in (page.text_content("#notice") or "")
    page.set_input_files(
        "#attach-input",
        [{"name": f"f{i}.txt", "mimeType": "text/plain", "buffer": b"x"} for i in range(11)],
    )
    page.wait_for_function(
        "() => document.querySelector('#notice').textContent.includes('at most 10 files')",
        timeout=TIMEOUT,
    )
    assert chip_names(page) == []
    assert page.input_value("#composer-input") == "my words stay"


def test_send_waits_for_uploads_then_goes(server: ServerProcess, page) -> None:
    page.goto(at(server, "/"))
    wait_connected(page)
    # hold the upload until the test lets it go
    held = []
    page.route("**/attachments", lambda route: held.append(route))
    page.fill("#composer-input", "with a file")
    page.set_input_files(
        "#attach-input", [{"name": "slow.txt", "mimeType": "text/plain", "buffer": b"slow"}]
    )
    page.wait_for_function("() => document.querySelector('.attach-chip')", timeout=TIMEOUT)
    page.press("#composer-input", "Enter")
    page.wait_for_function(
        "() => document.querySelector('#notice').textContent.includes('still uploading')",
        timeout=TIMEOUT,
    )
    assert page.input_value("#composer-input") == "with a file"
    for _ in range(50):
        if held:
            break
        page.wait_for_timeout(100)
    held[0].continue_()
    wait_chips_ready(page, 1)
    page.press("#composer-input", "Enter")
    wait_reply_done(page, 1)
    assert page.locator("article.msg-user .file-name").all_text_contents() == ["slow.txt"]
