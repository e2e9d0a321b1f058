"""Model servers that come and go, for real over loopback: a server started after htmxchat
appears in open pages, one that stops shows as down, a message for a server that is down is
kept and explained (never answered by another bot) and answered after Retry, and every
error names where *that* server's setting is changed."""

from __future__ import annotations

import asyncio
import urllib.request

import pytest

from htmxchat.answering.bots import BotError
from htmxchat.answering.bots.openai import OpenAICompatBot
from htmxchat.answering.bots.openai_errors import ADDED_FIX, LOCAL_FIX
from htmxchat.answering.bots.select import ChosenBot
from htmxchat.answering.connections import Connections
from htmxchat.answering.watch import DOWN_MOST, ServerWatch, is_local
from htmxchat.ids import new_id
from htmxchat.store import ChatStore
from tests.fake_openai import FakeOpenAI, Reply, words_reply
from tests.helpers import (
    FakeModelServer,
    ScriptedBot,
    ServerProcess,
    chat,
    eventually,
    final_reply,
    find,
    free_port,
    open_conversation,
    parse_frame,
    receive_until,
)

# The promise: a server that comes or goes shows within this many seconds.
WITHIN = 5.0


def picker_in(frame: str) -> str | None:
    """The frame's new model picker, as text (None when the frame has none)."""
    found = find(parse_frame(frame), "model-picker")
    return None if found is None else repr(found)


async def test_a_server_started_late_appears_and_one_that_stops_shows_down(
    app_client, data_dir
) -> None:
    port = free_port()
    Connections(data_dir).add("Late", f"http://127.0.0.1:{port}/v1", None)
    client = await app_client(ScriptedBot(), watch_servers=True)
    ws, _ = await open_conversation(client, new_id())
    settings = await (await client.get("/settings")).text()
    assert 'data-connection="late" data-state="down"' in settings
    fake = FakeOpenAI(models=("late-model",))
    await fake.start(port)
    try:
        # No reload, no click: the open page's picker gains the server's model.
        await receive_until(ws, lambda f: "late|late-model" in (picker_in(f) or ""), WITHIN)
        settings = await (await client.get("/settings")).text()
        assert 'data-connection="late" data-state="up"' in settings and "late-model" in settings
    finally:
        await fake.stop()
    # Stopped: the picker says so (the model stays listed, under a down server).
    frames = await receive_until(ws, lambda f: "Late (down)" in (picker_in(f) or ""), WITHIN)
    assert "Down: " in (picker_in(frames[-1]) or "")
    settings = await (await client.get("/settings")).text()
    assert 'data-connection="late" data-state="down"' in settings
    await ws.close()


async def test_nothing_is_asked_while_no_page_is_open(app_client, data_dir) -> None:
    fake = FakeOpenAI(models=("m",))
    base_url = await fake.start(free_port())
    try:
        connections = Connections(data_dir)
        connections.add("Quiet", base_url, None)
        pages: list[object] = []
        watch = ServerWatch(connections, pages_open=lambda: bool(pages), changed=lambda: None)
        task = asyncio.create_task(watch.run())
        try:
            pages.append("a page")  # one opens: the server is asked
            await eventually(lambda: len(fake.requests) >= 1)
            pages.clear()
            asked = len(fake.requests)
            # None open: several of the watch's rounds pass and nothing more is asked.
            rounds = watch.rounds
            await eventually(lambda: watch.rounds >= rounds + 3)
            assert len(fake.requests) <= asked + 1  # at most one that was under way
        finally:
            task.cancel()
        await connections.close()
    finally:
        await fake.stop()


def test_a_down_server_is_asked_again_backing_off_and_remote_ones_rarely() -> None:
    assert is_local("http://127.0.0.1:8080/v1") and is_local("http://localhost:11434/v1")
    assert is_local("http://[::1]:8080/v1") and not is_local("https://api.openai.com/v1")
    assert DOWN_MOST + 1.5 < WITHIN  # the slowest a late local server can be seen


async def test_a_send_to_a_server_that_is_down_is_kept_explained_and_answered_after_retry(
    app_client, data_dir, store: ChatStore
) -> None:
    port = free_port()
    Connections(data_dir).add("Side", f"http://127.0.0.1:{port}/v1", None)
    default = ScriptedBot()
    client = await app_client(default, coalesce_window=0.0)
    conversation = new_id()
    frames = await chat(client, conversation, "are you there?", model="side|")
    failed = final_reply(frames)
    assert failed.attrs["data-status"] == "error"
    assert "is not answering" in failed.text and "Edit button on the Servers page" in failed.text
    assert "Retry" in failed.text
    # The message is kept, and no other bot answered it.
    assert default.histories == []
    stored = await store.messages(conversation)
    assert [(m.role, m.content) for m in stored] == [("user", "are you there?"), ("assistant", "")]
    fake = FakeOpenAI(models=("side-model",))
    await fake.start(port)
    try:
        fake.enqueue(Reply(chunks=words_reply("Here now.")))
        ws, _ = await open_conversation(client, conversation)
        await ws.send_json(
            {
                "action": "regenerate",
                "conversation": conversation,
                "target": stored[-1].id,
                "model": "side|",
            }
        )
        await receive_until(ws, lambda f: 'msg-assistant" data-status="complete"' in f)
        answers = [m for m in await store.messages(conversation) if m.role == "assistant"]
        assert answers[-1].content == "Here now." and answers[-1].status == "complete"
        assert [r.json["messages"][-1]["content"] for r in fake.chat_requests] == ["are you there?"]
        assert default.histories == []
        await ws.close()
    finally:
        await fake.stop()


