"""Several model servers at once: routing by picker value, one down, keys kept private."""

from __future__ import annotations

import asyncio
import json
import logging
import stat
from pathlib import Path

import aiohttp
import pytest

from htmxchat.answering.bots.detect import Candidate
from htmxchat.answering.bots.openai import OpenAICompatBot
from htmxchat.answering.bots.select import ChosenBot, choose_bot
from htmxchat.answering.connections import (
    KEYS_FILENAME,
    ConnectionError_,
    Connections,
    key_hint,
    local_candidates,
)
from htmxchat.chat import ChatInputError, ChatService
from htmxchat.cli import build_parser
from htmxchat.config import SettingsError, parse_local_servers, resolve_settings
from htmxchat.events import ReplyFinished
from htmxchat.ids import new_id
from htmxchat.keys import chat_key
from htmxchat.store import ChatStore
from tests.fake_openai import FakeOpenAI, Reply, words_reply
from tests.helpers import (
    Element,
    ScriptedBot,
    Tab,
    chat,
    chat_core,
    final_reply,
    open_conversation,
    parse_frame,
    receive_until,
)

SECRET = "sk-test-0123456789-SECRETKEY-wxyz"


async def reply_text(chat: ChatService, conversation: str, text: str, model: str) -> str:
    tab = await Tab.open(chat, conversation)
    try:
        await chat.send(conversation, text, model=model)
        events = await tab.until(ReplyFinished)
        return str(events[-1].message.content)
    finally:
        tab.close()


