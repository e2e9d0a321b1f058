"""Chatting with a real OpenAI-compatible server (scripted, on 127.0.0.1) through the app."""

from __future__ import annotations

import asyncio
import re
import time

import pytest
from aiohttp.test_utils import TestClient

from htmxchat.answering.bots.openai import OpenAICompatBot
from htmxchat.answering.bots.select import ChosenBot
from htmxchat.ids import new_id
from htmxchat.store import ChatStore
from tests.fake_openai import DISCONNECT, FakeOpenAI, Reply, chunk, sse, words_reply
from tests.helpers import chat, final_reply, parse_frame, stream_tail


@pytest.fixture
async def llm_client(app_client, fake: tuple[FakeOpenAI, str]) -> TestClient:
    _, base_url = fake
    bot = OpenAICompatBot(
        base_url, "fake-model", system_prompt="Be brief.", stall_timeout=1.0, label="Fake"
    )
    choice = ChosenBot(bot, ("fake-model", "other-model"), "Replies come from Fake.")
    return await app_client(choice, coalesce_window=0.0)


async def test_the_whole_conversation_goes_to_the_model(
    llm_client: TestClient, fake: tuple[FakeOpenAI, str], store: ChatStore
) -> None:
    server, _ = fake
    conversation = new_id()
    server.enqueue(Reply(chunks=words_reply("Paris is the capital.")))
    server.enqueue(Reply(chunks=words_reply("About two million people.")))
    await chat(llm_client, conversation, "Capital of France?")
    frames = await chat(llm_client, conversation, "How many live there?", model="other-model")
    sent = server.chat_requests[-1].json
    assert sent["stream"] is True and sent["model"] == "other-model"
    assert sent["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Capital of France?"},
        {"role": "assistant", "content": "Paris is the capital."},
        {"role": "user", "content": "How many live there?"},
    ]
    reply = final_reply(frames)
    assert reply.attrs["data-status"] == "complete" and "About two million people." in reply.text
    assert "other-model" in reply.text  # the stats line names the model
    stored = (await store.messages(conversation))[-1]
    assert stored.model == "other-model" and stored.first_piece_ms is not None
    assert stored.piece_count == 4


async def test_reasoning_is_kept_apart_from_the_answer(
    llm_client: TestClient, fake: tuple[FakeOpenAI, str], store: ChatStore
) -> None:
    server, _ = fake
    server.enqueue(
        Reply(chunks=[sse(chunk(reasoning="Let me think. "), chunk("Answer."), "[DONE]")])
    )
    conversation = new_id()
    frames = await chat(llm_client, conversation, "q")
    text = "".join(frames)
    # the reasoning streams into its own element, apart from the answer
    assert re.search(r"<b id=rt hx-swap-oob=(innerHTML|beforeend)>Let me think. ", text)
    stored = (await store.messages(conversation))[-1]
    assert stored.content == "Answer." and stored.reasoning == "Let me think. "


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (Reply.error(401, "bad key"), "HTMXCHAT_API_KEY"),
        (Reply.error(404, "model not found"), "fake-model"),
        (Reply.error(429, "slow down"), "rate"),
        (Reply.error(500, "kaboom"), "kaboom"),
        (Reply(chunks=[sse(chunk("half "))[:-2], b"data: {not json}\n\n"]), "malformed"),
        (Reply(chunks=[sse(chunk("partial ")), DISCONNECT]), "partial"),
        (Reply(chunks=[sse(chunk("slow ")), 3.0]), "slow"),
    ],
    ids=["401", "404", "429", "500", "malformed", "disconnect", "stall"],
)
async def test_failures_show_in_the_bubble_and_the_chat_goes_on(
    llm_client: TestClient, fake: tuple[FakeOpenAI, str], store: ChatStore,
    reply: Reply, expected: str,
) -> None:  # fmt: skip
    server, _ = fake
    server.enqueue(reply)
    conversation = new_id()
    frames = await chat(llm_client, conversation, "question one")
    bubble = final_reply(frames)
    assert bubble.attrs["data-status"] == "error"
    assert expected.lower() in bubble.text.lower(), bubble.text
    stored = await store.messages(conversation)
    assert stored[0].content == "question one" and stored[1].status == "error"
    assert stored[1].error
    # the next message works
    server.enqueue(Reply(chunks=words_reply("Recovered fine.")))
    frames = await chat(llm_client, conversation, "question two")
    assert final_reply(frames).attrs["data-status"] == "complete"


async def test_server_down_is_explained(app_client) -> None:
    bot = OpenAICompatBot("http://127.0.0.1:9/v1", "m", label="Nowhere")
    client = await app_client(bot)
    frames = await chat(client, new_id(), "anyone?")
    bubble = final_reply(frames)
    assert bubble.attrs["data-status"] == "error" and "127.0.0.1:9" in bubble.text


async def test_stop_closes_the_upstream_response_at_once(
    llm_client: TestClient, fake: tuple[FakeOpenAI, str], store: ChatStore
) -> None:
    server, _ = fake
    server.enqueue(Reply(chunks=words_reply("word " * 400, delay=0.05)))
    conversation = new_id()
    ws = await llm_client.ws_connect("/ws")
    await ws.send_json({"action": "send", "conversation": conversation, "message": "go"})
    async with asyncio.timeout(10):
        async for message in ws:
            if any(e.id == stream_tail() for e in parse_frame(message.data)):
                break
    stopped_at = time.monotonic()
    await ws.send_json({"action": "stop", "conversation": conversation})
    await asyncio.wait_for(server.disconnected.wait(), 2)
    assert server.disconnected_at is not None
    assert server.disconnected_at - stopped_at < 0.1, "the model server must see the disconnect"
    async with asyncio.timeout(5):
        async for message in ws:
            if 'data-status="stopped"' in message.data:
                break
    stored = (await store.messages(conversation))[-1]
    assert stored.status == "stopped" and stored.content.startswith("word")
    await ws.close()


async def test_a_reply_cut_at_the_length_limit_says_so(
    llm_client: TestClient, fake: tuple[FakeOpenAI, str], store: ChatStore
) -> None:
    server, _ = fake
    server.enqueue(Reply(chunks=[sse(chunk("Once upon a "), chunk(finish="length"), "[DONE]")]))
    frames = await chat(llm_client, new_id(), "tell me a story")
    bubble = final_reply(frames)
    assert bubble.attrs["data-status"] == "complete"
    assert "Once upon a" in bubble.text and "length limit" in bubble.text
