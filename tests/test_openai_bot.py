"""OpenAICompatBot against a scripted fake server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from htmxchat.answering.bots import Bot, BotError, Piece, ReplyEnd, Turn
from htmxchat.answering.bots.openai import OpenAICompatBot
from htmxchat.answering.bots.openai_models import list_models, normalize_base_url
from htmxchat.config import resolve_api_key
from tests.fake_openai import DISCONNECT, FakeOpenAI, Reply, Step, chunk, split, sse

KEY = "sk-test-SECRET-0123456789"
HISTORY = [Turn("user", "Hi"), Turn("assistant", "Hello!"), Turn("user", "Tell me a joke")]

AiohttpServer = Callable[..., Awaitable[TestServer]]


@pytest.fixture
async def fake(aiohttp_server: AiohttpServer) -> FakeOpenAI:
    server = FakeOpenAI()
    await server.serve_with(aiohttp_server)
    return server


@pytest.fixture
async def make_bot(fake: FakeOpenAI) -> AsyncIterator[Callable[..., OpenAICompatBot]]:
    bots: list[OpenAICompatBot] = []

    def make(**kwargs: Any) -> OpenAICompatBot:
        kwargs.setdefault("base_url", fake.base_url)
        kwargs.setdefault("model", "fake-model")
        bots.append(OpenAICompatBot(**kwargs))
        return bots[-1]

    yield make
    for bot in bots:
        await bot.close()


async def collect(stream: AsyncIterator[Piece | ReplyEnd]) -> list[Piece]:
    return (await collect_with_end(stream))[0]


async def collect_with_end(
    stream: AsyncIterator[Piece | ReplyEnd],
) -> tuple[list[Piece], ReplyEnd]:
    """The pieces, and the end the bot reports last (exactly one, after every piece)."""
    items = [item async for item in stream]
    assert isinstance(items[-1], ReplyEnd)
    assert not any(isinstance(item, ReplyEnd) for item in items[:-1])
    return [item for item in items if isinstance(item, Piece)], items[-1]


async def collect_until_error(stream: AsyncIterator[Piece]) -> tuple[str, BotError]:
    text = ""
    with pytest.raises(BotError) as info:
        async for piece in stream:
            text += piece.text
    return text, info.value


def text_of(pieces: list[Piece]) -> str:
    return "".join(p.text for p in pieces)


def stream_of(*payloads: dict[str, Any] | str, size: int | None = None) -> Reply:
    return Reply(chunks=split(sse(*payloads), size))


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- streaming -------------------------------------------------------------------------


@pytest.mark.parametrize("size", [1, 3, 7, None])
async def test_streams_text_in_any_chunking(
    fake: FakeOpenAI, make_bot: Any, size: int | None
) -> None:
    fake.enqueue(
        stream_of(
            chunk(""), chunk("Héllo"), chunk(" wörld 😀"), chunk(finish="stop"), "[DONE]", size=size
        )
    )
    bot = make_bot()
    pieces, end = await collect_with_end(bot.stream(HISTORY))
    assert text_of(pieces) == "Héllo wörld 😀"
    assert all(p.text for p in pieces)  # the empty first delta yields nothing
    assert end.finish_reason == "stop" and not end.truncated


def test_is_a_bot() -> None:
    bot: Bot = OpenAICompatBot("http://127.0.0.1:1/v1", "m", label="Ollama")
    assert bot.label == "Ollama" and bot.model == "m"
    assert OpenAICompatBot("http://127.0.0.1:11434").label == "127.0.0.1:11434"


def test_session_is_not_created_outside_a_loop() -> None:
    bot = OpenAICompatBot("http://127.0.0.1:1/v1")
    assert bot._session is None  # constructing must not need (or create) an event loop


async def test_session_is_reused_and_recreated_after_close(fake: FakeOpenAI, make_bot: Any) -> None:
    bot = make_bot()
    await collect(bot.stream(HISTORY))
    first = bot._session
    await collect(bot.stream(HISTORY))
    assert bot._session is first
    await bot.close()
    assert first.closed
    assert text_of(await collect(bot.stream(HISTORY))) == FakeOpenAI.CANNED


async def test_crlf_stream(fake: FakeOpenAI, make_bot: Any) -> None:
    fake.enqueue(
        Reply(chunks=[sse(chunk("a"), chunk("b", finish="stop"), "[DONE]", newline="\r\n")])
    )
    assert text_of(await collect(make_bot().stream(HISTORY))) == "ab"


async def test_no_done_after_finish_reason_is_normal(fake: FakeOpenAI, make_bot: Any) -> None:
    fake.enqueue(stream_of(chunk("a"), chunk(finish="stop")))
    pieces, end = await collect_with_end(make_bot().stream(HISTORY))
    assert text_of(pieces) == "a"
    assert end.finish_reason == "stop"


async def test_done_without_finish_reason_is_normal(fake: FakeOpenAI, make_bot: Any) -> None:
    fake.enqueue(stream_of(chunk("a"), "[DONE]"))
    pieces, end = await collect_with_end(make_bot().stream(HISTORY))
    assert text_of(pieces) == "a"
    assert end.finish_reason is None


async def test_done_ends_the_reply_even_if_the_server_keeps_the_connection(
    fake: FakeOpenAI, make_bot: Any
) -> None:
    fake.enqueue(Reply(chunks=[sse(chunk("a"), "[DONE]"), 30.0]))
    async with asyncio.timeout(2):
        assert text_of(await collect(make_bot().stream(HISTORY))) == "a"


async def test_end_without_finish_or_done_is_an_interruption(
    fake: FakeOpenAI, make_bot: Any
) -> None:
    fake.enqueue(stream_of(chunk("partial")))
    text, error = await collect_until_error(make_bot().stream(HISTORY))
    assert text == "partial"
    assert "ended the reply before it was finished" in str(error)


async def test_finish_reason_length_is_reported(fake: FakeOpenAI, make_bot: Any) -> None:
    fake.enqueue(stream_of(chunk("cut"), chunk(finish="length"), "[DONE]"))
    pieces, end = await collect_with_end(make_bot().stream(HISTORY))
    assert text_of(pieces) == "cut"
    assert end.truncated and end.finish_reason == "length"


async def test_usage_chunk_with_empty_choices_is_skipped(fake: FakeOpenAI, make_bot: Any) -> None:
    usage = {"id": "x", "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2}}
    fake.enqueue(stream_of(chunk("a"), chunk(finish="stop"), usage, "[DONE]"))
    pieces, end = await collect_with_end(make_bot().stream(HISTORY))
    assert text_of(pieces) == "a"
    assert (end.prompt_tokens, end.completion_tokens) == (3, 2)


async def test_null_content_role_only_and_tool_deltas_are_skipped(
    fake: FakeOpenAI, make_bot: Any
) -> None:
    role_only = {"choices": [{"index": 0, "delta": {"role": "assistant", "content": None}}]}
    tool = {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "t"}]}}]}
    other_choice = {"choices": [{"index": 1, "delta": {"content": "NOT OURS"}}]}
    fake.enqueue(stream_of(role_only, tool, other_choice, chunk("ok", finish="stop"), "[DONE]"))
    assert await collect(make_bot().stream(HISTORY)) == [Piece(text="ok")]


@pytest.mark.parametrize("key", ["reasoning_content", "reasoning"])
async def test_reasoning_deltas(fake: FakeOpenAI, make_bot: Any, key: str) -> None:
    fake.enqueue(
        stream_of(
            chunk(reasoning="Let me ", reasoning_key=key),
            chunk(reasoning="think.", reasoning_key=key),
            chunk("Answer", finish="stop"),
            "[DONE]",
        )
    )
    pieces = await collect(make_bot().stream(HISTORY))
    assert pieces == [Piece(reasoning="Let me "), Piece(reasoning="think."), Piece(text="Answer")]


async def test_reasoning_sent_under_both_names_is_not_doubled(
    fake: FakeOpenAI, make_bot: Any
) -> None:
    both = {"choices": [{"index": 0, "delta": {"reasoning_content": "hm", "reasoning": "hm"}}]}
    fake.enqueue(stream_of(both, chunk(finish="stop")))
    assert await collect(make_bot().stream(HISTORY)) == [Piece(reasoning="hm")]


async def test_delta_over_128_kib(fake: FakeOpenAI, make_bot: Any) -> None:
    big = "z" * 300_000
    fake.enqueue(Reply(chunks=[*split(sse(chunk(big), chunk(finish="stop")), 65536)]))
    assert text_of(await collect(make_bot().stream(HISTORY))) == big


async def test_event_over_8_mib_is_an_error(fake: FakeOpenAI, make_bot: Any) -> None:
    fake.enqueue(Reply(chunks=split(sse(chunk("z" * (8 * 1024 * 1024 + 10))), 1 << 20)))
    _, error = await collect_until_error(make_bot().stream(HISTORY))
    assert "larger than 8 MiB" in str(error)


async def test_lone_surrogate_becomes_replacement_character(
    fake: FakeOpenAI, make_bot: Any
) -> None:
    raw = b'data: {"choices": [{"index": 0, "delta": {"content": "a\\ud800b"}}]}\n\n'
    fake.enqueue(Reply(chunks=[raw, sse(chunk(finish="stop"))]))
    text = text_of(await collect(make_bot().stream(HISTORY)))
    assert text == "a\ufffdb"
    text.encode("utf-8")


# --- errors inside the stream ----------------------------------------------------------


async def test_error_object_mid_stream(fake: FakeOpenAI, make_bot: Any) -> None:
    error = {"error": {"message": "CUDA out of memory", "type": "server_error"}}
    fake.enqueue(stream_of(chunk("so far"), error))
    text, exc = await collect_until_error(make_bot().stream(HISTORY))
    assert text == "so far"
    assert "CUDA out of memory" in str(exc)


async def test_event_error_mid_stream(fake: FakeOpenAI, make_bot: Any) -> None:
    body = sse(chunk("so far")) + b'event: error\ndata: {"message": "context overflow"}\n\n'
    fake.enqueue(Reply(chunks=[body]))
    text, exc = await collect_until_error(make_bot().stream(HISTORY))
    assert text == "so far"
    assert "context overflow" in str(exc)


async def test_malformed_line(fake: FakeOpenAI, make_bot: Any) -> None:
    fake.enqueue(Reply(chunks=[sse(chunk("a")), b"data: {oops\n\n", sse(chunk(finish="stop"))]))
    text, exc = await collect_until_error(make_bot().stream(HISTORY))
    assert text == "a"
    assert "malformed stream" in str(exc)


async def test_json_that_is_not_an_object_is_malformed(fake: FakeOpenAI, make_bot: Any) -> None:
    fake.enqueue(stream_of("[1, 2]"))
    _, exc = await collect_until_error(make_bot().stream(HISTORY))
    assert "malformed stream" in str(exc)


async def test_disconnect_mid_stream(fake: FakeOpenAI, make_bot: Any) -> None:
    fake.enqueue(Reply(chunks=[sse(chunk("half")), 0.05, DISCONNECT]))
    text, exc = await collect_until_error(make_bot().stream(HISTORY))
    assert text == "half"
    assert "broke off" in str(exc)


async def test_stall_timeout_mid_stream(fake: FakeOpenAI, make_bot: Any) -> None:
    fake.enqueue(Reply(chunks=[sse(chunk("a")), 30.0, sse(chunk(finish="stop"))]))
    started = time.monotonic()
    text, exc = await collect_until_error(make_bot(stall_timeout=0.3).stream(HISTORY))
    assert text == "a"
    assert "sent nothing for 0.3 seconds" in str(exc)
    assert 0.25 < time.monotonic() - started < 2


async def test_stall_timeout_before_headers(fake: FakeOpenAI, make_bot: Any) -> None:
    fake.enqueue(Reply(delay=30.0, chunks=[sse(chunk("late"))]))
    _, exc = await collect_until_error(make_bot(stall_timeout=0.3).stream(HISTORY))
    assert "sent nothing for 0.3 seconds" in str(exc)


async def test_slow_but_steady_stream_is_not_cut(fake: FakeOpenAI, make_bot: Any) -> None:
    steps: list[Step] = []
    for i in range(8):
        steps += [0.1, sse(chunk(str(i)))]
    fake.enqueue(Reply(chunks=[*steps, sse(chunk(finish="stop"))]))
    # 0.8 s in total, more than the stall timeout: only silence counts, not total time
    assert text_of(await collect(make_bot(stall_timeout=0.3).stream(HISTORY))) == "01234567"


# --- errors before the stream ----------------------------------------------------------


async def test_connection_refused(make_bot: Any) -> None:
    base = f"http://127.0.0.1:{closed_port()}/v1"
    _, exc = await collect_until_error(make_bot(base_url=base).stream(HISTORY))
    assert str(exc).startswith(f"The model server at {base} is not answering:")
    assert "--base-url" in str(exc)
    assert "`" not in str(exc)  # shown as plain text in the page: no Markdown marks


@pytest.mark.parametrize("status", [401, 403])
async def test_auth_errors(fake: FakeOpenAI, make_bot: Any, status: int) -> None:
    fake.enqueue(Reply.error(status, f"Incorrect API key provided: {KEY}"))
    _, exc = await collect_until_error(make_bot(api_key=KEY).stream(HISTORY))
    assert f"HTTP {status}" in str(exc) and "HTMXCHAT_API_KEY" in str(exc)
    assert KEY not in str(exc)


async def test_404_names_the_model(fake: FakeOpenAI, make_bot: Any) -> None:
    fake.enqueue(Reply.error(404, 'model "llama9" not found, try pulling it first'))
    _, exc = await collect_until_error(make_bot().stream(HISTORY, model="llama9"))
    assert '"llama9"' in str(exc) and "HTTP 404" in str(exc) and "--base-url" in str(exc)


async def test_429(fake: FakeOpenAI, make_bot: Any) -> None:
    fake.enqueue(Reply.error(429, "You exceeded your current quota"))
    _, exc = await collect_until_error(make_bot().stream(HISTORY))
    assert "rate limiting" in str(exc) and "quota" in str(exc)


async def test_500_quotes_the_server_message_without_the_key(
    fake: FakeOpenAI, make_bot: Any
) -> None:
    fake.enqueue(Reply.error(500, f"llama runner crashed\n(key {KEY})"))
    _, exc = await collect_until_error(make_bot(api_key=KEY).stream(HISTORY))
    assert "internal error (HTTP 500: llama runner crashed (key ***))" in str(exc)
    assert KEY not in str(exc)


async def test_502_html_page_is_not_quoted(fake: FakeOpenAI, make_bot: Any) -> None:
    fake.enqueue(
        Reply(502, body=b"<html><body>Bad Gateway</body></html>", content_type="text/html")
    )
    _, exc = await collect_until_error(make_bot().stream(HISTORY))
    assert "HTTP 502)" in str(exc) and "<" not in str(exc)


async def test_400_quotes_the_server_message(fake: FakeOpenAI, make_bot: Any) -> None:
    fake.enqueue(Reply.error(400, "the request exceeds the available context size"))
    _, exc = await collect_until_error(make_bot().stream(HISTORY))
    assert "rejected the request (HTTP 400: the request exceeds the available context size)" in str(
        exc
    )


async def test_long_server_message_is_shortened(fake: FakeOpenAI, make_bot: Any) -> None:
    fake.enqueue(Reply.error(500, "x" * 5000))
    _, exc = await collect_until_error(make_bot().stream(HISTORY))
    assert len(str(exc)) < 400


async def test_200_html_page_is_not_a_stream(fake: FakeOpenAI, make_bot: Any) -> None:
    fake.enqueue(Reply(body=b"<html>hi</html>", content_type="text/html"))
    _, exc = await collect_until_error(make_bot().stream(HISTORY))
    assert "did not answer like an OpenAI-compatible server" in str(exc)


async def test_200_json_error_object(fake: FakeOpenAI, make_bot: Any) -> None:
    fake.enqueue(Reply.json({"error": "model is loading"}))
    _, exc = await collect_until_error(make_bot().stream(HISTORY))
    assert "reported an error: model is loading." in str(exc)


async def test_redirects_are_not_followed(fake: FakeOpenAI, make_bot: Any) -> None:
    # Following it would re-send the key (here to the same fake, so we can count requests).
    location = {"Location": f"{fake.base_url}/chat/completions"}
    fake.enqueue(Reply(307, body=b"", content_type="text/plain", headers=location))
    _, exc = await collect_until_error(make_bot(api_key=KEY).stream(HISTORY))
    assert "HTTP 307" in str(exc)
    assert len(fake.requests) == 1


# --- what is sent ----------------------------------------------------------------------


async def test_request_carries_system_prompt_then_whole_history(
    fake: FakeOpenAI, make_bot: Any
) -> None:
    await collect(make_bot(system_prompt="Be brief.").stream(HISTORY, model="other"))
    (request,) = fake.chat_requests
    assert request.json == {
        "model": "other",
        "stream": True,
        "stream_options": {"include_usage": True},
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello!"},
            {"role": "user", "content": "Tell me a joke"},
        ],
    }


async def test_temperature_only_when_set(fake: FakeOpenAI, make_bot: Any) -> None:
    await collect(make_bot().stream(HISTORY))
    await collect(make_bot(temperature=0.2).stream(HISTORY))
    await collect(make_bot(temperature=0.0).stream(HISTORY))
    first, second, third = fake.chat_requests
    assert "temperature" not in first.json
    assert second.json["temperature"] == 0.2
    assert third.json["temperature"] == 0.0


async def test_model_none_picks_the_first_listed(fake: FakeOpenAI, make_bot: Any) -> None:
    fake.models = ["first-model", "second-model"]
    bot = make_bot(model=None)
    assert bot.model is None
    await collect(bot.stream(HISTORY))
    assert fake.chat_requests[0].json["model"] == "first-model"
    assert bot.model == "first-model"


async def test_model_none_and_no_models(fake: FakeOpenAI, make_bot: Any) -> None:
    fake.models = []
    _, exc = await collect_until_error(make_bot(model=None).stream(HISTORY))
    assert "has no models" in str(exc)
    assert "`" not in str(exc)  # shown as plain text in the page: no Markdown marks
    assert fake.chat_requests == []


async def test_key_is_sent_as_bearer_to_the_base_url(fake: FakeOpenAI, make_bot: Any) -> None:
    await collect(make_bot(api_key=KEY).stream(HISTORY))
    assert fake.chat_requests[0].headers["Authorization"] == f"Bearer {KEY}"


async def test_key_not_sent_when_resolver_says_none(fake: FakeOpenAI, make_bot: Any) -> None:
    key = resolve_api_key(fake.base_url, {"OPENAI_API_KEY": KEY})
    assert key is None
    await collect(make_bot(api_key=key, model=None).stream(HISTORY))
    assert [r.path for r in fake.requests] == ["/v1/models", "/v1/chat/completions"]
    assert all("Authorization" not in r.headers for r in fake.requests)


@pytest.mark.parametrize(
    ("base_url", "environ", "expected"),
    [
        ("http://127.0.0.1:11434/v1", {}, None),
        ("http://127.0.0.1:11434/v1", {"HTMXCHAT_API_KEY": "mine"}, "mine"),
        ("http://127.0.0.1:11434/v1", {"OPENAI_API_KEY": "sk-o"}, None),
        ("https://api.openai.com/v1", {"OPENAI_API_KEY": "sk-o"}, "sk-o"),
        ("https://api.openai.com", {"OPENAI_API_KEY": "sk-o"}, "sk-o"),
        ("https://API.OpenAI.com/v1/", {"OPENAI_API_KEY": "sk-o"}, "sk-o"),
        (
            "https://api.openai.com/v1",
            {"OPENAI_API_KEY": "sk-o", "HTMXCHAT_API_KEY": "mine"},
            "mine",
        ),
        ("https://api.openai.com/v1", {"OPENAI_API_KEY": "", "HTMXCHAT_API_KEY": ""}, None),
        ("http://api.openai.com/v1", {"OPENAI_API_KEY": "sk-o"}, None),
        ("https://api.openai.com:8443/v1", {"OPENAI_API_KEY": "sk-o"}, None),
        ("https://api.openai.com.evil.example/v1", {"OPENAI_API_KEY": "sk-o"}, None),
        ("https://api.openai.com@evil.example/v1", {"OPENAI_API_KEY": "sk-o"}, None),
        ("https://evil.example/api.openai.com/v1", {"OPENAI_API_KEY": "sk-o"}, None),
        ("https://openrouter.ai/api/v1", {"OPENAI_API_KEY": "sk-o"}, None),
    ],
)
def test_resolve_api_key(base_url: str, environ: dict[str, str], expected: str | None) -> None:
    assert resolve_api_key(base_url, environ) == expected


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("http://127.0.0.1:11434/v1", "http://127.0.0.1:11434/v1"),
        ("http://127.0.0.1:11434/v1/", "http://127.0.0.1:11434/v1"),
        ("http://127.0.0.1:11434", "http://127.0.0.1:11434/v1"),
        ("http://127.0.0.1:11434/", "http://127.0.0.1:11434/v1"),
        ("https://openrouter.ai/api/v1", "https://openrouter.ai/api/v1"),
    ],
)
def test_normalize_base_url(given: str, expected: str) -> None:
    assert normalize_base_url(given) == expected


async def test_key_never_in_repr_or_logs(
    fake: FakeOpenAI, make_bot: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    bot = make_bot(api_key=KEY, model=None)
    assert KEY not in repr(bot) and "<set>" in repr(bot)
    await collect(bot.stream(HISTORY))
    fake.enqueue(Reply.error(401, f"bad key {KEY}"))
    await collect_until_error(bot.stream(HISTORY))
    fake.enqueue(Reply(chunks=[sse(chunk("x")), DISCONNECT]))
    await collect_until_error(bot.stream(HISTORY))
    assert caplog.records  # the bot did log something at DEBUG
    assert KEY not in caplog.text
    assert "joke" not in caplog.text  # no message content either


# --- cancellation ----------------------------------------------------------------------


async def test_cancelling_the_consumer_closes_upstream_at_once(
    fake: FakeOpenAI, make_bot: Any
) -> None:
    fake.enqueue(Reply(chunks=[sse(chunk("first")), 30.0, sse(chunk("never"))]))
    got_first = asyncio.Event()

    async def consume() -> None:
        async for _ in make_bot().stream(HISTORY):
            got_first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(got_first.wait(), 2)
    cancelled_at = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.wait_for(fake.disconnected.wait(), 0.5)
    assert fake.disconnected_at is not None
    assert fake.disconnected_at - cancelled_at < 0.1


async def test_aclose_closes_upstream(fake: FakeOpenAI, make_bot: Any) -> None:
    fake.enqueue(Reply(chunks=[sse(chunk("first")), 30.0]))
    stream = make_bot().stream(HISTORY)
    assert (await anext(stream)).text == "first"
    await stream.aclose()
    await asyncio.wait_for(fake.disconnected.wait(), 0.1)


# --- listing models --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"object": "list", "data": [{"id": "a"}, {"id": "b"}]}, ["a", "b"]),
        ({"models": [{"name": "m1", "model": "m1"}, {"name": "m2"}]}, ["m1", "m2"]),
        (
            {
                "models": [{"name": "/p/q.gguf", "model": "/p/q.gguf"}],
                "data": [{"id": "/p/q.gguf"}],
            },
            ["/p/q.gguf"],
        ),
        ({"data": [{"id": "a"}, {"object": "model"}, "weird", 5]}, ["a", "weird"]),
        ({"data": []}, []),
        ({}, []),
    ],
)
async def test_list_models_shapes(
    fake: FakeOpenAI, payload: dict[str, Any], expected: list[str]
) -> None:
    fake.enqueue(Reply.json(payload), endpoint="models")
    assert await list_models(fake.base_url) == expected


async def test_list_models_via_bot_sends_the_key(fake: FakeOpenAI, make_bot: Any) -> None:
    assert await make_bot(api_key=KEY).list_models() == ["fake-model"]
    assert fake.requests[0].headers["Authorization"] == f"Bearer {KEY}"


async def test_list_models_errors(fake: FakeOpenAI) -> None:
    fake.enqueue(Reply.error(401, "no"), endpoint="models")
    with pytest.raises(BotError, match="HTMXCHAT_API_KEY"):
        await list_models(fake.base_url)
    fake.enqueue(Reply(body=b"not json", content_type="text/plain"), endpoint="models")
    with pytest.raises(BotError, match="OpenAI-compatible"):
        await list_models(fake.base_url)
    with pytest.raises(BotError, match="not answering"):
        await list_models(f"http://127.0.0.1:{closed_port()}/v1")


def test_fake_payloads_are_valid_json() -> None:
    # Guards the fake itself: every helper-built event must parse.
    for line in sse(chunk("a"), chunk(reasoning="r"), chunk(finish="stop")).split(b"\n\n")[:-1]:
        json.loads(line.removeprefix(b"data: "))
