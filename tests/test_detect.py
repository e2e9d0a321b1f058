"""Local server detection: fast when nothing runs, when a port hangs, and in priority order."""

from __future__ import annotations

import socket
import time
from collections.abc import Awaitable, Callable

import pytest
from aiohttp.test_utils import TestServer

from htmxchat.answering.bots.detect import (
    DEFAULT_CANDIDATES,
    Candidate,
    DetectedServer,
    detect_local_server,
)
from tests.fake_openai import FakeOpenAI, Reply

AiohttpServer = Callable[..., Awaitable[TestServer]]


def closed_base() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/v1"


async def started(aiohttp_server: AiohttpServer, models: list[str]) -> FakeOpenAI:
    fake = FakeOpenAI(models=models)
    await fake.serve_with(aiohttp_server)
    return fake


def test_default_candidates_in_priority_order() -> None:
    assert [(c.base_url, c.label) for c in DEFAULT_CANDIDATES] == [
        ("http://127.0.0.1:11434/v1", "Ollama"),
        ("http://127.0.0.1:8080/v1", "llama.cpp"),
        ("http://127.0.0.1:1234/v1", "LM Studio"),
    ]


async def test_nothing_running() -> None:
    candidates = [Candidate(closed_base(), "Ollama"), Candidate(closed_base(), "llama.cpp")]
    started_at = time.monotonic()
    assert await detect_local_server(candidates) is None
    assert time.monotonic() - started_at < 0.3


async def test_finds_the_running_server(aiohttp_server: AiohttpServer) -> None:
    fake = await started(aiohttp_server, ["llama3.2", "qwen3"])
    candidates = [Candidate(closed_base(), "Ollama"), Candidate(fake.base_url, "llama.cpp")]
    assert await detect_local_server(candidates) == DetectedServer(
        fake.base_url, "llama.cpp", ("llama3.2", "qwen3")
    )
    assert [r.path for r in fake.requests] == ["/v1/models"]
    assert "Authorization" not in fake.requests[0].headers


async def test_priority_order_wins_over_speed(aiohttp_server: AiohttpServer) -> None:
    slow, fast = await started(aiohttp_server, ["a"]), await started(aiohttp_server, ["b"])
    slow.enqueue(Reply.json({"data": [{"id": "a"}]}, delay=0.1), endpoint="models")
    candidates = [Candidate(slow.base_url, "Ollama"), Candidate(fast.base_url, "LM Studio")]
    found = await detect_local_server(candidates)
    assert found is not None and found.label == "Ollama"


@pytest.mark.parametrize(
    "reply",
    [
        Reply.json({"object": "list", "data": []}),
        Reply.error(404, "not here"),
        Reply(body=b"<html>a web app</html>", content_type="text/html"),
    ],
)
async def test_servers_without_models_are_skipped(
    aiohttp_server: AiohttpServer, reply: Reply
) -> None:
    empty, good = await started(aiohttp_server, []), await started(aiohttp_server, ["m"])
    empty.enqueue(reply, endpoint="models")
    candidates = [Candidate(empty.base_url, "Ollama"), Candidate(good.base_url, "llama.cpp")]
    found = await detect_local_server(candidates)
    assert found is not None and found.label == "llama.cpp"


async def test_hanging_server_does_not_hold_up_detection(aiohttp_server: AiohttpServer) -> None:
    hanging, good = await started(aiohttp_server, ["x"]), await started(aiohttp_server, ["m"])
    hanging.enqueue(Reply(delay=3600), endpoint="models")
    candidates = [Candidate(hanging.base_url, "Ollama"), Candidate(good.base_url, "LM Studio")]
    started_at = time.monotonic()
    found = await detect_local_server(candidates, timeout=0.25)
    elapsed = time.monotonic() - started_at
    assert found is not None and found.label == "LM Studio"
    assert 0.2 < elapsed < 0.4  # waited for the preferred server, but only for the timeout
    assert hanging.requests  # it really was asked


async def test_only_a_hanging_server(aiohttp_server: AiohttpServer) -> None:
    hanging = await started(aiohttp_server, ["x"])
    hanging.enqueue(Reply(delay=3600), endpoint="models")
    started_at = time.monotonic()
    assert await detect_local_server([Candidate(hanging.base_url, "Ollama")], timeout=0.25) is None
    assert time.monotonic() - started_at < 0.4
