"""Usage from the server, per-chat settings sent to the model, and each answer's provenance."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from htmxchat.answering.bots.openai import OpenAICompatBot
from htmxchat.answering.bots.select import ChosenBot
from htmxchat.answering.chat_settings import ChatSettings, SettingsError, parse_form
from htmxchat.ids import new_id
from htmxchat.store import DB_FILENAME, ChatStore
from tests.fake_openai import FakeOpenAI, Reply, chunk, sse, words_reply
from tests.helpers import chat, final_reply


@pytest.fixture
async def client(app_client, fake: tuple[FakeOpenAI, str]) -> TestClient:
    _, base_url = fake
    bot = OpenAICompatBot(base_url, "fake-model", stall_timeout=1.0, label="Fake")
    choice = ChosenBot(bot, ("fake-model", "other-model"), "Replies come from Fake.")
    return await app_client(choice, coalesce_window=0.0)


def usage_reply(text: str, prompt: int, completion: int) -> Reply:
    usage = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": 0}
    steps = words_reply(text, done=False)
    steps.append(sse({**chunk(), "choices": [], "usage": usage}, "[DONE]"))
    return Reply(chunks=steps)


async def test_usage_is_asked_for_recorded_and_shown(
    client: TestClient, fake: tuple[FakeOpenAI, str], store: ChatStore
) -> None:
    server, _ = fake
    server.enqueue(usage_reply("one two three", 17, 5))
    conversation = new_id()
    frames = await chat(client, conversation, "count")
    assert server.chat_requests[-1].json["stream_options"] == {"include_usage": True}
    stored = (await store.messages(conversation))[-1]
    assert (stored.prompt_tokens, stored.completion_tokens) == (17, 5)
    reply = final_reply(frames)
    assert "5 tokens" in reply.text and "Prompt tokens17" in reply.text


async def test_a_server_refusing_stream_options_is_asked_again_without_it(
    client: TestClient, fake: tuple[FakeOpenAI, str], store: ChatStore
) -> None:
    server, _ = fake
    server.enqueue(Reply.error(400, "Unrecognized request argument supplied: stream_options"))
    server.enqueue(Reply(chunks=words_reply("fine then")))
    server.enqueue(Reply(chunks=words_reply("again")))
    conversation = new_id()
    first = await chat(client, conversation, "hi")
    assert "fine then" in final_reply(first).text
    await chat(client, conversation, "more")
    bodies = [r.json for r in server.chat_requests]
    assert ["stream_options" in b for b in bodies] == [True, False, False]  # remembered
    stored = (await store.messages(conversation))[-1]
    assert stored.status == "complete" and stored.completion_tokens is None


async def save(client: TestClient, conversation: str, **fields: str) -> str:
    response = await client.post(f"/c/{conversation}/settings", data=fields)
    assert response.status == 200
    return await response.text()


async def test_chat_settings_reach_the_model_and_every_answer_records_them(
    client: TestClient, fake: tuple[FakeOpenAI, str], store: ChatStore, data_dir: Any
) -> None:
    server, base_url = fake
    conversation = new_id()
    page = await save(
        client,
        conversation,
        system_prompt="You are a pirate.",
        model="other-model",
        temperature="0.7",
        top_p="0.9",
        max_tokens="64",
        seed="42",
    )
    assert "Saved" in page and "You are a pirate." in page
    frames = await chat(client, conversation, "hello")
    body = server.chat_requests[-1].json
    assert body["messages"][0] == {"role": "system", "content": "You are a pirate."}
    assert body["model"] == "other-model"
    assert (body["temperature"], body["top_p"], body["max_tokens"], body["seed"]) == (
        0.7,
        0.9,
        64,
        42,
    )
    details = final_reply(frames).text
    assert "Answer details" in details and "You are a pirate." in details
    # Read back from disk by a second connection: it survives a restart.
    again = await ChatStore.open(data_dir / DB_FILENAME, recover=False)
    try:
        answer = (await again.messages(conversation))[-1]
        assert answer.provenance == {
            "connection": "default",
            "bot": "Fake",
            "base_url": base_url,
            "model": "other-model",
            "params": {"temperature": 0.7, "top_p": 0.9, "max_tokens": 64, "seed": 42},
            "system_prompt": "You are a pirate.",
        }
        assert (await again.chat_settings(conversation))["system_prompt"] == "You are a pirate."
    finally:
        await again.close()
    export = await client.get(f"/c/{conversation}/export.json")
    document = json.loads(await export.text())
    assert document["messages"][-1]["provenance"]["params"]["seed"] == 42
    assert document["settings"]["system_prompt"] == "You are a pirate."


async def test_a_preset_is_applied_in_one_click(
    client: TestClient, fake: tuple[FakeOpenAI, str]
) -> None:
    server, _ = fake
    conversation = new_id()
    page = await save(client, conversation, preset="concise")
    assert "Applied the Concise preset" in page
    await chat(client, conversation, "hi")
    body = server.chat_requests[-1].json
    assert body["messages"][0]["role"] == "system" and "briefly" in body["messages"][0]["content"]
    assert body["max_tokens"] == 256


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("temperature", "3", "Temperature must be from 0 to 2"),
        ("temperature", "warm", "Temperature must be a number"),
        ("top_p", "1.5", "Top p must be from 0 to 1"),
        ("max_tokens", "0", "Max tokens must be from 1"),
        ("max_tokens", "2.5", "Max tokens must be a positive whole number"),
        ("seed", "x", "Seed must be a whole number"),
    ],
)
def test_bad_settings_get_clear_messages(field: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        parse_form({field: value})


async def test_bad_settings_are_refused_and_not_saved(client: TestClient, store: ChatStore) -> None:
    conversation = new_id()
    page = await save(client, conversation, temperature="9", system_prompt="keep me")
    assert "Temperature must be from 0 to 2" in page and "keep me" in page  # input kept
    assert await store.chat_settings(conversation) == {}
    page = await save(client, conversation, model="no-such-model")
    assert "not offered" in page


def test_settings_fall_back_to_the_defaults() -> None:
    own = ChatSettings(temperature=0.1)
    merged = own.over(ChatSettings(system_prompt="default", temperature=1.0))
    assert merged == ChatSettings(system_prompt="default", temperature=0.1)
    assert merged.params() == {"temperature": 0.1}


async def test_the_model_server_gets_exactly_the_requests_the_user_caused(
    client: TestClient, fake: tuple[FakeOpenAI, str]
) -> None:
    """No hidden calls: titles, pages, settings and exports never ask the model anything."""
    server, _ = fake
    conversation = new_id()
    await chat(client, conversation, "A first message that becomes the title")
    for path in ("/", f"/c/{conversation}", f"/c/{conversation}/settings"):
        assert (await client.get(path)).status == 200
    await save(client, conversation, system_prompt="Short answers.")
    assert (await client.get(f"/c/{conversation}/export.json")).status == 200
    await chat(client, conversation, "second")
    assert [(r.method, r.path) for r in server.requests] == [
        ("POST", "/v1/chat/completions"),
        ("POST", "/v1/chat/completions"),
    ]
    assert [r.json["messages"][-1]["content"] for r in server.chat_requests] == [
        "A first message that becomes the title",
        "second",
    ]
