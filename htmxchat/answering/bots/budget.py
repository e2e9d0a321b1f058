"""What one streamed reply may cost: bytes, time without text, total time, loop time per step.

A model server is untrusted input (docs/limits.md). `ReadBudget` wraps the reads of one
streaming response so that, whatever the server sends, the reader gives up with a reason
the user can be told, and never holds the event loop for more than one slice of text.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Literal

from aiohttp import StreamReader

from htmxchat.limits import MAX_REPLY_SECONDS, MAX_STREAM_BYTES, SLICE_BYTES

Reason = Literal["no-text", "too-long", "too-big"]


class OverBudget(Exception):
    """The stream went past a limit; `reason` says which, `limit` its figure."""

    def __init__(self, reason: Reason, limit: float) -> None:
        super().__init__(reason)
        self.reason: Reason = reason
        self.limit = limit


class ReadBudget:
    """Deadlines and a byte cap for one streaming response.

    `stall`: the longest time without a piece of text (not merely without bytes: a server
    trickling keep-alives or empty events is stalled too). `max_seconds`: the whole reply.
    """

    def __init__(
        self,
        stall: float,
        *,
        max_bytes: int = MAX_STREAM_BYTES,
        max_seconds: float = MAX_REPLY_SECONDS,
        slice_bytes: int = SLICE_BYTES,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._clock = clock or asyncio.get_running_loop().time
        now = self._clock()
        self._stall = stall
        self._max_bytes = max_bytes
        self._slice = slice_bytes
        self._end = now + max_seconds
        self._max_seconds = max_seconds
        self._last_text = now
        self._bytes_since_text = False  # something (not text) came since the last text
        self.received = 0  # bytes so far, after decompression

    def progress(self) -> None:
        """A piece of text arrived: the stall deadline starts again."""
        self._last_text = self._clock()
        self._bytes_since_text = False

    async def read(self, content: StreamReader) -> bytes:
        """The next bytes of the body (b"" at its end), within the deadlines and the cap."""
        stall_at = self._last_text + self._stall
        try:
            async with asyncio.timeout_at(min(stall_at, self._end)):
                data = await content.readany()
        except TimeoutError:
            if self._clock() >= self._end:
                raise OverBudget("too-long", self._max_seconds) from None
            if self._bytes_since_text:
                raise OverBudget("no-text", self._stall) from None
            raise  # nothing at all arrived: the caller's "sent nothing" message fits
        self.received += len(data)
        self._bytes_since_text = True
        if self.received > self._max_bytes:
            raise OverBudget("too-big", self._max_bytes)
        return data

    def slices(self, data: bytes) -> Iterator[bytes]:
        """`data` in slices small enough to decode between two turns of the event loop."""
        for start in range(0, len(data), self._slice):
            yield data[start : start + self._slice]
