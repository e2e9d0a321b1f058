"""Tools for the hostile test corpus: a /healthz probe, gzip bombs, chatting through the socket.

Every hostile test runs its attack while `Probe` asks /healthz over and over, on the same
event loop as the app, and then asserts the app answered all along. The bound it checks
(`RESPONSIVE_WITHIN`) is far above the 100 ms the limits aim for, so a busy machine cannot
fail it, and far below what the attacks cost without the limits (tens of seconds to
minutes), so it fails without them. The 100 ms figures are measured by the benchmarks and
written down in docs/limits.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import time
import zlib
from collections.abc import Awaitable, Callable
from types import TracebackType

from aiohttp.test_utils import TestClient

from tests.helpers import parse_frame

RESPONSIVE_WITHIN = 3.0
"""Seconds /healthz may take, at worst, while an attack runs (see the module docstring)."""


class Probe:
    """Asks GET /healthz every 20 ms while active; records how long the slowest took."""

    def __init__(self, get: Callable[[str], Awaitable[object]]) -> None:
        self._get = get
        self.answers = 0
        self.slowest = 0.0
        self._task: asyncio.Task[None] | None = None
        self._answered = asyncio.Event()

    @classmethod
    def on(cls, client: TestClient) -> Probe:
        async def get(path: str) -> object:
            async with client.get(path) as response:
                assert response.status == 200, response.status
                return await response.read()

        return cls(get)

    async def _run(self) -> None:
        while True:
            started = time.monotonic()
            await self._get("/healthz")
            self.slowest = max(self.slowest, time.monotonic() - started)
            self.answers += 1
            self._answered.set()
            await asyncio.sleep(0.02)

    async def __aenter__(self) -> Probe:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._task is not None
        # A quick attack: let the probe's first answer land (or the probe fail).
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._answered.wait()), RESPONSIVE_WITHIN)
        if self._task.done():
            self._task.result()  # a failed probe fails the test with its own error
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    def assert_responsive(self) -> None:
        """The app answered /healthz during the attack, never slower than RESPONSIVE_WITHIN."""
        report = os.environ.get("HOSTILE_PROBE_REPORT")
        if report:  # the benchmark (tests/benchmarks/bench_hostile.py) collects the figures
            test = os.environ.get("PYTEST_CURRENT_TEST", "?").split(" ")[0]
            with open(report, "a", encoding="utf-8") as out:
                out.write(f"{test}\t{self.slowest * 1000:.1f}\t{self.answers}\n")
        assert self.answers >= 1, "the app never answered /healthz during the attack"
        assert self.slowest < RESPONSIVE_WITHIN, f"/healthz took {self.slowest:.2f} s"


def gzip_of(data_unit: bytes, size: int) -> bytes:
    """`data_unit` repeated up to `size` bytes, gzip-compressed (a few KB for megabytes)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: gzip framing
    block = data_unit * (1024 * 1024 // len(data_unit))
    parts = [compressor.compress(block) for _ in range(size // len(block))]
    return b"".join(parts) + compressor.flush()


async def chat_until_final(
    client: TestClient,
    conversation: str,
    text: str,
    timeout: float = 30.0,  # noqa: ASYNC109 (a bound on the whole exchange, for the test)
) -> str:
    """Send `text` over a socket; return every frame up to the reply's finished one, joined
    (what the page was sent: the streamed text, then the finished message)."""
    ws = await client.ws_connect("/ws")
    frames: list[str] = []
    try:
        await ws.send_json({"action": "send", "conversation": conversation, "message": text})
        async with asyncio.timeout(timeout):
            async for message in ws:
                frames.append(str(message.data))
                if is_final(message.data):
                    return "".join(frames)
        raise AssertionError("the socket closed before the reply finished")
    finally:
        await ws.close()


# The finished reply's element (attribute values are escaped, so they hold no ">"). A regex,
# not an HTML parse: the test runs on the app's event loop, and parsing a multi-megabyte
# frame there would stall the very probe it measures.
_FINAL = re.compile(r'<article [^>]*class="msg msg-assistant"[^>]*hx-swap-oob="true"')


def is_final(frame: str) -> bool:
    """True for the frame that replaces a reply with its finished render."""
    return _FINAL.search(frame) is not None


def final_bubble_text(frames: str) -> tuple[str, str]:
    """The finished reply's status, and all the text the page was sent (the streamed answer,
    then the finished message with the note under it)."""
    elements = parse_frame(frames)
    finished = [e for e in elements if "msg-assistant" in (e.attrs.get("class") or "")]
    if not finished:
        raise AssertionError(frames[-500:])
    return finished[-1].attrs.get("data-status") or "", " ".join(e.text for e in elements)
