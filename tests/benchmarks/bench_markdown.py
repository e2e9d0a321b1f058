"""Streaming Markdown: block by block against re-rendering the whole text per flush.

Run from the repository root:

    python -m tests.benchmarks.bench_markdown           # three ~10,000-token answers
    python -m tests.benchmarks.bench_markdown --small   # quick

Each answer is streamed in flushes of ~8 tokens (one token ~ 4 characters, as a model's
40 ms flush would carry). "incremental" = MarkdownStream plus rendering its ops to fragments;
"re-render" = render_markdown of the whole text so far at every flush; "full" = one render of
the finished text. Target: incremental <= 3x full for every answer.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


from htmxchat.markdown import render as render_module
from htmxchat.markdown.html import render_ops
from htmxchat.markdown.render import MD, new_env
from htmxchat.markdown.sanitise import sanitise
from htmxchat.markdown.stream import MarkdownStream

CHARS_PER_TOKEN = 4
TOKENS_PER_FLUSH = 8


def mixed(tokens: int) -> str:
    parts: list[str] = []
    n = 0
    while sum(map(len, parts)) < tokens * CHARS_PER_TOKEN:
        n += 1
        parts += [
            f"## Section {n}\n\nSome prose with **bold**, `code` and a [link](https://e.com/{n})"
            " that goes on for a while to look like an answer, with $x_{n} = n^2$ inline.\n",
            f"- point {n} one\n- point {n} two\n- point {n} three\n",
            "| key | value |\n|---|---:|\n" + "".join(f"| k{i} | {i * n} |\n" for i in range(4)),
            f"```python\ndef f{n}(x):\n    return x * {n}  # comment\n\nprint(f{n}(2))\n```\n",
            f"$$\n\\sum_{{i=1}}^{{{n}}} i = \\frac{{{n}({n}+1)}}{{2}}\n$$\n",
        ]
    return "\n".join(parts)


def one_list(tokens: int) -> str:
    items, n = [], 0
    while sum(map(len, items)) < tokens * CHARS_PER_TOKEN:
        n += 1
        items.append(f"{n}. Step {n}: do the *thing* with `tool {n}` and check it again.\n")
    return "".join(items)


def one_fence(tokens: int) -> str:
    lines, n = ["```python\n"], 0
    while sum(map(len, lines)) < tokens * CHARS_PER_TOKEN:
        n += 1
        lines.append(f"def function_{n}(value: int) -> int:\n    return value * {n} + 1\n\n")
    return "".join(lines) + "```\n"


@dataclass
class Result:
    name: str
    size: int
    flushes: int
    incremental: float
    worst_flush: float
    rerender: float
    full: float


def _clear_caches() -> None:
    render_module.clear_caches()


def full_render(text: str) -> float:
    _clear_caches()
    start = time.perf_counter()
    sanitise(MD.render(text, new_env()))
    return time.perf_counter() - start


def measure(name: str, text: str, rerender: bool = True) -> Result:
    step = CHARS_PER_TOKEN * TOKENS_PER_FLUSH
    chunks = [text[i : i + step] for i in range(0, len(text), step)]
    _clear_caches()
    stream = MarkdownStream()
    worst = 0.0
    start = time.perf_counter()
    for chunk in [*chunks, None]:
        began = time.perf_counter()
        ops = stream.feed(chunk) if chunk is not None else stream.finish()
        render_ops("m-B-body", ops)
        worst = max(worst, time.perf_counter() - began)
    incremental = time.perf_counter() - start
    again = 0.0
    if rerender:
        start = time.perf_counter()
        for end in range(step, len(text) + step, step):
            sanitise(MD.render(text[:end], new_env()))
        again = time.perf_counter() - start
    return Result(name, len(text), len(chunks), incremental, worst, again, full_render(text))


def answers(tokens: int) -> dict[str, str]:
    return {"mixed": mixed(tokens), "one list": one_list(tokens), "one fence": one_fence(tokens)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="1,000 tokens instead of 10,000")
    args = parser.parse_args()
    tokens = 1_000 if args.small else 10_000
    print(
        f"{'answer':<10} {'KB':>5} {'flushes':>7} {'incremental':>12} {'worst flush':>11} "
        f"{'re-render':>10} {'full':>8} {'incr/full':>9}"
    )
    for name, text in answers(tokens).items():
        r = measure(name, text)
        print(
            f"{r.name:<10} {r.size / 1000:>5.0f} {r.flushes:>7} {r.incremental:>11.3f}s "
            f"{r.worst_flush * 1000:>9.1f}ms {r.rerender:>9.2f}s {r.full * 1000:>6.0f}ms "
            f"{r.incremental / r.full:>8.1f}x"
        )


if __name__ == "__main__":
    main()