async def test_two_servers_at_once_each_request_reaches_its_own(
    aiohttp_server, store: ChatStore, data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    one, two = FakeOpenAI(models=("alpha",)), FakeOpenAI(models=("beta",))
    await one.serve_with(aiohttp_server)
    await two.serve_with(aiohttp_server)
    connections = Connections(data_dir)
    first = connections.add("Server One", one.base_url, None)
    second = connections.add("Server Two", two.base_url, SECRET)
    down = connections.add("Gone", "http://127.0.0.1:9/v1", None)  # discard port: refused
    await connections.refresh()
    assert (first.models, second.models) == (("alpha",), ("beta",))
    assert down.down and down.problem and second.down is False
    chat = chat_core(store, ScriptedBot(), directory=connections)
    one.enqueue(Reply(chunks=words_reply("from one")))
    two.enqueue(Reply(chunks=words_reply("from two")))
    conversation = new_id()
    assert await reply_text(chat, conversation, "hi", f"{first.id}|alpha") == "from one"
    assert await reply_text(chat, conversation, "hi", f"{second.id}|beta") == "from two"
    assert [r.json["model"] for r in one.chat_requests] == ["alpha"]
    assert [r.json["model"] for r in two.chat_requests] == ["beta"]
    assert two.chat_requests[0].headers["Authorization"] == f"Bearer {SECRET}"
    assert "Authorization" not in one.chat_requests[0].headers
    with pytest.raises(ChatInputError, match="not offered"):
        chat.answering.route(f"{first.id}|beta")
    answer = (await store.messages(conversation))[-1]
    assert answer.provenance is not None and answer.provenance["connection"] == second.id
    # The key: a 0600 file, shown only as a hint, never logged or in the provenance.
    path = data_dir / KEYS_FILENAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert second.key_hint == "sk-…wxyz"
    assert SECRET not in caplog.text and SECRET not in repr(second.bot)
    assert SECRET not in str(answer.provenance) and SECRET not in (down.problem or "")
    assert SECRET not in (data_dir / "connections.json").read_text()
    await connections.close()
    # Saved: a new directory reads them back, key included.
    again = Connections(data_dir)
    again.load()
    assert [c.name for c in again.all()] == ["Server One", "Server Two", "Gone"]
    assert again.all()[1].key_hint == "sk-…wxyz"


def test_bad_connections_get_clear_messages(data_dir: Path) -> None:
    connections = Connections(data_dir)
    with pytest.raises(ConnectionError_, match="name"):
        connections.add(" ", "http://127.0.0.1:1/v1", None)
    with pytest.raises(ConnectionError_, match="http://"):
        connections.add("x", "ftp://example", None)
    # An address as LM Studio shows it, without a scheme, is taken as http://.
    assert connections.add("x", "127.0.0.1:9/v1", None).base_url == "http://127.0.0.1:9/v1"
    with pytest.raises(ConnectionError_) as info:
        connections.add("x", "http://127.0.0.1:1/v1", "bad\nkey" + SECRET)
    assert SECRET not in str(info.value)
    assert key_hint(None) is None and key_hint("abcdefghijk") == "…hijk"


async def test_the_page_lists_every_server_groups_the_picker_and_never_shows_the_key(
    app_client, aiohttp_server, data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    default, other = FakeOpenAI(models=("main-model",)), FakeOpenAI(models=("side-model",))
    await default.serve_with(aiohttp_server)
    await other.serve_with(aiohttp_server)
    saved = Connections(data_dir)
    saved.add("Side server", other.base_url, SECRET)
    saved.add("Broken", "http://127.0.0.1:9/v1", None)
    bot = OpenAICompatBot(default.base_url, "main-model", label="Main")
    client = await app_client(ChosenBot(bot, ("main-model",), "Replies come from Main."))
    conversation = new_id()
    page = await (await client.get(f"/c/{conversation}")).text()
    assert (
        '<optgroup label="Side server" data-connection="side-server">' in page
        and 'value="side-server|side-model"' in page
    )
    assert '<optgroup label="Broken (down)" data-connection="broken">' in page and "Down: " in page
    settings_page = await (await client.get("/settings")).text()
    assert "Side server" in settings_page and "sk-…wxyz" in settings_page
    assert "Broken" in settings_page and "is not answering" in settings_page
    # A reply through the side server, picked in the page; the conversation remembers it.
    other.enqueue(Reply(chunks=words_reply("from the side")))
    frames = await chat(client, conversation, "hi", model="side-server|side-model")
    assert "from the side" in final_reply(frames).text
    assert [r.json["model"] for r in other.chat_requests] == ["side-model"]
    assert default.chat_requests == []
    page = await (await client.get(f"/c/{conversation}")).text()
    assert 'value="side-server|side-model" selected' in page
    # Adding a server: a bad URL is refused with a message that never repeats the key.
    response = await client.post(
        "/settings/connections", data={"name": "x", "base_url": "ftp://nope", "api_key": SECRET}
    )
    assert response.status == 200 and "must start with http://" in await response.text()
    response = await client.post(
        "/settings/connections",
        data={"name": "Third", "base_url": default.base_url, "api_key": "sk-another-key-9876"},
    )
    assert response.status == 200 and "sk-…9876" in await response.text()  # after redirect
    for text in [page, settings_page, *frames, await response.text(), caplog.text]:
        assert SECRET not in text and "sk-another-key-9876" not in text
    assert stat.S_IMODE((data_dir / KEYS_FILENAME).stat().st_mode) == 0o600


@pytest.mark.parametrize(
    "path",
    [
        "/settings/connections",
        "/c/{c}/settings",
        "/c/{c}/name",
        "/settings/connections/mine",
        "/settings/connections/mine/retry",
        "DELETE /settings/connections/mine",
    ],
)
async def test_the_new_routes_are_guarded(app_client, data_dir: Path, path: str) -> None:
    Connections(data_dir).add("Mine", "http://127.0.0.1:9/v1", None)
    saved = (data_dir / "connections.json").read_text()
    client = await app_client(ScriptedBot())
    method, _, url = path.format(c=new_id()).rpartition(" ")
    method = method or "POST"
    data = {"name": "Evil", "base_url": "http://127.0.0.1:1/v1", "system_prompt": "evil"}
    foreign = await client.request(
        method, url, data=data, headers={"Origin": "http://evil.example"}
    )
    assert foreign.status == 403
    # A plain HTML form on this page would send "Origin: null": refused too (htmx is used).
    null = await client.request(method, url, data=data, headers={"Origin": "null"})
    assert null.status == 403
    origin = str(client.make_url("/")).rstrip("/")
    async with aiohttp.ClientSession() as stranger:  # our Origin, but no token or cookie
        anonymous = await stranger.request(
            method, client.make_url(url), data=data, headers={"Origin": origin}
        )
        assert anonymous.status in (401, 403)
    assert (data_dir / "connections.json").read_text() == saved


async def servers(aiohttp_server, *models: str) -> list[FakeOpenAI]:
    fakes = [FakeOpenAI(models=(m,)) for m in models]
    for fake in fakes:
        await fake.serve_with(aiohttp_server)
    return fakes


def hx(client) -> dict[str, str]:
    """What htmx sends with a request from the settings page."""
    return {"HX-Request": "true", "HX-Current-URL": str(client.make_url("/settings"))}


async def test_two_servers_and_the_demo_bot_each_answer_while_one_is_down(
    app_client, aiohttp_server, data_dir: Path, store: ChatStore
) -> None:
    main, side = await servers(aiohttp_server, "main-model", "side-model")
    # The side server is still loading when htmxchat starts (503 to the model list).
    side.enqueue(Reply.error(503, "model is still loading"), endpoint="models")
    Connections(data_dir).add("Side", side.base_url, None)
    bot = OpenAICompatBot(main.base_url, "main-model", label="Main")
    # A local server that is not running: listed on the settings page, not in the picker.
    absent = Candidate("http://127.0.0.1:9/v1", "llama.cpp")
    client = await app_client(
        ChosenBot(bot, ("main-model",), "Replies come from Main."),
        coalesce_window=0.0,
        local_servers=[absent],
    )
    conversation = new_id()
    page = await (await client.get(f"/c/{conversation}")).text()
    assert '<optgroup label="Side (loading)" data-connection="side">' in page
    assert "Loading: " in page and "503" in page and "model is still loading" in page
    assert 'data-connection="demo"' in page and 'value="demo|"' in page
    assert "llama.cpp" not in page
    settings_page = await (await client.get("/settings")).text()
    assert 'data-connection="side" data-state="loading"' in settings_page
    assert "model is still loading" in settings_page and ">loading</span>" in settings_page
    assert 'data-connection="local-llama-cpp" data-state="absent"' in settings_page
    # a quiet line below the servers that answer, saying how to start it
    absent_at = settings_page.index("Not found on this computer")
    assert settings_page.index('data-connection="demo"') < absent_at
    assert settings_page.index('data-connection="local-llama-cpp"') > absent_at
    assert "llama-server -m model.gguf --port 8080" in settings_page
    assert 'data-connection="demo" data-state="up"' in settings_page
    # The others keep answering, each request reaching its own server.
    main.enqueue(Reply(chunks=words_reply("from main")))
    assert "from main" in final_reply(await chat(client, conversation, "a")).text
    demo_frames = await chat(client, conversation, "b", model="demo|")
    assert final_reply(demo_frames).text.strip()
    # Started meanwhile: "Try again" lists its models, and it answers.
    response = await client.post("/settings/connections/side/retry", headers=hx(client))
    text = await response.text()
    assert 'data-connection="side" data-state="up"' in text and "side-model" in text
    assert "Asked Side again: it answers." in text
    side.enqueue(Reply(chunks=words_reply("from side")))
    frames = await chat(client, conversation, "d", model="side|side-model")
    assert "from side" in final_reply(frames).text
    assert [r.json["messages"][-1]["content"] for r in main.chat_requests] == ["a"]
    assert [r.json["messages"][-1]["content"] for r in side.chat_requests] == ["d"]
    answers = [m for m in await store.messages(conversation) if m.role == "assistant"]
    assert [m.provenance["connection"] for m in answers if m.provenance] == [
        "default",
        "demo",
        "side",
    ]
    # The top bar names the connection the reply came from, live and after a reload.
    label = [e for e in parse_frame("".join(frames)) if e.id == "bot-label"]
    assert label and label[0].text == "Side" and label[0].attrs["hx-swap-oob"] == "true"
    assert 'placeholder="Message side-model…"' in "".join(frames)  # the model, by name
    page = await (await client.get(f"/c/{conversation}")).text()
    assert '<span id="bot-label"' in page and ">Side</span>" in page
    assert 'value="side|side-model" selected' in page
    # Loading again: the conversation keeps its choice, shown under that server.
    side.enqueue(Reply.error(503, "restarting"), endpoint="models")
    await client.post("/settings/connections/side/retry", headers=hx(client))
    page = await (await client.get(f"/c/{conversation}")).text()
    assert '<optgroup label="Side (loading)" data-connection="side">' in page
    assert 'value="side|side-model" selected' in page and ">Side</span>" in page
    other = await (await client.get(f"/c/{new_id()}")).text()
    assert ">Main</span>" in other  # a new conversation uses the default connection


async def test_add_edit_and_remove_a_server_through_the_page(
    app_client, aiohttp_server, data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    one, two = await servers(aiohttp_server, "one-model", "two-model")
    client = await app_client(ScriptedBot())
    seen: list[str] = []

    async def post(path: str, **data: str) -> str:
        response = await client.post(path, data=data, headers=hx(client))
        assert response.status == 200
        seen.append(await response.text())
        return seen[-1]

    page = await post("/settings/connections", name="Mine", base_url=one.base_url, api_key=SECRET)
    assert 'data-connection="mine" data-state="up"' in page and "one-model" in page
    assert "sk-…wxyz" in page
    seen.append(await (await client.get("/settings?edit=mine")).text())
    assert 'class="chat-settings-form edit-connection"' in seen[-1]
    assert 'value="Mine"' in seen[-1] and "blank keeps sk-…wxyz" in seen[-1]
    # A bad edit says why and keeps the saved connection as it was.
    page = await post(
        "/settings/connections/mine", name="Mine", base_url="ftp://nope", api_key=SECRET
    )
    assert "must start with http://" in page and 'value="ftp://nope"' in page
    # Moved to the second server; a blank key keeps the saved one.
    page = await post("/settings/connections/mine", name="Moved", base_url=two.base_url)
    assert "Saved Moved." in page and "two-model" in page and "sk-…wxyz" in page
    two.enqueue(Reply(chunks=words_reply("moved")))
    frames = await chat(client, new_id(), "hi", model="mine|two-model")
    assert "moved" in final_reply(frames).text
    assert two.chat_requests[-1].headers["Authorization"] == f"Bearer {SECRET}"
    assert json.loads((data_dir / KEYS_FILENAME).read_text()) == {"mine": SECRET}
    assert stat.S_IMODE((data_dir / KEYS_FILENAME).stat().st_mode) == 0o600
    page = await post(
        "/settings/connections/mine", name="Moved", base_url=two.base_url, forget_key="1"
    )
    assert "sk-…" not in page and json.loads((data_dir / KEYS_FILENAME).read_text()) == {}
    # Built-in connections cannot be edited or removed.
    response = await client.delete("/settings/connections/demo", headers=hx(client))
    assert "Only servers you added" in await response.text()
    response = await client.delete("/settings/connections/mine", headers=hx(client))
    seen.append(await response.text())
    assert "Removed Moved." in seen[-1] and 'data-connection="mine"' not in seen[-1]
    assert json.loads((data_dir / "connections.json").read_text()) == []
    response = await client.delete("/settings/connections/mine", headers=hx(client))
    assert response.status == 404
    for text in [*seen, *frames, caplog.text]:
        assert SECRET not in text


async def test_a_key_never_reaches_a_page_a_fragment_a_log_or_an_error(
    app_client, aiohttp_server, data_dir: Path, caplog: pytest.LogCaptureFixture, store
) -> None:
    caplog.set_level(logging.DEBUG)
    (side,) = await servers(aiohttp_server, "side-model")
    Connections(data_dir).add("Keyed", side.base_url, SECRET)
    client = await app_client(ScriptedBot(), coalesce_window=0.0)
    conversation = new_id()
    texts = [await (await client.get(path)).text() for path in ("/settings", f"/c/{conversation}")]
    # The server refuses the key and repeats it in its error, as some do.
    side.enqueue(Reply.error(401, f"Incorrect API key provided: {SECRET}."))
    frames = await chat(client, conversation, "hi", model="keyed|side-model")
    assert "401" in final_reply(frames).text
    side.enqueue(Reply.error(401, f"Incorrect API key provided: {SECRET}."), endpoint="models")
    texts.append(
        await (await client.post("/settings/connections/keyed/retry", headers=hx(client))).text()
    )
    assert 'data-connection="keyed" data-state="down"' in texts[-1]
    texts.append(await (await client.get(f"/c/{conversation}")).text())
    texts.append(await (await client.get(f"/c/{conversation}/settings")).text())
    texts.append(await (await client.get(f"/c/{conversation}/export.json")).text())
    stored = await store.messages(conversation)
    for text in [*texts, *frames, caplog.text, str(stored)]:
        assert SECRET not in text
    for path in (data_dir / "connections.json", data_dir / KEYS_FILENAME):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert SECRET not in (data_dir / "connections.json").read_text()


def test_local_servers_come_from_the_environment() -> None:
    assert [c.label for c in local_candidates(None)] == ["Ollama", "llama.cpp", "LM Studio"]
    found = local_candidates(["http://127.0.0.1:11434", "http://127.0.0.1:5000/v1"])
    assert [(c.label, c.base_url) for c in found] == [
        ("Ollama", "http://127.0.0.1:11434/v1"),
        ("Local server at http://127.0.0.1:5000/v1", "http://127.0.0.1:5000/v1"),
    ]
    assert parse_local_servers("off") == ()
    with pytest.raises(SettingsError, match="HTMXCHAT_LOCAL_SERVERS"):
        parse_local_servers("ftp://x")


async def test_the_default_connection_comes_from_the_flags_and_environment(
    data_dir: Path,
) -> None:
    settings = resolve_settings(
        build_parser().parse_args(["--base-url", "http://127.0.0.1:9/v1"]),
        {"HTMXCHAT_API_KEY": SECRET, "HTMXCHAT_LOCAL_SERVERS": "off"},
    )
    assert settings.api_key == SECRET and settings.local_servers == ()
    choice = await choose_bot(settings)
    connections = Connections(data_dir, default=choice, settings=settings)
    default = connections.default
    assert default is not None and default.kind == "default" and default.down
    assert default.key_hint == "sk-…wxyz" and SECRET not in (default.problem or "")
    assert [c.id for c in connections.all()] == ["default", "demo"]
    assert connections.label_for(None) == default.name == "127.0.0.1:9"
    assert connections.label_for("demo|") == "Demo bot"
    await connections.close()
    await choice.bot.close()


async def test_a_server_that_never_answers_is_down_without_holding_up_the_others(
    aiohttp_server, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("htmxchat.answering.connections.LIST_TIMEOUT", 0.3)
    hung, fine = await servers(aiohttp_server, "h", "f")
    hung.enqueue(Reply.json({"data": []}, delay=3600), endpoint="models")
    connections = Connections(data_dir)
    slow = connections.add("Hung", hung.base_url, None)
    quick = connections.add("Fine", fine.base_url, None)
    async with asyncio.timeout(2):
        await connections.refresh()
    assert slow.problem == "It did not answer within 0.3 seconds." and quick.models == ("f",)
    await connections.close()


async def test_the_default_server_down_at_start_up_can_be_tried_again(
    app_client, aiohttp_server
) -> None:
    (main,) = await servers(aiohttp_server, "late-model")
    bot = OpenAICompatBot(main.base_url, label="Main")
    down = ChosenBot(bot, (), "Replies come from Main.", "It was still starting.")
    client = await app_client(down, coalesce_window=0.0)
    page = await (await client.get("/settings")).text()
    assert 'data-connection="default" data-state="down"' in page
    assert "It was still starting." in page
    page = await (
        await client.post("/settings/connections/default/retry", headers=hx(client))
    ).text()
    assert 'data-connection="default" data-state="up"' in page and "late-model" in page
    with pytest.raises(ChatInputError, match="not offered"):  # now checked against the list
        client.app[chat_key].answering.route("forged-model")
    conversation = new_id()
    chat_page = await (await client.get(f"/c/{conversation}")).text()
    assert '<option value="late-model"' in chat_page
    frames = await chat(client, conversation, "hi", model="late-model")
    assert "late-model" in final_reply(frames).text
    assert [r.json["model"] for r in main.chat_requests] == ["late-model"]


async def test_open_pages_learn_of_every_change_of_servers(
    app_client, aiohttp_server, data_dir: Path
) -> None:
    """Adding, editing, asking again and removing a server each send every open page a new
    model picker (through the feed), so no page offers what is gone or misses what is new."""
    one, two = await servers(aiohttp_server, "one-model", "two-model")
    client = await app_client(ScriptedBot())
    ws, _ = await open_conversation(client, new_id())

    async def picker_after(response) -> Element:
        assert (await response).status == 200
        frames = await receive_until(ws, lambda f: 'id="model-picker"' in f)
        pickers = [e for e in parse_frame(frames[-1]) if e.id == "model-picker"]
        assert len(pickers) == 1 and pickers[0].attrs["hx-swap-oob"] == "outerHTML"
        return pickers[0]

    def groups(picker: Element) -> dict[str, list[str | None]]:
        (select,) = [e for e in picker.children if e.tag == "select"]
        return {
            str(g.attrs["label"]): [o.attrs.get("value") for o in g.children if o.tag == "option"]
            for g in select.children
        }

    picker = await picker_after(
        client.post(
            "/settings/connections",
            data={"name": "Mine", "base_url": one.base_url},
            headers=hx(client),
        )
    )
    assert groups(picker)["Mine"] == ["mine|one-model"]
    chosen = [
        o.attrs.get("value")
        for e in picker.children
        for g in e.children
        for o in g.children
        if "selected" in o.attrs
    ]
    assert chosen == [""]  # the server marks the conversation's choice: here the default
    picker = await picker_after(
        client.post(
            "/settings/connections/mine",
            data={"name": "Moved", "base_url": two.base_url},
            headers=hx(client),
        )
    )
    assert groups(picker)["Moved"] == ["mine|two-model"] and "Mine" not in groups(picker)
    two.enqueue(Reply.error(503, "restarting"), endpoint="models")
    picker = await picker_after(client.post("/settings/connections/mine/retry", headers=hx(client)))
    assert "Moved (loading)" in groups(picker)
    picker = await picker_after(client.delete("/settings/connections/mine", headers=hx(client)))
    assert not any(label.startswith("Moved") for label in groups(picker))
    # A page that joins without knowing the feed gets the picker with the list.
    again = await client.ws_connect("/ws")
    await again.send_json({"action": "sync", "conversation": new_id()})
    frames = await receive_until(again, lambda f: f.startswith("<!--frame kind=feed-snapshot "))
    assert [e.id for e in parse_frame(frames[-1])][-1] == "model-picker"
    await again.close()
    await ws.close()
