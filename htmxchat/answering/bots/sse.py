"""Incremental Server-Sent Events decoder for OpenAI-compatible chat streams.

Written for `text/event-stream` as the HTML spec defines it, with two deliberate choices:
events may be any size up to a cap (aiohttp's own line reader gives up at about 128 KiB,
aio-libs/aiohttp#4453), and JSON payloads are cleaned of lone surrogates before their text
reaches the rest of the app (they cannot be encoded as UTF-8 later, in SQLite or a websocket).
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass

from htmxchat.limits import MAX_IDLE_LINES

MAX_EVENT_CHARS = 8 * 1024 * 1024
"""Largest event (its pending line plus its data so far), in characters."""

# A run of line breaks: the first ends a line, every further one is a blank line. Taking a
# run at once keeps a stream of nothing but newlines (a gzip "newline bomb") at C speed.
_LINE_BREAKS = re.compile(r"(?:\r\n|\r|\n)+")
_SURROGATE = re.compile("[\ud800-\udfff]")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class SSEError(Exception):
    """The byte stream cannot be decoded as SSE within the configured limits."""


class NestingError(ValueError):
    """JSON nested too deeply to be read (thousands of levels: never a real answer)."""


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """One dispatched event: its `data` lines joined with newlines, and its `event` type."""

    data: str
    event: str = "message"


class SSEDecoder:
    """Turns raw bytes, split anywhere, into `SSEEvent`s.

    Call `feed()` with every chunk read from the network and `close()` at end of stream.
    Memory is bounded by `max_event_chars`; a bigger event raises `SSEError`, and so do more
    than `max_idle_lines` lines that carry nothing (blank lines ending no event, comments).
    """

    def __init__(
        self, *, max_event_chars: int = MAX_EVENT_CHARS, max_idle_lines: int = MAX_IDLE_LINES
    ) -> None:
        self._max = max_event_chars
        self._max_idle = max_idle_lines
        self.idle_lines = 0
        # errors="replace": a broken byte sequence must not end the reply, and an incremental
        # decoder keeps a multi-byte character that straddles two reads intact.
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._line_parts: list[str] = []  # joined once per line, so 1-byte reads stay linear
        self._line_len = 0
        self._after_cr = False  # the last text ended in "\r": a leading "\n" belongs to it
        self._at_start = True
        self._event_type = ""
        self._data: list[str] = []
        self._event_len = 0

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Decode `chunk` and return the events it completed (often none)."""
        return self._feed_text(self._utf8.decode(chunk))

    def close(self) -> list[SSEEvent]:
        """Finish the stream and return the last events.

        The spec drops an event that is not followed by a blank line. We dispatch it anyway
        if all its lines were complete, because some servers end with a single newline; an
        unterminated last line is a cut-off read and is dropped.
        """
        events = self._feed_text(self._utf8.decode(b"", final=True))
        self._line_parts.clear()
        self._line_len = 0
        last = self._dispatch()
        if last is not None:
            events.append(last)
        return events

    def _feed_text(self, text: str) -> list[SSEEvent]:
        if self._at_start and text:
            self._at_start = False
            text = text.removeprefix("\ufeff")
        if self._after_cr and text:
            self._after_cr = False
            text = text.removeprefix("\n")
        if not text:
            return []
        events: list[SSEEvent] = []
        pos = 0
        for match in _LINE_BREAKS.finditer(text):
            self._add_to_line(text[pos : match.start()])
            line = "".join(self._line_parts)
            self._line_parts.clear()
            self._line_len = 0
            event = self._process_line(line)
            if event is not None:
                events.append(event)
            run = match.group()
            blank = run.count("\n") + run.count("\r") - run.count("\r\n") - 1
            if blank:
                event = self._dispatch()
                if event is not None:
                    events.append(event)
                self.idle(blank - (event is not None))
            pos = match.end()
        self._add_to_line(text[pos:])
        self._after_cr = text.endswith("\r")
        return events

    def _add_to_line(self, part: str) -> None:
        if not part:
            return
        self._line_len += len(part)
        if self._line_len + self._event_len > self._max:
            raise SSEError(f"an event is larger than {self._max} characters")
        self._line_parts.append(part)

    def idle(self, count: int) -> None:
        """Count `count` lines or events that carried nothing (negative: give some back);
        raise `SSEError` past the limit."""
        self.idle_lines += count
        if self.idle_lines > self._max_idle:
            raise SSEError(f"more than {self._max_idle:,} lines carried nothing")

    def _process_line(self, line: str) -> SSEEvent | None:
        if not line:
            event = self._dispatch()
            if event is None:
                self.idle(1)
            return event
        if line.startswith(":"):  # comment / keep-alive, e.g. ": OPENROUTER PROCESSING"
            self.idle(1)
            return None
        field, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if field == "data":
            self._data.append(value)
            self._event_len += len(value) + 1
        else:
            if field == "event":
                self._event_type = value
            # "id" and "retry" only matter to a client that reconnects (a reply is never
            # resumed) and unknown fields are ignored: such lines carry nothing. (The caller
            # gives a few back for every event that brings text, so `id:` lines are fine.)
            self.idle(1)
        return None

    def _dispatch(self) -> SSEEvent | None:
        event = None
        if self._data:
            event = SSEEvent("\n".join(self._data), self._event_type or "message")
        self._data.clear()
        self._event_len = 0
        self._event_type = ""
        return event


async def aiter_events(
    chunks: AsyncIterable[bytes], *, max_event_chars: int = MAX_EVENT_CHARS
) -> AsyncIterator[SSEEvent]:
    """Yield the events of a byte stream, flushing the decoder at its end."""
    decoder = SSEDecoder(max_event_chars=max_event_chars)
    async for chunk in chunks:
        for event in decoder.feed(chunk):
            yield event
    for event in decoder.close():
        yield event


def loads_json(data: str) -> object:
    """Parse an event's JSON data, replacing lone surrogates (e.g. "\\ud800") with U+FFFD.

    Raises `ValueError` when `data` is not JSON, or nests deeper than Python's recursion
    limit allows (`json` raises RecursionError there: never let that through as a crash).
    """
    try:
        value: object = json.loads(data)
    except RecursionError as exc:
        raise NestingError("JSON nested too deeply") from exc
    if _SURROGATE_ESCAPE.search(data) or _SURROGATE.search(data):
        try:
            value = _scrub(value)
        except RecursionError as exc:
            raise NestingError("JSON nested too deeply") from exc
    return value


def _scrub(value: object) -> object:
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_scrub(item) for item in value]
    if isinstance(value, dict):
        return {_scrub(key): _scrub(item) for key, item in value.items()}
    return value
