"""Titles: the first words of the first message, unless the user asks the model to name the
chat; no request reaches a model server that the user did not ask for."""

from __future__ import annotations

from pathlib import Path

from aiohttp.test_utils import TestClient

from htmxchat.answering.bots.openai import OpenAICompatBot
from htmxchat.answering.bots.select import ChosenBot
from htmxchat.answering.connections import Connections
from htmxchat.answering.naming import MAX_TITLE, excerpt, tidy
from htmxchat.ids import new_id
from htmxchat.models import Message
from htmxchat.store import ChatStore
from tests.fake_openai import FakeOpenAI, Reply, words_reply
from tests.helpers import chat


def hx(client: TestClient) -> dict[str, str]:
    return {"HX-Request": "true"}


async def name_it(client: TestClient, conversation: str) -> str:
    response = await client.post(f"/c/{conversation}/name", headers=hx(client))
    assert response.status == 200
    return await response.text()


async def test_only_replies_and_an_explicit_naming_reach_a_model_server(
    app_client, aiohttp_server, data_dir: Path, store: ChatStore
) -> None:
    main, side = FakeOpenAI(models=("main-model",)), FakeOpenAI(models=("side-model",))
    await main.serve_with(aiohttp_server)
    await side.serve_with(aiohttp_server)
    Connections(data_dir).add("Side", side.base_url, None)
    bot = OpenAICompatBot(main.base_url, "main-model", label="Main")
    client = await app_client(ChosenBot(bot, ("main-model",), "Main."), coalesce_window=0.0)
    # At start-up: its models, and (once) how it describes its context; neither is a model.
    described = [("GET", "/props"), ("POST", "/api/show")]
    assert [(r.method, r.path) for r in side.requests] == [("GET", "/v1/models"), *described]
    conversation = new_id()
    await chat(client, conversation, "A first message that becomes the title")
    assert (await store.conversation(conversation)).title.startswith("A first message")  # type: ignore[union-attr]
    # Reading, opening panels, saving settings, exporting: nothing asks a model.
    for path in ("/", f"/c/{conversation}", f"/c/{conversation}/settings", "/settings"):
        assert (await client.get(path)).status == 200
    for fmt in ("md", "json"):
        assert (await client.get(f"/c/{conversation}/export.{fmt}")).status == 200
    response = await client.post(
        f"/c/{conversation}/settings", data={"model": "side|side-model"}, headers=hx(client)
    )
    assert "Saved" in await response.text()
    await chat(client, conversation, "second")
    assert [(r.method, r.path) for r in main.requests] == [("POST", "/v1/chat/completions")]
    assert len(side.requests) == 4
    # Asked for explicitly: one request, to the chat's own model, and the title changes.
    side.enqueue(Reply(chunks=words_reply('"Pirate Treasure Hunt."')))
    page = await name_it(client, conversation)
    assert "Named “Pirate Treasure Hunt” by Side." in page
    naming = side.chat_requests[-1].json
    assert naming["model"] == "side-model"
    assert "A first message that becomes the title" in naming["messages"][-1]["content"]
    assert (await store.conversation(conversation)).title == "Pirate Treasure Hunt"  # type: ignore[union-attr]
    assert [(r.method, r.path) for r in side.requests] == [
        ("GET", "/v1/models"),
        *described,
        ("POST", "/v1/chat/completions"),
        ("POST", "/v1/chat/completions"),
    ]
    assert len(main.requests) == 1


async def test_naming_that_fails_says_why_and_keeps_the_title(
    app_client, aiohttp_server, store: ChatStore
) -> None:
    fake = FakeOpenAI(models=("m",))
    await fake.serve_with(aiohttp_server)
    bot = OpenAICompatBot(fake.base_url, "m", label="Fake")
    client = await app_client(ChosenBot(bot, ("m",), "Fake."), coalesce_window=0.0)
    empty = new_id()
    assert "nothing to name yet" in await name_it(client, empty)
    assert fake.requests == []
    conversation = new_id()
    await chat(client, conversation, "Tell me about ships")
    fake.enqueue(Reply.error(500, "out of memory"))
    page = await name_it(client, conversation)
    assert 'role="alert"' in page and "Fake (m) could not name this chat" in page
    assert "out of memory" in page
    fake.enqueue(Reply(chunks=words_reply("   \n ")))
    assert "answered without a title" in await name_it(client, conversation)
    assert (await store.conversation(conversation)).title == "Tell me about ships"  # type: ignore[union-attr]


async def test_a_new_title_reaches_every_tab(app_client, aiohttp_server) -> None:
    fake = FakeOpenAI(models=("m",))
    await fake.serve_with(aiohttp_server)
    bot = OpenAICompatBot(fake.base_url, "m", label="Fake")
    client = await app_client(ChosenBot(bot, ("m",), "Fake."), coalesce_window=0.0)
    conversation = new_id()
    await chat(client, conversation, "hello")
    other = await client.ws_connect("/ws")
    await other.send_json({"action": "sync", "conversation": conversation, "req": 1})
    await other.receive_str(timeout=5)
    fake.enqueue(Reply(chunks=words_reply("Greetings")))
    await name_it(client, conversation)
    for _ in range(5):
        frame = await other.receive_str(timeout=5)
        if "Greetings" in frame:
            break
    else:
        raise AssertionError("the other tab never heard of the new title")
    await other.close()


def test_titles_are_tidied() -> None:
    assert tidy('## Title: "Ships at sea."\nmore') == "Ships at sea"
    assert tidy("**Bold idea**") == "Bold idea"
    long = tidy("word " * 40)
    assert len(long) <= MAX_TITLE + 1 and long.endswith("…")
    messages = [
        Message("1", "c", "user", "Hi"),
        Message("2", "c", "assistant", ""),
        Message("3", "c", "assistant", "Hello"),
    ]
    assert excerpt(messages) == "User: Hi\n\nAssistant: Hello"
