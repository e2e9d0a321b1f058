"""Start-up time: from launching `python -m htmxchat` to its URL line (and a served page).

Run: python -m pytest -m benchmark tests/benchmarks -s
(`tests/test_benchmark_smoke.py` runs it once, quickly, in the default test run.)
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.helpers import ServerProcess

pytestmark = pytest.mark.benchmark

RUNS = 5


def measure(data_dir: Path, bot: str, runs: int = RUNS) -> list[float]:
    """Seconds from starting the process to having its first page, `runs` times."""
    times = []
    for run in range(runs):
        started = time.perf_counter()
        server = ServerProcess(data_dir / f"{bot}-{run}", "--port", "0", env={"HTMXCHAT_BOT": bot})
        # With the token, as the browser has it after its first visit.
        request = urllib.request.Request(server.base_url, headers=server.headers)
        with urllib.request.urlopen(request, timeout=10) as response:
            if b'id="composer"' not in response.read():
                raise RuntimeError("the first page is not the chat page")
        times.append(time.perf_counter() - started)
        server.kill()
    return times


def test_startup_time_and_cost_of_auto_detection(data_dir: Path) -> None:
    demo = measure(data_dir, "demo")
    auto = measure(data_dir, "auto")
    print(f"\nstart to first page, demo bot: median {statistics.median(demo) * 1000:.0f} ms")
    print(f"start to first page, auto detection: median {statistics.median(auto) * 1000:.0f} ms")
    assert statistics.median(auto) - statistics.median(demo) < 0.3


def installed_env(data_dir: Path) -> dict[str, str]:
    """The environment of a run as installed: Python may keep compiled bytecode (pip
    compiles it at install; this machine may have PYTHONDONTWRITEBYTECODE set), kept under
    `data_dir` so the checkout stays clean. Call once before timing, to fill it."""
    return {
        **os.environ,
        "PYTHONDONTWRITEBYTECODE": "",
        "PYTHONPYCACHEPREFIX": str(data_dir / "pycache"),
        "HTMXCHAT_BOT": "demo",
        "HTMXCHAT_LOCAL_SERVERS": "off",
    }


def start_seconds(data_dir: Path, runs: int = RUNS) -> list[tuple[float, float]]:
    """Seconds from starting `python -m htmxchat` to the line with its URL, and to its first
    page (a new chat, as a fresh account opens it), `runs` times after one warm-up run."""
    times = []
    env = installed_env(data_dir)
    for run in range(runs + 1):
        command = [sys.executable, "-m", "htmxchat", "--port", "0", "--no-browser"]
        command += ["--data-dir", str(data_dir / f"url-{run}")]
        started = time.perf_counter()
        with subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
        ) as process:
            assert process.stdout is not None
            for line in process.stdout:
                if "http://" in line:
                    url = time.perf_counter() - started
                    base, _, token = line.strip().partition("?token=")
                    break
            request = urllib.request.Request(base, headers={"Authorization": f"Bearer {token}"})
            with urllib.request.urlopen(request, timeout=30) as response:
                if b'id="composer"' not in response.read():
                    raise RuntimeError("the first page is not the chat page")
            page = time.perf_counter() - started
            process.send_signal(signal.SIGINT)
            process.wait(30)
        if run:  # the first run compiles bytecode and templates, as a first start after install
            times.append((url, page))
    return times


def command_seconds(*args: str, runs: int = RUNS, env: dict[str, str] | None = None) -> list[float]:
    """Seconds `python -m htmxchat ARGS` takes (e.g. --version), `runs` times."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        command = [sys.executable, "-m", "htmxchat", *args]
        subprocess.run(command, capture_output=True, check=True, env=env)
        times.append(time.perf_counter() - started)
    return times


def test_url_version_and_help_times(data_dir: Path) -> None:
    """Targets (an idle machine): the URL within 0.25 s, --version and --help under 0.15 s.
    The first page is reported too: what the browser, started at the URL line, waits for."""
    starts = start_seconds(data_dir)
    env = installed_env(data_dir)
    for name, times in (
        ("start to the URL line", [url for url, _ in starts]),
        ("start to the first page", [page for _, page in starts]),
        ("--version", command_seconds("--version", env=env)),
        ("--help", command_seconds("--help", env=env)),
    ):
        print(f"\n{name}: median {statistics.median(times) * 1000:.0f} ms")
