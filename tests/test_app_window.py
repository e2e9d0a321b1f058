"""`htmxchat --app` with a real Chromium under Xvfb: the window opens, connects, is closed,
and the server stops by itself within the grace period with the chat saved."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import CHROMIUM
from tests.helpers import ServerProcess, chat_once

pytestmark = pytest.mark.browser


@pytest.fixture
def display() -> Iterator[str]:
    """A private X server (Xvfb) on a free display number."""
    if not (shutil.which("Xvfb") and shutil.which(CHROMIUM)):
        if os.environ.get("CI"):
            pytest.fail("Xvfb and chromium are needed: apt-get install -y xvfb chromium")
        pytest.skip("needs Xvfb and chromium")
    read_fd, write_fd = os.pipe()
    xvfb = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
        pass_fds=(write_fd,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_fd)
    with os.fdopen(read_fd) as reader:
        number = reader.readline().strip()  # Xvfb writes the display number once ready
    try:
        yield f":{number}"
    finally:
        xvfb.terminate()
        xvfb.wait(timeout=10)


def browser_pids(profile: Path) -> list[int]:
    """Processes whose command line names our profile (the app browser and its helpers)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if f"--user-data-dir={profile}".encode() in cmdline:
                pids.append(int(entry.name))
    return pids


def wait_for(check, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return False


def test_app_window_opens_connects_and_its_close_stops_the_server(
    data_dir: Path, display: str
) -> None:
    log_file = data_dir.parent / "log" / "htmxchat.log"
    profile = data_dir / "browser-profile"
    server = ServerProcess(
        data_dir,
        "--port",
        "0",
        "--app",
        "--app-grace",
        "2",
        env={
            "DISPLAY": display,
            "HTMXCHAT_BROWSER": CHROMIUM,
            # Tests run as root, where Chromium needs this; users never get it by default.
            "HTMXCHAT_BROWSER_ARGS": "--no-sandbox --disable-gpu --disable-dev-shm-usage",
        },
        open_browser=True,
    )
    try:
        assert wait_for(lambda: "1 page connected" in log_file.read_text(), 30), (
            log_file.read_text()
        )
        chat_once(server, "00000000000000000000cc", "hello window")
        assert browser_pids(profile), "the app browser runs with our own profile"
        for pid in browser_pids(profile):  # the user closes the window
            os.kill(pid, signal.SIGKILL)
        closed = time.monotonic()
        code = server.process.wait(timeout=2 + 5)
        assert code == 0
        assert time.monotonic() - closed >= 1.5, "the grace period is waited for"
    finally:
        server.kill()
        for pid in browser_pids(profile):
            os.kill(pid, signal.SIGKILL)
    log = log_file.read_text()
    assert "stopping: the app window was closed" in log
    import sqlite3

    from htmxchat.store import DB_FILENAME

    with sqlite3.connect(data_dir / DB_FILENAME) as db:
        rows = db.execute("SELECT role, status FROM messages ORDER BY seq").fetchall()
    assert rows == [("user", "complete"), ("assistant", "complete")]
