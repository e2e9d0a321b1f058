"""The hostile benchmark, on two attacks, in seconds, in the default run: a change that
breaks its report fails here."""

from __future__ import annotations

import pytest

from tests.benchmarks import bench_hostile


def test_the_hostile_benchmark_reports_the_slowest_healthz_per_attack(
    capsys: pytest.CaptureFixture[str],
) -> None:
    bench_hostile.main(["-k", "math_openers or over_the_time_limit"])
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3, lines
    assert any("test_an_answer_of_math_openers_opens_at_once" in line for line in lines)
    assert any("over_the_time_limit" in line for line in lines)
    assert lines[-1].startswith("worst of all:") and lines[-1].endswith("over 2 attacks")
