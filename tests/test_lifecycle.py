"""Stopping: the Quit control, `htmxchat stop`, the app window's grace period, idle exit,
and a full disk while stopping."""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from htmxchat import cli
from htmxchat.config import Settings
from htmxchat.launch import Listener
from htmxchat.lifecycle import stop_key
from htmxchat.server import NotSavedError, stopping_text
from htmxchat.store import DB_FILENAME
from tests.helpers import ROOT, ScriptedBot, ServerProcess, reply_streaming, send_and_wait, ws_url

CONVERSATION = "00000000000000000000bb"


def saved_rows(data_dir: Path) -> list[tuple[str, str, str]]:
    with sqlite3.connect(data_dir / DB_FILENAME) as db:
        return db.execute("SELECT role, status, content FROM messages ORDER BY seq").fetchall()


async def test_quit_asks_first_while_a_reply_is_written(app_client) -> None:
    bot = ScriptedBot(delay=0.05)
    bot.enqueue(["one ", "two ", "three ", "four ", "five ", "six ", "seven ", "eight "])
    stop = asyncio.Event()
    client = await app_client(
        bot, coalesce_window=0.0, prepare=lambda app: app.__setitem__(stop_key, stop)
    )
    # Without our Origin, a POST is refused like every change.
    refused = await client.post("/quit", headers={"Origin": "http://evil.example"})
    assert refused.status == 403 and not stop.is_set()
    async with client.ws_connect("/ws") as ws:
        await ws.send_json({"action": "send", "conversation": CONVERSATION, "message": "hi"})
        await ws.receive(timeout=5)
        answer = await client.post("/quit")
        text = await answer.text()
        assert answer.status == 200 and 'id="quit"' in text and "Quit anyway" in text
        assert not stop.is_set()
        confirmed = await client.post("/quit", data={"confirm": "1"})
        assert "htmxchat has quit" in await confirmed.text()
        assert confirmed.headers["HX-Retarget"] == "body"
        await asyncio.wait_for(stop.wait(), 2)


