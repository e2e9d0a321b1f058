"""MCP servers: mcp.json, starting on first need, calls, failures, restarts, environment."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from htmxchat.tools.client import child_environment, stdio_launch
from htmxchat.tools.config import ServerEntry, ToolConfigError, load_config
from htmxchat.tools.servers import ToolServers
from tests.helpers import MCP_TEST_SERVER, ROOT, write_mcp_config

pytest.importorskip("mcp")


@pytest.fixture
async def servers(tmp_path: Path) -> AsyncIterator[ToolServers]:
    config = write_mcp_config(
        tmp_path / "mcp.json",
        {
            "test": MCP_TEST_SERVER,
            "broken": {**MCP_TEST_SERVER, "args": ["-m", "tests.mcp_server", "--fail-start"]},
            "missing": {"command": str(tmp_path / "no-such-program")},
        },
    )
    manager = ToolServers(config, tmp_path / "tools.json")
    yield manager
    await manager.close()


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("{", "not valid JSON"),
        ("[]", '"mcpServers"'),
        ('{"mcpServers": {"a b": {"command": "x"}}}', "letters, digits"),
        ('{"mcpServers": {"a": {}}}', 'either "command"'),
        ('{"mcpServers": {"a": {"command": "x", "url": "http://h"}}}', "not both"),
        ('{"mcpServers": {"a": {"url": "file:///etc"}}}', "http://"),
        ('{"mcpServers": {"a": {"command": "x", "args": "-v"}}}', "list of strings"),
        ('{"mcpServers": {"a": {"command": "x", "env": {"K": 1}}}}', "object of strings"),
    ],
)
def test_bad_config_files_say_what_to_fix(tmp_path: Path, text: str, words: str) -> None:
    path = tmp_path / "mcp.json"
    path.write_text(text, "utf-8")
    with pytest.raises(ToolConfigError, match=words) as info:
        load_config(path)
    assert str(path) in str(info.value)


def test_config_in_the_common_notation(tmp_path: Path) -> None:
    path = tmp_path / "mcp.json"
    path.write_text(
        json.dumps(
            {
                "mcpServers": {
                    "files": {"command": "npx", "args": ["-y", "srv"], "env": {"K": "v"}},
                    "web": {
                        "url": "https://example.org/mcp",
                        "headers": {"Authorization": "Bearer tok-9"},
                    },
                }
            }
        ),
        "utf-8",
    )
    config = load_config(path)
    files, web = config.servers
    assert (files.transport, files.where, dict(files.env)) == ("stdio", "npx -y srv", {"K": "v"})
    assert (web.transport, web.where, dict(web.headers)) == (
        "http",
        "https://example.org/mcp",
        {"Authorization": "Bearer tok-9"},
    )
    assert "tok-9" not in repr(web)
    assert load_config(tmp_path / "absent.json").servers == ()


def test_child_environment_is_the_entry_plus_path_and_home() -> None:
    entry = ServerEntry("s", command="prog", env={"OWN": "1"})
    environ = {"PATH": "/bin", "HOME": "/h", "HTMXCHAT_API_KEY": "secret", "OPENAI_API_KEY": "k"}
    assert child_environment(entry, environ) == {"PATH": "/bin", "HOME": "/h", "OWN": "1"}


@pytest.mark.skipif(sys.platform == "win32", reason="env -i is POSIX")
def test_stdio_launch_passes_nothing_else() -> None:
    entry = ServerEntry(
        "s", command=sys.executable, args=("-c", "import os; print(sorted(os.environ))")
    )
    command, args = stdio_launch(entry, {"PATH": "/usr/bin:/bin", "HOME": "/h", "SECRET": "x"})
    out = subprocess.run([command, *args], capture_output=True, text=True, check=True).stdout
    assert set(eval(out)) - {"LC_CTYPE"} == {"PATH", "HOME"}  # Python itself may set LC_CTYPE


async def test_started_on_first_need_and_called(servers: ToolServers) -> None:
    assert [s.state for s in servers.status()] == ["not started"] * 3
    found, problems = await servers.tools(["test"])
    assert {t.name for t in found["test"]} >= {"add", "echo", "slow", "fail", "image", "crash"}
    assert "Add two integers." in [t.description for t in found["test"]]
    assert problems == {}
    assert servers.status()[0].state == "running"
    result = await servers.call("test", "add", {"a": 2, "b": 3})
    assert (result.text, result.error) == ("5", False)
    image = await servers.call("test", "image", {})
    assert image.parts[0].kind == "image" and image.parts[0].mime == "image/png"
    failure = await servers.call("test", "fail", {})
    assert failure.error


async def test_environment_of_a_stdio_server(
    servers: ToolServers, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTMXCHAT_API_KEY", "sk-secret")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-other")
    result = await servers.call("test", "env", {})
    names = set(result.text.split())
    assert names - {"LC_CTYPE"} == {"PATH", "HOME", "PYTHONPATH"}


async def test_failing_servers_say_why(servers: ToolServers) -> None:
    found, problems = await servers.tools(["broken", "missing"])
    assert found == {}
    assert "cannot start: the test asked me to fail" in problems["broken"]
    assert "no-such-program" in problems["missing"] or "cannot be run" in problems["missing"]
    states = {s.entry.name: (s.state, s.reason) for s in servers.status()}
    assert states["broken"][0] == "failed" and "asked me to fail" in (states["broken"][1] or "")
    result = await servers.call("broken", "add", {"a": 1, "b": 1})
    assert result.error and "cannot run" in result.text


async def test_a_crashed_server_is_restarted_on_the_next_call_and_says_so(
    servers: ToolServers,
) -> None:
    crashed = await servers.call("test", "crash", {})
    assert crashed.error and "stopped" in crashed.text and "crashing on purpose" in crashed.text
    assert servers.status()[0].state == "failed"
    again = await servers.call("test", "add", {"a": 1, "b": 1})
    assert again.parts[0].text == "2" and "started again" in again.text
    assert servers.status()[0].state == "running"


async def test_switched_off_servers_do_not_run(servers: ToolServers, tmp_path: Path) -> None:
    await servers.tools(["test"])
    await servers.switch("test", False)
    assert servers.status()[0].state == "off"
    assert servers.usable(["test", "broken", "nope"]) == ("broken",)
    result = await servers.call("test", "add", {"a": 1, "b": 1})
    assert result.error and "switched off" in result.text
    # Remembered across restarts.
    assert "test" in ToolServers(servers.config_path, tmp_path / "tools.json").off


async def test_a_stop_cancels_a_slow_call(servers: ToolServers) -> None:
    await servers.tools(["test"])
    task = asyncio.create_task(servers.call("test", "slow", {"seconds": 30}))
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    result = await servers.call("test", "add", {"a": 1, "b": 2})
    assert result.text == "3"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def http_server() -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.mcp_server", "--http", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                if proc.poll() is not None:
                    raise RuntimeError("the HTTP MCP server did not start") from None
                import time

                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        proc.wait(10)


async def test_streamable_http_server(tmp_path: Path, http_server: str) -> None:
    config = write_mcp_config(tmp_path / "mcp.json", {"web": {"url": http_server}})
    manager = ToolServers(config, tmp_path / "tools.json")
    try:
        result = await manager.call("web", "echo", {"text": "<b>hi</b>"})
        assert result.text == "<b>hi</b>"
        assert manager.status()[0].state == "running"
    finally:
        await manager.close()


async def test_reload_picks_up_a_changed_file(servers: ToolServers) -> None:
    write_mcp_config(servers.config_path, {"other": MCP_TEST_SERVER})
    import os

    os.utime(servers.config_path, (1, 1))
    assert servers.reload()
    assert servers.names == ("other",)


async def test_a_changed_tool_list_is_read_again(servers: ToolServers) -> None:
    found, _ = await servers.tools(["test"])
    assert "extra" not in {t.name for t in found["test"]}
    assert (await servers.call("test", "grow", {})).text == "grown"
    for _ in range(100):  # the notification follows the result
        found, _ = await servers.tools(["test"])
        if "extra" in {t.name for t in found["test"]}:
            break
        await asyncio.sleep(0.02)
    assert "Added while running." in [t.description for t in found["test"]]
    assert (await servers.call("test", "extra", {})).text == "extra ran"
