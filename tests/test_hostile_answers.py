"""Answers that are costly to render: opening them never freezes the app (docs/limits.md).

Markdown is rendered off the event loop (a large text in the render process, a small one in
a thread) before a page or snapshot is drawn (the template then finds it in the cache), and
the inline-math scan is linear."""

from __future__ import annotations

import asyncio
import os
import threading
import time

import pytest
from aiohttp.test_utils import TestClient

from htmxchat.ids import new_id
from htmxchat.markdown import offload
from htmxchat.markdown import render as render_module
from htmxchat.markdown.offload import PROCESS_CHARS
from htmxchat.markdown.worker import WORKER
from htmxchat.models import Message
from htmxchat.store import ChatStore
from tests.hostile import Probe


async def store_answer(store: ChatStore, text: str) -> str:
    conversation = new_id()
    await store.add_message(Message(new_id(), conversation, "user", "question"))
    await store.add_message(Message(new_id(), conversation, "assistant", text))
    render_module.clear_caches()
    return conversation


async def test_an_answer_of_math_openers_opens_at_once(
    client: TestClient, store: ChatStore
) -> None:
    # 120,000 `\(` and no `\)`: the scan for a closer from each opener took minutes.
    conversation = await store_answer(store, "\\(" * 120_000)
    started = time.monotonic()
    async with Probe.on(client) as probe:
        response = await client.get("/")  # the newest conversation: this one
        page = await response.text()
    probe.assert_responsive()
    assert response.status == 200 and f"/c/{conversation}" in str(response.url)
    assert "((((((" in page  # each `\\(` is an escaped parenthesis
    # Generous: quadratic, this takes minutes; linear, about a second.
    assert time.monotonic() - started < 20


# Formulas and links: the slow kinds. A large answer renders in the render process, a
# small one in a thread (tests/test_render_process.py has the details).
COSTLY = {
    "small": "MARKER " + "$x^2$ http://a.example/x " * 100,
    "large": "MARKER " + "$x^2$ http://a.example/x " * 200,
}
assert len(COSTLY["small"]) <= PROCESS_CHARS < len(COSTLY["large"])


def assert_rendered_off_the_loop(size: str, threads: list[str]) -> None:
    if size == "large":  # in the render process: never parsed here
        assert threads == [] and WORKER.pid not in (None, os.getpid())
    else:
        assert threads and threading.main_thread().name not in threads


@pytest.mark.parametrize("size", COSTLY)
async def test_a_page_renders_answers_off_the_event_loop(
    client: TestClient, store: ChatStore, parse_threads: list[str], size: str
) -> None:
    conversation = await store_answer(store, COSTLY[size])
    response = await client.get(f"/c/{conversation}")
    page = await response.text()
    assert response.status == 200 and "MARKER" in page and "<math" in page
    assert_rendered_off_the_loop(size, parse_threads)


@pytest.mark.parametrize("size", COSTLY)
async def test_a_snapshot_renders_answers_off_the_event_loop(
    client: TestClient, store: ChatStore, parse_threads: list[str], size: str
) -> None:
    conversation = await store_answer(store, COSTLY[size])
    ws = await client.ws_connect("/ws")
    await ws.send_json({"action": "sync", "conversation": conversation, "req": 1})
    async with asyncio.timeout(10):
        async for message in ws:
            if "MARKER" in message.data:
                assert "<math" in message.data
                break
    await ws.close()
    assert_rendered_off_the_loop(size, parse_threads)


@pytest.mark.parametrize("size", COSTLY)
async def test_older_messages_render_off_the_event_loop(
    client: TestClient, store: ChatStore, parse_threads: list[str], size: str
) -> None:
    conversation = await store_answer(store, COSTLY[size])
    for i in range(60):  # more than a page, so the costly answer is an older one
        await store.add_message(Message(new_id(), conversation, "user", f"later {i}"))
    messages = await store.messages(conversation)
    response = await client.get(f"/c/{conversation}/messages", params={"before": messages[2].id})
    page = await response.text()
    assert response.status == 200 and "MARKER" in page and "<math" in page
    assert_rendered_off_the_loop(size, parse_threads)


async def test_a_big_finished_answer_goes_out_once(
    app_client, store: ChatStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its Markdown is not repeated beside its HTML in the finished frame: it is served on
    its own, for Copy."""
    from tests.helpers import ScriptedBot
    from tests.hostile import chat_until_final

    text = "".join(f"Paragraph UNIQUE{n} with some words in it.\n\n" for n in range(3000))
    bot = ScriptedBot()
    bot.enqueue([text])
    client = await app_client(bot, coalesce_window=0.0)
    conversation = new_id()
    frame = await chat_until_final(client, conversation, "big one")
    assert frame.count("UNIQUE2999") <= 1, "the answer's text went out twice"
    assert "data-markdown" not in frame.split("msg-assistant", 1)[1].split(">", 1)[0]
    answer = (await store.messages(conversation))[-1]
    response = await client.get(f"/c/{conversation}/m/{answer.id}/source")
    assert response.status == 200 and await response.text() == text
    assert response.headers["Content-Type"].startswith("text/plain")
    wrong = await client.get(f"/c/{new_id()}/m/{answer.id}/source")
    assert wrong.status == 404


async def test_an_answer_too_big_to_format_is_shown_as_plain_text(
    client: TestClient, store: ChatStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(render_module, "MAX_RENDERED_CHARS", 100_000)
    monkeypatch.setattr(offload, "PROCESS_CHARS", 10**9)  # rendered here, with that limit
    formulas = "$x^2$ " * 4_000  # 24 KB of source, about 600 KB of MathML
    conversation = await store_answer(store, formulas + "<b>tag</b>")
    page = await (await client.get(f"/c/{conversation}")).text()
    assert "too large to show formatted" in page
    assert "$x^2$ $x^2$" in page and "&lt;b&gt;tag&lt;/b&gt;" in page
    assert "<math" not in page
    assert len(page) < 250_000


async def test_a_long_message_of_yours_keeps_its_text_for_editing(
    client: TestClient, store: ChatStore
) -> None:
    """Your own messages are bounded by the message limit and carry their text (the Edit
    box starts from it); only answers past 64 KiB are fetched for Copy."""
    from htmxchat.chat import MAX_MESSAGE_CHARS
    from htmxchat.limits import INLINE_SOURCE_CHARS

    conversation = new_id()
    long_text = "word " * (INLINE_SOURCE_CHARS // 5 + 1000)
    assert INLINE_SOURCE_CHARS < len(long_text) <= MAX_MESSAGE_CHARS
    await store.add_message(Message(new_id(), conversation, "user", long_text))
    page = await (await client.get(f"/c/{conversation}")).text()
    assert f'data-markdown="{long_text}"' in page
