"""The `htmxchat` command as users run it: a real process, real sockets, real signals."""

from __future__ import annotations

import json
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from htmxchat import __version__
from htmxchat.cli import build_parser, main
from htmxchat.config import PREFERRED_PORT, Settings, resolve_settings
from htmxchat.instance import RUNTIME_FILENAME
from htmxchat.store import DB_FILENAME
from tests.helpers import (
    ROOT,
    ServerProcess,
    chat_once,
    reply_streaming,
    send_and_wait,
)


def fetch(server: ServerProcess, path: str = "") -> tuple[int, bytes]:
    """GET a path of a running server, with its token (as a logged-in browser would)."""
    request = urllib.request.Request(server.base_url + path, headers=server.headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, response.read()


def test_version_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert __version__ in capsys.readouterr().out
    help_text = build_parser().format_help()
    for flag in ("--host", "--port", "--no-browser", "--data-dir", "--word-delay", "--version"):
        assert flag in help_text


def test_settings_precedence_flag_over_env_over_default(tmp_path: Path) -> None:
    args = build_parser().parse_args(["--port", "9000"])
    environ = {"HTMXCHAT_PORT": "8000", "HTMXCHAT_WORD_DELAY": "0.5", "HTMXCHAT_DATA_DIR": "/x"}
    settings = resolve_settings(args, environ)
    assert settings == Settings(data_dir=Path("/x"), port=9000, word_delay=0.5)
    defaults = resolve_settings(build_parser().parse_args([]), {})
    assert defaults.port is None and defaults.host == "127.0.0.1" and defaults.word_delay == 0.1
    assert defaults.data_dir.name == "htmxchat"


@pytest.mark.parametrize("flags", [["--port", "70000"], ["--port", "x"], ["--word-delay", "-1"]])
def test_bad_option_values_are_usage_errors(
    flags: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(flags)
    assert exit_info.value.code == 2
    assert "htmxchat: error:" in capsys.readouterr().err


def test_serves_page_and_vendored_files_then_exits_0_on_sigint(server: ServerProcess) -> None:
    assert server.url.startswith("http://127.0.0.1:") and server.port != 0
    status, body = fetch(server)
    assert status == 200 and b'ws-connect="/ws"' in body
    for path in (
        "static/vendor/htmx-2.0.11.min.js",
        "static/vendor/htmx-ext-ws-2.0.4.js",
        "static/app.js",
        "static/app.css",
    ):
        status, content = fetch(server, path)
        assert status == 200 and len(content) > 1000
    started = time.monotonic()
    code, _, err = server.stop(signal.SIGINT)
    assert code == 0, err
    assert time.monotonic() - started < 5
    assert err.splitlines()[-1] == "Stopping htmxchat…"  # nothing was being written


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_mid_reply_saves_it_and_exits_0(data_dir: Path, sig: int) -> None:
    server = ServerProcess(data_dir, "--port", "0", "--word-delay", "0.2")
    conversation = "00000000000000000000aa"
    try:
        send_and_wait(server, conversation, "hi", reply_streaming)
    except BaseException:
        server.kill()  # never leave a server behind when the test fails early
        raise
    started = time.monotonic()
    code, _, err = server.stop(sig)
    assert code == 0, err
    assert "Stopping htmxchat: saving 1 reply being written…" in err
    assert time.monotonic() - started < 5
    with sqlite3.connect(data_dir / DB_FILENAME) as db:
        rows = db.execute("SELECT role, status, content FROM messages ORDER BY seq").fetchall()
    assert rows[0] == ("user", "complete", "hi")
    assert rows[1][:2] == ("assistant", "interrupted") and rows[1][2]


def test_port_0_picks_a_free_port(data_dir: Path) -> None:
    first = ServerProcess(data_dir / "a", "--port", "0")
    second = ServerProcess(data_dir / "b", "--port", "0")
    try:
        assert first.port != second.port and 0 not in (first.port, second.port)
    finally:
        first.kill()
        second.kill()


def test_explicit_busy_port_is_a_clear_error(data_dir: Path) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "htmxchat", "--no-browser", "--port", str(port)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode == 1
    assert f"Port {port} is already in use" in result.stderr
    assert "Traceback" not in result.stderr


def test_busy_preferred_port_falls_back_and_says_so(data_dir: Path) -> None:
    with socket.socket() as blocker:
        try:
            blocker.bind(("127.0.0.1", PREFERRED_PORT))
        except OSError:
            pytest.skip("the preferred port is already taken on this machine")
        blocker.listen()
        server = ServerProcess(data_dir)
        try:
            assert server.port != PREFERRED_PORT
        finally:
            code, _, err = server.stop()
    assert code == 0
    assert f"Port {PREFERRED_PORT} is busy" in err


def test_preferred_port_is_the_default(data_dir: Path) -> None:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", PREFERRED_PORT))
        except OSError:
            pytest.skip("the preferred port is already taken on this machine")
    server = ServerProcess(data_dir)
    try:
        assert server.port == PREFERRED_PORT
    finally:
        server.kill()


def test_second_start_reuses_the_running_instance(data_dir: Path) -> None:
    server = ServerProcess(data_dir, "--port", "0")
    try:
        result = subprocess.run(
            [sys.executable, "-m", "htmxchat", "--no-browser", "--data-dir", str(data_dir)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert result.returncode == 0, result.stderr
        assert server.url in result.stdout.splitlines()  # the URL with the token
        assert server.process.poll() is None
    finally:
        server.kill()


def test_stale_runtime_file_from_a_crash_is_ignored(data_dir: Path) -> None:
    (data_dir / RUNTIME_FILENAME).write_text(
        json.dumps({"url": "http://127.0.0.1:1/", "port": 1, "pid": 999999, "instance": "gone"})
    )
    server = ServerProcess(data_dir, "--port", "0")
    try:
        assert server.port != 1
        assert json.loads((data_dir / RUNTIME_FILENAME).read_text())["port"] == server.port
    finally:
        server.kill()


def test_conversation_survives_a_restart(data_dir: Path) -> None:
    conversation = "00000000000000000000bb"
    server = ServerProcess(data_dir, "--port", "0", "--word-delay", "0")
    try:
        chat_once(server, conversation, "remember me")
    finally:
        assert server.stop()[0] == 0
    again = ServerProcess(data_dir, "--port", "0", "--word-delay", "0")
    try:
        _, body = fetch(again, f"c/{conversation}")
        assert b"remember me" in body
        assert body.count(b'class="msg msg-assistant"') == 1
        chat_once(again, conversation, "and now?")  # ids made after a restart are new ones
    finally:
        again.stop()
    with sqlite3.connect(data_dir / DB_FILENAME) as db:
        ids = [row[0] for row in db.execute("SELECT id FROM messages")]
    assert len(ids) == 4 and len(set(ids)) == 4


@pytest.mark.parametrize("kind", ["file", "missing-parent-is-file"])
def test_unusable_data_dir_is_a_one_line_error(tmp_path: Path, kind: str) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("not a directory")
    target = blocker if kind == "file" else blocker / "sub"
    result = subprocess.run(
        [sys.executable, "-m", "htmxchat", "--no-browser", "--data-dir", str(target)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "data dir" in result.stderr


def test_opens_the_browser_on_the_printed_url(data_dir: Path, tmp_path: Path) -> None:
    record = tmp_path / "opened.txt"
    fake_browser = tmp_path / "browser.sh"
    fake_browser.write_text(f'#!/bin/sh\necho "$1" >> {record}\n')
    fake_browser.chmod(0o755)
    server = ServerProcess(
        data_dir, "--port", "0", env={"BROWSER": str(fake_browser)}, open_browser=True
    )
    try:
        for _ in range(100):
            if record.exists() and record.read_text().strip():
                break
            time.sleep(0.05)
        (opened,) = record.read_text().split()
        # The browser gets a private redirect file, never the token on its command line.
        assert opened.startswith("file://") and server.token not in opened
        assert server.url in Path(opened.removeprefix("file://")).read_text()
    finally:
        code, _, err = server.stop()
    assert code == 0
    assert "Could not open a browser" not in err


def test_no_browser_available_is_said_and_serving_goes_on(data_dir: Path) -> None:
    server = ServerProcess(data_dir, "--port", "0", env={"BROWSER": "false"}, open_browser=True)
    try:
        status, _ = fetch(server)
        assert status == 200
    finally:
        code, _, err = server.stop()
    assert code == 0
    assert f"Could not open a browser; open {server.url} yourself." in err
