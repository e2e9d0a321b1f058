"""Start-up order: the URL is printed and the browser started before the server loads, that
early URL already works (its socket queues the browser's request), and Markdown's code is
loaded by the first message that needs it, not at start."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

from htmxchat.access import OPEN_FILENAME
from htmxchat.config import Settings
from htmxchat.launch import announce
from tests.helpers import ROOT

URL_LINE = re.compile(r"(http://127\.0\.0\.1:\d+/)\?token=([\w-]+)")


def test_url_comes_before_the_server_loads_and_answers_at_once(data_dir: Path) -> None:
    # -X importtime writes each import to stderr as it happens; merged with stdout, the
    # lines are in the order the process did things.
    command = [sys.executable, "-X", "importtime", "-m", "htmxchat", "--no-browser"]
    command += ["--port", "0", "--data-dir", str(data_dir), "--bot", "demo"]
    process = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        assert process.stdout is not None
        before_url: list[str] = []
        for line in process.stdout:
            match = URL_LINE.search(line)
            if match:
                break
            before_url.append(line)
        else:
            raise AssertionError(f"no URL printed: {''.join(before_url)[-2000:]}")
        assert not any(re.search(r"\| +aiohttp(\.web)?$", line) for line in before_url)
        assert not any("htmxchat.markdown" in line for line in before_url)
        # Asked at once, while the server may still be loading: answered, not refused.
        base_url, token = match.groups()
        request = urllib.request.Request(
            base_url + "healthz", headers={"Authorization": f"Bearer {token}"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200
        # A fresh account's first page: a new chat, with no Markdown to render.
        request = urllib.request.Request(base_url, headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request, timeout=30) as response:
            assert b'id="composer"' in response.read()
    finally:
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=30)
    assert process.returncode == 0
    # Markdown's parser is loaded by the first message that needs it, not at start.
    assert "markdown_it" not in rest and "htmxchat.markdown.render" not in rest


def test_announcing_starts_the_browser_without_a_server(data_dir: Path) -> None:
    opened: list[str] = []
    done = threading.Event()

    def opener(url: str) -> bool:
        opened.append(url)
        done.set()
        return True

    settings = Settings(data_dir=data_dir, port=0, open_browser=True)
    listener = announce(settings, opener)
    try:
        assert done.wait(10), "the browser was not started"
        assert opened == [(data_dir / OPEN_FILENAME).as_uri()]
        assert listener.login_url in (data_dir / OPEN_FILENAME).read_text()
    finally:
        listener.sock.close()


def test_ctrl_c_while_loading_stops_quietly(data_dir: Path) -> None:
    command = [sys.executable, "-m", "htmxchat", "--no-browser", "--port", "0"]
    command += ["--data-dir", str(data_dir), "--bot", "demo"]
    process = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    for line in process.stdout:
        if URL_LINE.search(line):
            break
    process.send_signal(signal.SIGINT)  # most likely while the server is still loading
    _, err = process.communicate(timeout=30)
    assert process.returncode == 0
    assert "Traceback" not in err
