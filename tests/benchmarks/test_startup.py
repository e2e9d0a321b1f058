"""Start-up time: from launching `python -m htmxchat` to its URL line (and a served page).

Run: python -m pytest -m benchmark tests/benchmarks -s
(`tests/test_benchmark_smoke.py` runs it once, quickly, in the default test run.)
"""

from __future__ import annotations

import statistics
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
