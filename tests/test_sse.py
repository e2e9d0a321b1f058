"""The incremental SSE decoder, fed bytes split every way a network can split them."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from htmxchat.answering.bots.sse import (
    MAX_EVENT_CHARS,
    SSEDecoder,
    SSEError,
    SSEEvent,
    aiter_events,
    loads_json,
)

SIZES = [1, 3, 7, None]


def split(data: bytes, size: int | None) -> list[bytes]:
    return [data] if size is None else [data[i : i + size] for i in range(0, len(data), size)]


def decode(data: bytes, size: int | None, **kwargs: int) -> list[SSEEvent]:
    decoder = SSEDecoder(**kwargs)
    events: list[SSEEvent] = []
    for piece in split(data, size):
        events.extend(decoder.feed(piece))
    events.extend(decoder.close())
    return events


def datas(events: list[SSEEvent]) -> list[str]:
    return [e.data for e in events]


@pytest.mark.parametrize("size", SIZES)
def test_events_and_done(size: int | None) -> None:
    data = b'data: {"a": 1}\n\ndata: {"b": 2}\n\ndata: [DONE]\n\n'
    assert datas(decode(data, size)) == ['{"a": 1}', '{"b": 2}', "[DONE]"]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_line_endings(size: int | None, newline: str) -> None:
    text = "event: x|data: one|data: two||data: three||".replace("|", newline)
    events = decode(text.encode(), size)
    assert events == [SSEEvent("one\ntwo", "x"), SSEEvent("three")]


@pytest.mark.parametrize("size", SIZES)
def test_mixed_line_endings_do_not_make_extra_blank_lines(size: int | None) -> None:
    # "\r" then "\n" in separate reads is one line break, not an empty line (which would dispatch).
    events = decode(b"data: a\r\ndata: b\r\n\r\ndata: c\n\r\n", size)
    assert datas(events) == ["a\nb", "c"]


@pytest.mark.parametrize("size", SIZES)
def test_split_multibyte_characters_survive(size: int | None) -> None:
    text = "héllo wörld 😀 你好"
    events = decode(f"data: {text}\n\n".encode(), size)
    assert datas(events) == [text]


def test_invalid_utf8_is_replaced_not_fatal() -> None:
    assert datas(decode(b"data: a\xffb\xc3\n\n", 1)) == ["a\ufffdb\ufffd"]


@pytest.mark.parametrize("size", SIZES)
def test_comments_and_unknown_fields_are_ignored(size: int | None) -> None:
    data = b": keep-alive\n\n: OPENROUTER PROCESSING\nid: 7\nretry: 10\nfoo\ndata: x\n\n"
    assert decode(data, size) == [SSEEvent("x")]


@pytest.mark.parametrize("size", SIZES)
def test_event_field_error(size: int | None) -> None:
    data = b'event: error\ndata: {"error": {"message": "boom"}}\n\n'
    assert decode(data, size) == [SSEEvent('{"error": {"message": "boom"}}', "error")]


def test_event_type_resets_after_dispatch_and_without_data() -> None:
    data = b"event: error\n\ndata: plain\n\n"
    assert decode(data, None) == [SSEEvent("plain", "message")]


def test_data_without_space_and_with_two_spaces() -> None:
    assert datas(decode(b"data:x\n\ndata:  y\n\ndata\n\n", None)) == ["x", " y", ""]


def test_leading_bom_is_dropped() -> None:
    assert datas(decode("\ufeffdata: x\n\n".encode(), 1)) == ["x"]


def test_last_event_without_blank_line_is_kept_but_a_cut_line_is_not() -> None:
    assert datas(decode(b"data: a\n\ndata: b\n", None)) == ["a", "b"]
    assert datas(decode(b'data: a\n\ndata: {"cut', None)) == ["a"]


@pytest.mark.parametrize("size", [4096, None])
def test_lines_over_128_kib(size: int | None) -> None:
    payload = json.dumps({"text": "x" * 300_000})
    assert datas(decode(f"data: {payload}\n\n".encode(), size)) == [payload]


def test_one_byte_reads_of_a_long_line() -> None:
    payload = "y" * 140_000
    assert datas(decode(f"data: {payload}\n\n".encode(), 1)) == [payload]


def test_event_over_the_cap_raises() -> None:
    decoder = SSEDecoder(max_event_chars=1000)
    decoder.feed(b"data: " + b"x" * 900)
    with pytest.raises(SSEError, match="larger than 1000"):
        decoder.feed(b"x" * 200)


def test_cap_counts_all_data_lines_of_one_event() -> None:
    decoder = SSEDecoder(max_event_chars=1000)
    with pytest.raises(SSEError):
        decoder.feed(
            b"data: " + b"x" * 400 + b"\n" + b"data: " + b"x" * 400 + b"\ndata: " + b"x" * 400
        )


def test_cap_is_per_event() -> None:
    decoder = SSEDecoder(max_event_chars=1000)
    for _ in range(5):
        assert datas(decoder.feed(b"data: " + b"x" * 600 + b"\n\n")) == ["x" * 600]


def test_default_cap_is_8_mib() -> None:
    assert MAX_EVENT_CHARS == 8 * 1024 * 1024
    decoder = SSEDecoder()
    with pytest.raises(SSEError):
        decoder.feed(b"data: " + b"x" * MAX_EVENT_CHARS)


def test_loads_json_replaces_lone_surrogates() -> None:
    value = loads_json('{"c": "a\\ud800b", "\\udfff": ["\\ud83d\\ude00", "\\uDBFF"]}')
    assert value == {"c": "a\ufffdb", "\ufffd": ["😀", "\ufffd"]}
    json.dumps(value, ensure_ascii=False).encode("utf-8")  # would raise on a surrogate


def test_loads_json_rejects_garbage() -> None:
    with pytest.raises(ValueError):
        loads_json("{not json")


async def test_aiter_events_flushes_at_end() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for piece in split(b"data: a\n\ndata: b\n", 2):
            yield piece

    assert [e.data async for e in aiter_events(chunks())] == ["a", "b"]