async def test_quit_when_idle_stops_at_once_and_the_page_has_the_button(
    app_client, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    stop = asyncio.Event()
    client = await app_client(ScriptedBot(), prepare=lambda app: app.__setitem__(stop_key, stop))
    page = await (await client.get("/")).text()
    assert 'hx-post="/quit"' in page and str(settings.data_dir) in page
    assert str(settings.log_dir / "htmxchat.log") in page
    with caplog.at_level(logging.WARNING, logger="htmxchat"):
        answer = await client.post("/quit", headers={"Accept": "application/json"})
    assert await answer.json() == {"status": "quitting", "replies": 0}
    await asyncio.wait_for(stop.wait(), 2)
    assert "stopping: Quit was pressed in the page (0 replies in flight)" in caplog.text


def run_stop(data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "htmxchat", "--data-dir", str(data_dir), "stop"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_stop_command_saves_the_reply_in_flight(data_dir: Path) -> None:
    server = ServerProcess(data_dir, "--port", "0", "--word-delay", "0.2")
    send_and_wait(server, CONVERSATION, "hi", reply_streaming)
    result = run_stop(data_dir)
    assert result.returncode == 0, result.stderr
    assert "Stopped htmxchat" in result.stdout and "1 reply being written was saved" in (
        result.stdout
    )
    # It exits by itself; a signal sent now could land while it is exiting.
    code = server.process.wait(timeout=15)
    assert code == 0, server.stop()[2]
    rows = saved_rows(data_dir)
    assert rows[0] == ("user", "complete", "hi")
    assert rows[1][:2] == ("assistant", "interrupted") and rows[1][2]
    log = (data_dir.parent / "log" / "htmxchat.log").read_text()
    assert "stopping: htmxchat stop was run (1 reply in flight)" in log


def test_stop_command_without_a_server_fails_clearly(data_dir: Path) -> None:
    result = run_stop(data_dir)
    assert result.returncode == 1
    assert result.stderr.strip() == f"htmxchat stop: no htmxchat is running for {data_dir}"


def test_app_mode_stops_after_the_grace_period_and_a_reconnect_cancels_it(
    data_dir: Path,
) -> None:
    server = ServerProcess(data_dir, "--port", "0", "--app", "--app-grace", "2")

    async def visit(seconds: float) -> None:
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(ws_url(server), headers=server.headers):
                await asyncio.sleep(seconds)

    asyncio.run(visit(0.5))
    time.sleep(1.2)  # within the grace period: a reload comes back
    asyncio.run(visit(1.5))
    assert server.process.poll() is None, "a reconnect within the grace period cancels the stop"
    closed = time.monotonic()
    code = server.process.wait(timeout=2 + 5)
    assert code == 0 and time.monotonic() - closed >= 1.5
    log = (data_dir.parent / "log" / "htmxchat.log").read_text()
    assert "stopping: the app window was closed" in log


def test_idle_exit_without_app_mode(data_dir: Path) -> None:
    server = ServerProcess(data_dir, "--port", "0", "--idle-exit", "0.03")
    assert server.process.wait(timeout=10) == 0


def write_stand_in_browser(folder: Path) -> tuple[Path, Path]:
    """A 'browser' that records its command line and exits (as a hand-off would)."""
    record = folder / "argv.txt"
    script = folder / "fake-chrome"
    # Written aside, then renamed: the test waits for the file, and must never read it half
    # written (a loaded machine can pause the stand-in between creating and writing it).
    partial = folder / "argv.partial"
    script.write_text(
        f"#!{sys.executable}\nimport os, sys\n"
        f"open({str(partial)!r}, 'w').write('\\n'.join(sys.argv))\n"
        f"os.replace({str(partial)!r}, {str(record)!r})\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script, record


def test_app_runs_the_browser_with_this_command_line(data_dir: Path, tmp_path: Path) -> None:
    script, record = write_stand_in_browser(tmp_path)
    server = ServerProcess(
        data_dir,
        "--port",
        "0",
        "--app",
        env={"HTMXCHAT_BROWSER": str(script), "HTMXCHAT_BROWSER_ARGS": "--test-flag"},
        open_browser=True,
    )
    deadline = time.monotonic() + 10
    while not record.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    argv = record.read_text().split("\n")
    redirect = data_dir / "open.html"
    assert argv == [
        str(script),
        f"--app={redirect.as_uri()}",
        f"--user-data-dir={data_dir / 'browser-profile'}",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-sync",
        "--password-store=basic",
        "--class=htmxchat",
        "--window-size=1100,760",
        "--test-flag",
    ]
    assert server.token not in " ".join(argv), "the token never goes on a command line"
    assert server.url in redirect.read_text().replace("&amp;", "&")
    assert stat.S_IMODE(redirect.stat().st_mode) == 0o600
    code, _, err = server.stop()
    assert code == 0, err
    assert not redirect.exists()


def test_app_without_a_browser_falls_back_to_the_default_browser(data_dir: Path) -> None:
    server = ServerProcess(
        data_dir,
        "--port",
        "0",
        "--app",
        env={"HTMXCHAT_BROWSER": "/nonexistent/browser", "BROWSER": "true"},
        open_browser=True,
    )
    code, _, err = server.stop()
    assert code == 0
    assert "no Chrome, Chromium, Edge or Brave found" in err


def test_full_disk_while_stopping_is_one_line_and_exit_0(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    async def serve_then_fail(settings: Settings, listener: Listener) -> None:
        listener.sock.close()
        raise NotSavedError(f"{os.strerror(28)}")

    monkeypatch.setattr(cli, "serve", serve_then_fail)
    assert cli.main(["--no-browser", "--port", "0"]) == 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "could not be saved completely (No space left on device)" in err


async def test_a_failed_save_while_stopping_becomes_one_message() -> None:
    from htmxchat.server import _clean_up
    from htmxchat.store import StoreError

    class FullDiskRunner:
        async def cleanup(self) -> None:
            raise StoreError("Could not access the chat log: database or disk is full")

    problem = await _clean_up(FullDiskRunner(), None)  # type: ignore[arg-type]
    assert problem == "Could not access the chat log: database or disk is full"


def test_what_the_terminal_says_while_stopping_is_true() -> None:
    # Another Ctrl+C while stopping (e.g. after Quit in the page) only says "saving replies"
    # when some are being written.
    assert stopping_text(0) == "Stopping htmxchat…"
    assert (
        stopping_text(0, again=True) == "Still stopping: closing the open pages and the chat log…"
    )
    assert stopping_text(1) == "Stopping htmxchat: saving 1 reply being written…"
    assert stopping_text(3, again=True) == "Still stopping: saving 3 replies being written…"
