"""Every benchmark once, small and quick, in the default run: a change that breaks one fails
here instead of rotting unnoticed. The real measurements run on demand (see the README)."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest

from tests.benchmarks import bench_markdown_browser, bench_open
from tests.benchmarks.test_startup import command_seconds, installed_env, measure, start_seconds
from tests.conftest import CHROMIUM


def test_startup_benchmark_runs(data_dir: Path) -> None:
    (seconds,) = measure(data_dir, "demo", runs=1)
    assert 0 < seconds < 30


def test_url_version_and_help_benchmark_runs_and_prints(data_dir: Path, capsys) -> None:
    ((url, page),) = start_seconds(data_dir, runs=1)
    env = installed_env(data_dir)
    (version,) = command_seconds("--version", runs=1, env=env)
    (usage,) = command_seconds("--help", runs=1, env=env)
    with capsys.disabled():
        print(
            f"\nURL line {url * 1000:.0f} ms, first page {page * 1000:.0f} ms, "
            f"--version {version * 1000:.0f} ms, --help {usage * 1000:.0f} ms"
        )
    assert 0 < version < 30 and 0 < usage < 30 and 0 < url < page < 30


def test_open_benchmark_runs_on_the_server(data_dir: Path, capsys) -> None:
    ids = asyncio.run(bench_open.server_side(data_dir, sizes=(10, 120), runs=2))
    assert set(ids) == {10, 120}
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and all("socket sync" in line for line in lines)


@pytest.mark.browser
def test_open_benchmark_runs_in_the_browser(data_dir: Path, capsys) -> None:
    if not shutil.which(CHROMIUM):  # the benchmark starts Chromium itself
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package")
        pytest.skip(f"{CHROMIUM} is not installed")
    ids = asyncio.run(bench_open.server_side(data_dir, sizes=(10,), runs=1))
    capsys.readouterr()
    bench_open.browser_side(data_dir, ids, runs=1)
    assert "10 messages rendered" in capsys.readouterr().out


@pytest.mark.browser
def test_markdown_browser_benchmark_runs(data_dir: Path, capsys) -> None:
    if not shutil.which(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package")
        pytest.skip(f"{CHROMIUM} is not installed")
    results = bench_markdown_browser.run((60,), data_dir, repeats=2)
    assert [(r.name, r.runs) for r in results] == [("markdown 60", 2), ("plain 60", 2)]
    assert all(r.ms_per_token > 0 and r.final_bytes > 0 for r in results)
    ratios = bench_markdown_browser.report(results)
    assert set(ratios) == {"markdown/plain 60"}
