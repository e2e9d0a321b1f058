"""The wire benchmark (bytes per token, a new chat's first token) once, small and quick, in
the default run; it prints its figures. The full run: `python -m tests.benchmarks.bench_wire`."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.benchmarks import bench_wire
from tests.conftest import CHROMIUM

pytestmark = pytest.mark.browser


def test_wire_benchmark_runs_and_prints_its_figures(data_dir: Path, capsys) -> None:
    if not shutil.which(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package")
        pytest.skip(f"{CHROMIUM} is not installed")
    results = bench_wire.run(60, data_dir, repeats=1, first_runs=2)
    figures = bench_wire.report(results)
    with capsys.disabled():
        print("\n" + "\n".join(f"{name}: {value:.2f}" for name, value in figures.items()))
    kinds = ("plain", "markdown", "tables and formulas")
    names = {f"bytes/token {kind} at {rate}" for kind in kinds for rate in bench_wire.RATES}
    assert names <= set(figures)
    assert all(figures[name] > 5 for name in names)  # at least the text itself travels
    assert figures["first token existing chat"] > 0 and figures["first token new chat"] > 0
    # The coalescing window is what keeps a slow model's words cheap: at 20 tokens/s two
    # words share a frame (a frame per word, about 1.05 frames a token with the answer's own
    # frames, is what a 40 ms window sent). A slow machine only bunches words further.
    wire = results["wire"]
    assert isinstance(wire, dict)
    for kind in kinds:
        slow = wire[f"{kind} at 20"]
        assert slow.frames <= 0.8 * slow.tokens, (kind, slow.frames, slow.tokens)
