"""The reading benchmark once, small and quick, in the default run."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.benchmarks import bench_reading
from tests.conftest import CHROMIUM


@pytest.mark.browser
def test_reading_benchmark_runs(data_dir: Path, capsys) -> None:
    if not shutil.which(CHROMIUM):  # the benchmark starts Chromium itself
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package")
        pytest.skip(f"{CHROMIUM} is not installed")
    results = bench_reading.run(tokens=60, paste_size=20_000, keys=3, data_dir=data_dir)
    assert [r.name.split(",")[0] for r in results] == [
        "following", "scrolled up", "following", "keystroke after a 0.02 MB paste",
    ]  # fmt: skip
    assert results[2].name.endswith("Markdown")
    assert all(r.count > 0 and r.ms_each > 0 for r in results)
    bench_reading.report(results)
    assert "scrolled up" in capsys.readouterr().out
