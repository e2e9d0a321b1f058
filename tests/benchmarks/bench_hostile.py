"""How long /healthz takes, at worst, while each hostile input of the test corpus runs.

Runs the hostile tests (tests/test_hostile_*.py, and the render that overruns its time
limit in tests/test_render_process.py) with their /healthz probe reporting, then
prints the slowest answer per attack, and the worst of all. The tests themselves only check
a generous bound (tests/hostile.py); these are the figures docs/limits.md quotes.

    python -m tests.benchmarks.bench_hostile [--runs N] [-k EXPRESSION]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FILES = ["tests/test_hostile_server.py", "tests/test_hostile_http.py",
         "tests/test_hostile_import.py", "tests/test_hostile_answers.py",
         "tests/test_render_process.py"]  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=1, help="repeat the corpus (median)")
    parser.add_argument("-k", dest="select", help="only the attacks pytest -k selects")
    args = parser.parse_args(argv)
    select = ["-k", args.select] if args.select else []
    slowest: dict[str, list[float]] = defaultdict(list)
    for _ in range(args.runs):
        with tempfile.NamedTemporaryFile("r", suffix=".tsv") as report:
            env = {**os.environ, "HOSTILE_PROBE_REPORT": report.name}
            subprocess.run(
                [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *select, *FILES],
                cwd=ROOT, env=env, check=False, stdout=subprocess.DEVNULL,
            )  # fmt: skip
            for line in report:
                test, ms, _ = line.rstrip("\n").split("\t")
                slowest[test.split("::", 1)[1]].append(float(ms))
    for test, values in sorted(slowest.items(), key=lambda item: -max(item[1])):
        values.sort()
        # The median of the runs, and the slowest of them.
        print(f"{values[len(values) // 2]:8.1f} ms {values[-1]:8.1f} ms  {test}")
    everything = sorted(max(v) for v in slowest.values())
    if everything:
        print(f"worst of all: {everything[-1]:.1f} ms over {len(everything)} attacks")


if __name__ == "__main__":
    main()
