"""The settings page in a browser: add a server, pick its model, the answer comes from it and
the top bar names it; a down server shows why; name a chat with its model; remove a server."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import (
    TIMEOUT,
    ServerProcess,
    at,
    received,
    send,
    wait_connected,
    wait_reply_done,
)

pytestmark = pytest.mark.browser

SECRET = "sk-browser-secret-8642"


def add_server(page, name: str, base_url: str, key: str = "") -> None:
    page.fill("form.add-connection input[name=name]", name)
    page.fill("form.add-connection input[name=base_url]", base_url)
    page.fill("form.add-connection input[name=api_key]", key)
    page.click("form.add-connection button[type=submit]")


def test_a_server_added_on_the_page_answers_and_the_top_bar_names_it(
    page, data_dir: Path, model_server: str, second_server: str
) -> None:
    server = ServerProcess(
        data_dir, "--port", "0", "--base-url", model_server, env={"HTMXCHAT_BOT": "auto"}
    )
    page.goto(at(server, "settings"))
    assert page.locator(".server").count() == 2  # the default and the demo bot
    add_server(page, "Second", second_server, SECRET)
    page.wait_for_selector("[data-connection=second][data-state=up]", timeout=TIMEOUT)
    assert "fake-model" in page.inner_text("[data-connection=second]")
    add_server(page, "Broken", "http://127.0.0.1:9/v1")
    down = page.wait_for_selector("[data-connection=broken][data-state=down]", timeout=TIMEOUT)
    assert "is not answering" in down.inner_text()
    assert SECRET not in page.content()
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        page.screenshot(path=f"/tmp/settings-{scheme}.png", full_page=True)
    page.set_viewport_size({"width": 360, "height": 740})
    page.screenshot(path="/tmp/settings-narrow.png", full_page=True)
    page.set_viewport_size({"width": 1100, "height": 760})
    page.emulate_media(color_scheme="light")
    # Edit in place: rename it; the key stays.
    page.click("[data-connection=second] >> text=Edit")
    page.wait_for_selector("form.edit-connection", timeout=TIMEOUT)
    page.screenshot(path="/tmp/settings-edit.png")
    page.fill("form.edit-connection input[name=name]", "Second server")
    page.click("form.edit-connection button[type=submit]")
    page.wait_for_selector("text=Saved Second server.", timeout=TIMEOUT)
    assert "sk-…8642" in page.inner_text("[data-connection=second]")
    # The chat: every server's models, grouped; the down one says so.
    page.goto(server.base_url)
    wait_connected(page)
    labels = page.eval_on_selector_all("#model optgroup", "gs => gs.map(g => g.label)")
    assert labels[1:] == ["Demo bot", "Second server", "Broken (down)"]
    assert page.locator("#model optgroup[data-connection=broken] option[disabled]").count() == 1
    page.select_option("#model", "second|fake-model")
    send(page, "To the second one")
    wait_reply_done(page, 1)
    assert [b["messages"][-1]["content"] for b in received(second_server)] == ["To the second one"]
    assert received(model_server) == []
    page.wait_for_function(
        "() => document.querySelector('#bot-label').textContent === 'Second server'",
        timeout=TIMEOUT,
    )
    assert page.get_attribute("#composer-input", "placeholder") == "Message fake-model…"
    page.screenshot(path="/tmp/picker-second.png")
    # Named by its own model, only because the user asked.
    page.click(".menu-button")
    page.click(".chat-settings-button")
    page.click("button.name-with-model", timeout=TIMEOUT)
    page.wait_for_selector(".title-naming .settings-saved", timeout=TIMEOUT)
    assert len(received(second_server)) == 2
    page.wait_for_function(
        "() => document.querySelector('#conversation-title').textContent.startsWith('Hello')",
        timeout=TIMEOUT,
    )
    page.screenshot(path="/tmp/named.png")
    # After a reload the conversation still uses the second server.
    page.reload()
    wait_connected(page)
    assert page.inner_text("#bot-label") == "Second server"
    assert page.input_value("#model") == "second|fake-model"
    # Remove the broken one (after confirming).
    page.goto(at(server, "settings"))
    page.click("[data-connection=broken] >> text=Remove")
    page.click("#confirm .confirm-ok")
    page.wait_for_selector("text=Removed Broken.", timeout=TIMEOUT)
    assert page.locator("[data-connection=broken]").count() == 0
    assert SECRET not in page.content()


def test_an_open_page_follows_servers_changed_in_another_tab(
    page, data_dir: Path, model_server: str, second_server: str
) -> None:
    """No reload needed: a server added, broken or removed in another tab shows in this
    page's picker at once, and the page's own choice stays while its server is listed."""
    server = ServerProcess(
        data_dir, "--port", "0", "--base-url", model_server, env={"HTMXCHAT_BOT": "auto"}
    )
    page.goto(at(server, ""))
    wait_connected(page)
    page.evaluate("() => { window.notReloaded = true; }")
    page.select_option("#model", "demo|")
    settings = page.context.new_page()
    settings.goto(at(server, "settings"))
    add_server(settings, "Second", second_server)
    settings.wait_for_selector("[data-connection=second][data-state=up]", timeout=TIMEOUT)
    page.wait_for_selector(
        "#model optgroup[data-connection=second]", state="attached", timeout=TIMEOUT
    )
    assert page.input_value("#model") == "demo|"  # the page's choice is kept
    page.select_option("#model", "second|fake-model")
    # Broken: its group says so, and this page still has its model chosen under it.
    settings.click("[data-connection=second] >> text=Edit")
    settings.fill("form.edit-connection input[name=base_url]", "http://127.0.0.1:9/v1")
    settings.click("form.edit-connection button[type=submit]")
    settings.wait_for_selector("text=Saved Second.", timeout=TIMEOUT)
    page.wait_for_selector(
        "#model optgroup[label='Second (down)']", state="attached", timeout=TIMEOUT
    )
    assert page.input_value("#model") == "second|fake-model"
    # Removed: gone from the picker; the page falls back to the default server's model.
    settings.click("[data-connection=second] >> text=Remove")
    settings.click("#confirm .confirm-ok")
    page.wait_for_function(
        "() => !document.querySelector('#model optgroup[data-connection=second]')",
        timeout=TIMEOUT,
    )
    assert page.input_value("#model") == "fake-model"
    assert page.evaluate("() => window.notReloaded") is True
    send(page, "Still here")
    wait_reply_done(page, 1)
    assert [b["messages"][-1]["content"] for b in received(model_server)] == ["Still here"]
