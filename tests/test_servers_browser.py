"""Model servers that come and go, as a person sees them in the browser: a server started
after htmxchat shows up in the open page's picker, one that stops shows as down there and on
the Servers page, and a message sent meanwhile is kept, says the server is not answering,
and is answered after Retry once the server is back."""

from __future__ import annotations

from pathlib import Path

import pytest

from htmxchat.answering.connections import Connections
from tests.helpers import (
    FakeModelServer,
    ServerProcess,
    at,
    free_port,
    send,
    wait_connected,
)

pytestmark = pytest.mark.browser
WITHIN = 5_000  # ms: a server that comes or goes shows within five seconds


def groups(page) -> list[str]:
    return page.eval_on_selector_all("#model optgroup", "gs => gs.map(g => g.label)")


def test_a_server_that_comes_and_goes_shows_in_the_open_page(page, browser, data_dir: Path):
    port = free_port()
    Connections(data_dir).add("Late", f"http://127.0.0.1:{port}/v1", None)
    server = ServerProcess(data_dir, "--port", "0")
    try:
        page.goto(at(server, ""))
        wait_connected(page)
        assert "Late (down)" in groups(page)
        with FakeModelServer(port) as model:
            # Started after htmxchat: no reload, no click.
            page.wait_for_selector(
                "#model optgroup[label=Late] option[value='late|fake-model']",
                state="attached",
                timeout=WITHIN,
            )
            page.select_option("#model", "late|fake-model")
            send(page, "Hello, late server")
            page.wait_for_function(
                "() => [...document.querySelectorAll('article.msg-assistant')].some("
                "a => a.dataset.status === 'complete' && a.textContent.includes('fake model'))",
                timeout=15_000,
            )
            assert page.text_content("#bot-label") == "Late"
            model.stop()
            # Stopped: the picker and the Servers page say so, the choice stays.
            page.wait_for_selector(
                "#model optgroup[label='Late (down)']", state="attached", timeout=WITHIN
            )
            assert page.eval_on_selector("#model", "s => s.value") == "late|fake-model"
            servers = browser.new_page()
            servers.goto(at(server, "settings"))
            servers.wait_for_selector("[data-connection=late][data-state=down]", timeout=WITHIN)
            servers.close()
        # Sent while it is down: kept, explained, and no other bot answers.
        send(page, "Are you back?")
        failed = page.wait_for_selector("article.msg-assistant[data-status=error]", timeout=15_000)
        assert "is not answering" in failed.text_content()
        assert "Edit button on the Servers page" in failed.text_content()
        assert page.locator("article.msg-user").last.text_content().count("Are you back?") == 1
        assert page.locator("article.msg-assistant[data-status=complete]").count() == 1
        with FakeModelServer(port):
            page.wait_for_selector("#model optgroup[label=Late]", state="attached", timeout=WITHIN)
            page.click("article.msg-assistant[data-status=error] button.retry")
            page.wait_for_function(
                "() => document.querySelectorAll('article.msg-assistant[data-status=complete]')"
                ".length === 2",
                timeout=15_000,
            )
    finally:
        page.close()  # first: a page left open would log each refused reconnection
        server.stop()
