"""The tool-round benchmark runs (small), so it cannot rot; its numbers are not checked."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("mcp")


async def test_tool_round_benchmark_smoke(tmp_path: Path) -> None:
    from tests.benchmarks.bench_tools import measure

    result = await measure(2, tmp_path)
    assert set(result) == {"plain", "direct", "round", "added"}
    assert result["round"] > result["direct"] > 0
