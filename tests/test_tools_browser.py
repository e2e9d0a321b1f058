"""Tools in a browser: the Tools page, a chat turning a server on, calls asked with Allow /
Deny / Always allow, Stop during a call, reload and a second tab in the middle of a round."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import (
    MCP_TEST_SERVER,
    TIMEOUT,
    FakeModelServer,
    ServerProcess,
    at,
    send,
    stored,
    wait_connected,
    wait_reply_done,
    write_mcp_config,
)

pytestmark = pytest.mark.browser
pytest.importorskip("mcp")


@pytest.fixture
def tool_model() -> Iterator[str]:
    """tests/fake_openai.py answering "/call NAME ARGS" with tool calls, in its own process."""
    with FakeModelServer(tools=True) as server:
        yield server.base_url


@pytest.fixture
def app(data_dir: Path, tmp_path: Path, tool_model: str) -> ServerProcess:
    config = write_mcp_config(tmp_path / "mcp.json", {"test": MCP_TEST_SERVER})
    return ServerProcess(
        data_dir,
        "--port", "0", "--base-url", tool_model, "--mcp-config", str(config),
        env={"HTMXCHAT_BOT": "auto"},
    )  # fmt: skip


def watch_errors(page) -> list[str]:
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    return errors


def turn_on_tools(page) -> None:
    page.click(".menu-button")
    page.click(".chat-settings-button")
    page.check(".chat-tools input[value=test]", timeout=TIMEOUT)
    page.click(".chat-settings-form button.btn-save")
    page.wait_for_selector(".chat-settings-form .settings-saved", timeout=TIMEOUT)
    page.keyboard.press("Escape")


def asking(page, count: int = 1) -> None:
    page.wait_for_function(
        "n => document.querySelectorAll('.tool-ask').length >= n", arg=count, timeout=TIMEOUT
    )


def last_answer(page) -> str:
    return page.inner_text("article.msg-assistant:last-of-type .msg-body").strip()


def test_tools_page_lists_servers_and_their_tools(page, app: ServerProcess) -> None:
    errors = watch_errors(page)
    page.goto(at(app, "tools"))
    server = page.locator("[data-server=test]")
    assert server.get_attribute("data-state") == "not started"
    assert "starts when a chat needs it" in server.inner_text()
    server.locator("text=Start and list its tools").click()
    page.wait_for_selector("[data-server=test][data-state=running]", timeout=TIMEOUT)
    text = page.inner_text("[data-server=test]")
    assert "add" in text and "Add two integers." in text and "echo" in text
    page.click("[data-server=test] .tool-switch")
    page.wait_for_selector("[data-server=test][data-state=off]", timeout=TIMEOUT)
    page.click("[data-server=test] .tool-switch")
    page.wait_for_selector("[data-server=test][data-state='not started']", timeout=TIMEOUT)
    page.screenshot(path="/tmp/tools-page.png", full_page=True)
    assert errors == []


def test_allow_deny_and_always_allow_in_the_answer(page, app: ServerProcess) -> None:
    errors = watch_errors(page)
    page.goto(app.url)
    wait_connected(page)
    turn_on_tools(page)
    send(page, '/call test__add {"a":2,"b":40}')
    asking(page)
    assert page.inner_text(".tool-call .tool-args") == '{"a":2,"b":40}'
    assert page.inner_text(".tool-call .tool-state") == "waiting for you"
    page.screenshot(path="/tmp/tools-asking.png")
    page.click(".tool-ask >> text=Allow")
    wait_reply_done(page, 1)
    assert last_answer(page) == "Tools said: 42"
    assert page.inner_text(".tool-call .tool-state") == "ran"
    # Denied: the model is told; what the model sent is shown as text.
    send(page, '/call test__echo {"text":"<img/src=x/onerror=alert(1)>"}')
    asking(page)
    assert "<img/src=x/onerror=alert(1)>" in page.inner_text(".tool-ask >> xpath=..")
    page.click(".tool-ask >> text=Deny")
    wait_reply_done(page, 2)
    assert last_answer(page) == "Tools said: The user declined to run this tool call."
    # Parallel calls: Always allow on the first runs the second one (same tool) too.
    send(page, '/call test__add {"a":1,"b":1} test__add {"a":2,"b":2}')
    asking(page, 2)
    page.locator(".tool-ask").first.locator("text=Always allow").click()
    wait_reply_done(page, 3)
    assert last_answer(page) == "Tools said: 2 | 4"
    states = page.eval_on_selector_all(
        "article.msg-assistant:last-of-type .tool-state", "els => els.map(e => e.textContent)"
    )
    assert states == ["ran (always allowed from now on)", "ran (always allowed)"]
    # An image comes back inline, from its own data; a tool that fails says so in words.
    send(page, "/call test__image {} test__fail {}")
    asking(page, 2)
    page.locator(".tool-allow").first.click()
    page.wait_for_function("() => document.querySelectorAll('.tool-allow').length === 1")
    page.locator(".tool-allow").first.click()
    wait_reply_done(page, 4)
    image = page.locator("article.msg-assistant:last-of-type img.tool-image")
    assert image.get_attribute("src").startswith("data:image/png;base64,")
    assert image.evaluate("img => img.complete && img.naturalWidth") == 1
    failed = page.locator("article.msg-assistant:last-of-type .tool-call >> nth=1")
    assert failed.locator(".tool-state").inner_text() == "failed"
    assert "Error executing tool fail" in (failed.locator(".tool-error").text_content() or "")
    # Kept: a reload shows the same calls and results.
    page.reload()
    wait_connected(page)
    assert page.locator(".tool-call").count() == 6
    assert page.locator(".tool-call[data-state=denied]").count() == 1
    page.locator(".tool-call").first.locator("summary").click()
    assert page.inner_text(".tool-call >> nth=0 >> .tool-result") == "42"
    assert errors == []


def test_stop_during_a_call_and_a_second_tab_mid_round(browser, app: ServerProcess) -> None:
    first = browser.new_context(viewport={"width": 1100, "height": 760}).new_page()
    errors = watch_errors(first)
    first.goto(app.url)
    wait_connected(first)
    turn_on_tools(first)
    send(first, '/call test__slow {"seconds":30}')
    asking(first)
    # Another tab joins in the middle of the round: it shows the question and can answer.
    second = first.context.new_page()
    second.goto(first.url)
    wait_connected(second)
    asking(second)
    second.click(".tool-ask >> text=Allow")
    first.wait_for_selector(".tool-call[data-state=running]", timeout=TIMEOUT)
    first.reload()  # a reload while the tool runs shows it running
    wait_connected(first)
    first.wait_for_selector(".tool-call[data-state=running]", timeout=TIMEOUT)
    first.keyboard.press("Escape")  # Stop
    first.wait_for_selector("article.msg-assistant[data-status=stopped]", timeout=5_000)
    second.wait_for_selector(".tool-call[data-state=stopped]", timeout=5_000)
    conversation = first.url.rsplit("/", 1)[-1]
    messages = stored(app, conversation)
    assert messages[-1]["tool_calls"][0]["state"] == "stopped"
    assert errors == []
    first.context.close()