async def test_the_default_server_down_at_start_is_the_choice_not_the_demo_bot(
    app_client, store: ChatStore
) -> None:
    """Started before its model server: the page selects that server, and a send says it is
    not answering instead of being answered by the demo bot."""
    port = free_port()
    bot = OpenAICompatBot(f"http://127.0.0.1:{port}/v1", label="llama.cpp")
    client = await app_client(ChosenBot(bot, (), "Replies come from llama.cpp.", "down"))
    conversation = new_id()
    page = await (await client.get(f"/c/{conversation}")).text()
    assert 'value="" selected' in page and 'value="demo|" selected' not in page
    frames = await chat(client, conversation, "hello")
    failed = final_reply(frames)
    assert failed.attrs["data-status"] == "error" and "is not answering" in failed.text
    assert "HTMXCHAT_BASE_URL" in failed.text
    answers = [m for m in await store.messages(conversation) if m.role == "assistant"]
    assert [m.bot for m in answers] == ["llama.cpp"]


async def test_each_error_names_where_that_server_is_set(aiohttp_server) -> None:
    fake = FakeOpenAI()
    base_url = await fake.serve_with(aiohttp_server)
    places = [
        (None, "HTMXCHAT_API_KEY", "Edit button"),
        (ADDED_FIX, "Edit button on the Servers page", "HTMXCHAT_API_KEY"),
        (LOCAL_FIX, "Servers page", "HTMXCHAT_API_KEY"),
    ]
    for fix, named, not_named in places:
        fake.enqueue(Reply.error(401, "Invalid API Key"))
        options = {} if fix is None else {"fix": fix}
        bot = OpenAICompatBot(base_url, "m", api_key="wrong", **options)  # type: ignore[arg-type]
        with pytest.raises(BotError) as failed:
            async for _ in bot.stream([]):
                pass
        await bot.close()
        assert named in str(failed.value) and not_named not in str(failed.value)


async def test_a_server_loading_its_model_shows_loading(aiohttp_server, data_dir) -> None:
    fake = FakeOpenAI(models=("m",))
    base_url = await fake.serve_with(aiohttp_server)
    fake.enqueue(Reply.error(503, "Loading model", type_="unavailable_error"), endpoint="models")
    connections = Connections(data_dir)
    connection = connections.add("Busy", base_url, None)
    await connections.refresh([connection])
    assert connection.state == "loading" and "still loading" in (connection.problem or "")
    await connections.refresh([connection])
    assert connection.state == "up" and connection.models == ("m",)
    await connections.close()


async def test_choosing_a_model_tells_every_tab_on_the_conversation(
    app_client, aiohttp_server, data_dir
) -> None:
    fake = FakeOpenAI(models=("side-model",))
    base_url = await fake.serve_with(aiohttp_server)
    Connections(data_dir).add("Side", base_url, None)
    client = await app_client(ScriptedBot())
    conversation = new_id()
    other, _ = await open_conversation(client, conversation)
    response = await client.post(
        f"/c/{conversation}/model", data={"model": "side|side-model"}, headers={"HX-Request": "1"}
    )
    assert response.status == 204
    frames = await receive_until(other, lambda f: "bot-label" in f)
    picker = find(parse_frame(frames[-1]), "model-picker")
    assert picker is not None and 'value="side|side-model" selected' in frames[-1]
    label = find(parse_frame(frames[-1]), "bot-label")
    assert label is not None and label.text == "Side"
    page = await (await client.get(f"/c/{conversation}")).text()
    assert 'value="side|side-model" selected' in page
    refused = await client.post(
        f"/c/{conversation}/model", data={"model": "side|forged"}, headers={"HX-Request": "1"}
    )
    assert refused.status == 422 and "not offered" in await refused.text()
    await other.close()


def test_the_terminal_and_the_page_agree_on_htmxchat_local_servers(data_dir) -> None:
    """`HTMXCHAT_LOCAL_SERVERS=<url> htmxchat` with a server there: the terminal says replies
    come from it (not from the demo bot), and the Servers page lists it as the default,
    ready."""
    with FakeModelServer() as model:
        env = {"HTMXCHAT_BOT": "auto", "HTMXCHAT_LOCAL_SERVERS": model.base_url}
        server = ServerProcess(data_dir, "--port", "0", env=env)
        try:
            said = "".join(server.output)
            assert f"Replies come from Local server at {model.base_url}" in said
            assert "demo bot" not in said
            request = urllib.request.Request(f"{server.base_url}settings", headers=server.headers)
            with urllib.request.urlopen(request, timeout=10) as response:
                page = response.read().decode()
            assert 'data-connection="default" data-state="up"' in page
            assert model.base_url in page
        finally:
            server.stop()
