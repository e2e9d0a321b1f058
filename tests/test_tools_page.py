"""The Tools page and the chat settings' tool fields, over HTTP."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from htmxchat.config import Settings
from htmxchat.ids import new_id
from htmxchat.keys import tools_key
from htmxchat.store import ChatStore
from htmxchat.tools import chat_tools
from tests.helpers import ScriptedBot, logged_in_client

ROOT = Path(__file__).resolve().parent.parent


def write(path: Path, text: str) -> None:
    """Write a small file (sync: a test's own set-up, not the server's loop)."""
    path.write_text(text, "utf-8")


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return tmp_path / "mcp.json"


@pytest.fixture
async def tools_client(
    store: ChatStore, settings: Settings, config: Path, aiohttp_client, aiohttp_server
) -> TestClient:
    from htmxchat.app import create_app

    app = create_app(replace(settings, mcp_config=config), bot=ScriptedBot(), store=store)
    return await logged_in_client(aiohttp_client, aiohttp_server, app, settings.data_dir)


async def test_without_a_file_the_page_says_where_and_how(
    tools_client: TestClient, config: Path
) -> None:
    html = await (await tools_client.get("/tools")).text()
    assert str(config) in html and "does not exist yet" in html and "mcpServers" in html


async def test_a_bad_file_is_explained(tools_client: TestClient, config: Path) -> None:
    write(config, '{"mcpServers": {"x": {"command": 5}}}')
    html = await (await tools_client.get("/tools")).text()
    assert "&#34;command&#34; must be a program name or path" in html


async def test_without_the_sdk_the_page_says_how_to_add_it(tools_client: TestClient) -> None:
    tools_client.app[tools_key].sdk = False
    html = await (await tools_client.get("/tools")).text()
    assert "pipx install &#39;htmxchat[mcp]&#39;" in html


async def test_servers_are_listed_and_switched(tools_client: TestClient, config: Path) -> None:
    entry = {"command": sys.executable, "args": ["-m", "tests.mcp_server"]}
    write(config, json.dumps({"mcpServers": {"test": entry}}))
    html = await (await tools_client.get("/tools")).text()
    assert 'data-server="test" data-state="not started"' in html
    assert " -m tests.mcp_server" in html
    resp = await tools_client.post("/tools/test/switch", data={"on": "0"})
    assert 'data-state="off"' in await resp.text()
    assert (await tools_client.post("/tools/nope/switch", data={"on": "1"})).status == 404
    # No route takes a command line.
    assert (await tools_client.post("/tools", data={"command": "sh"})).status in (404, 405)


async def test_chat_settings_choose_the_servers_none_by_default(
    tools_client: TestClient, config: Path, store: ChatStore
) -> None:
    write(config, json.dumps({"mcpServers": {"a": {"command": "x"}, "b": {"url": "http://h/"}}}))
    conversation = new_id()
    html = await (await tools_client.get(f"/c/{conversation}/settings")).text()
    assert 'name="tool_server" value="a">' in html and "checked" not in html
    form = {"tool_server": "b", "tool_rounds": "3", "system_prompt": "x"}
    resp = await tools_client.post(f"/c/{conversation}/settings", data=form)
    assert 'value="b" checked' in await resp.text()
    stored = await store.chat_settings(conversation)
    assert chat_tools.from_stored(stored) == chat_tools.ChatTools(("b",), 3)
    assert stored["system_prompt"] == "x"
    bad = await tools_client.post(f"/c/{conversation}/settings", data={"tool_rounds": "0"})
    assert "Tool rounds must be a whole number from 1 to 50" in await bad.text()
