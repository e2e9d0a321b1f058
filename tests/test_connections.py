"""Several model servers at once: routing by picker value, one down, keys kept private."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import aiohttp
import pytest

from htmxchat.bots.openai import OpenAICompatBot
from htmxchat.bots.select import ChosenBot
from htmxchat.chat import ChatInputError, ChatService
from htmxchat.connections import KEYS_FILENAME, ConnectionError_, Connections, key_hint
from htmxchat.events import ReplyFinished
from htmxchat.ids import new_id
from htmxchat.store import ChatStore
from tests.fake_openai import FakeOpenAI, Reply, words_reply
from tests.helpers import ScriptedBot, Tab
from tests.test_llm_chat import chat, final_reply

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
    chat = ChatService(store, ScriptedBot(), directory=connections)
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
        chat.route(f"{first.id}|beta")
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
    assert "Broken" in settings_page and "is not reachable" in settings_page
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
        "/settings/connections", data={"name": "x", "base_url": "nope", "api_key": SECRET}
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


@pytest.mark.parametrize("path", ["/settings/connections", "/c/{c}/settings"])
async def test_the_new_routes_are_guarded(app_client, data_dir: Path, path: str) -> None:
    client = await app_client(ScriptedBot())
    url = path.format(c=new_id())
    data = {"name": "Evil", "base_url": "http://127.0.0.1:1/v1", "system_prompt": "evil"}
    foreign = await client.post(url, data=data, headers={"Origin": "http://evil.example"})
    assert foreign.status == 403
    assert not (data_dir / "connections.json").exists()
    origin = str(client.make_url("/")).rstrip("/")
    async with aiohttp.ClientSession() as stranger:  # our Origin, but no token or cookie
        anonymous = await stranger.post(client.make_url(url), data=data, headers={"Origin": origin})
        assert anonymous.status in (401, 403)
    assert not (data_dir / "connections.json").exists()
