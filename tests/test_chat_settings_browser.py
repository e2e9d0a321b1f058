"""Chat settings in a browser: set a system prompt, send, the model gets it; a preset."""

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


def open_settings(page) -> None:
    """Chat settings open inside the top bar's menu."""
    page.click(".menu-button")
    page.click(".chat-settings-button")
    page.wait_for_selector(".chat-settings-form", timeout=TIMEOUT)


def test_a_system_prompt_set_in_the_panel_reaches_the_model(
    page, data_dir: Path, model_server: str
) -> None:
    server = ServerProcess(
        data_dir, "--port", "0", "--base-url", model_server, env={"HTMXCHAT_BOT": "auto"}
    )
    page.goto(at(server, ""))
    wait_connected(page)
    open_settings(page)
    page.fill("textarea[name=system_prompt]", "Answer like a pirate.")
    page.fill("input[name=seed]", "7")
    page.click(".btn-save")
    page.wait_for_selector(".settings-saved", timeout=TIMEOUT)
    page.keyboard.press("Escape")  # close the menu
    send(page, "Hello there")
    wait_reply_done(page, 1)
    body = received(model_server)[-1]
    assert body["messages"][0] == {"role": "system", "content": "Answer like a pirate."}
    assert body["seed"] == 7
    page.click(".answer-details summary")
    assert "Answer like a pirate." in page.inner_text(".answer-details")
    # The model picker lists the server's models; the chosen one is the one sent.
    assert page.locator("#model option").all_inner_texts() == ["fake-model", "Canned replies"]
    assert body["model"] == "fake-model"
    # A preset in one click: its system prompt replaces ours for the next answer.
    open_settings(page)
    page.click("button.preset[value=concise]")
    page.wait_for_selector("text=Applied the Concise preset", timeout=TIMEOUT)
    assert "briefly" in page.input_value("textarea[name=system_prompt]")
    page.keyboard.press("Escape")
    send(page, "And again")
    wait_reply_done(page, 2)
    body = received(model_server)[-1]
    assert "briefly" in body["messages"][0]["content"] and body["max_tokens"] == 256
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        open_settings(page)
        page.screenshot(path=f"/tmp/chat-settings-{scheme}.png")
        page.keyboard.press("Escape")
    page.set_viewport_size({"width": 360, "height": 740})
    open_settings(page)
    page.screenshot(path="/tmp/chat-settings-narrow.png")


def test_a_server_added_on_the_settings_page_is_in_the_picker_and_answers(
    page, data_dir: Path, model_server: str, second_server: str
) -> None:
    server = ServerProcess(
        data_dir, "--port", "0", "--base-url", model_server, env={"HTMXCHAT_BOT": "auto"}
    )
    page.goto(at(server, "settings"))
    page.fill("input[name=name]", "Second")
    page.fill("input[name=base_url]", second_server)
    page.fill("input[name=api_key]", "sk-browser-secret-4321")
    page.click("form.add-connection button[type=submit]")
    page.wait_for_selector("[data-connection=second]", timeout=TIMEOUT)
    assert "sk-…4321" in page.inner_text("[data-connection=second]")
    assert "sk-browser-secret-4321" not in page.content()
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        page.screenshot(path=f"/tmp/servers-{scheme}.png")
    page.goto(server.base_url)
    wait_connected(page)
    labels = page.eval_on_selector_all("#model optgroup", "gs => gs.map(g => g.label)")
    default_label = "127.0.0.1:" + model_server.split(":")[2].split("/")[0]
    assert labels == [default_label, "Demo bot", "Second"]
    page.select_option("#model", "second|fake-model")
    send(page, "To the second one")
    wait_reply_done(page, 1)
    assert [b["messages"][-1]["content"] for b in received(second_server)] == ["To the second one"]
    assert received(model_server) == []
    page.screenshot(path="/tmp/picker.png")
