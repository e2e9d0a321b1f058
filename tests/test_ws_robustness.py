"""Bad input over the socket: oversize frames, junk, floods, stuck and dead peers."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable

import aiohttp
import pytest
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestClient

from htmxchat import reply as reply_module
from htmxchat import ws as ws_module
from htmxchat.chat import MAX_MESSAGE_CHARS
from htmxchat.ids import new_id
from htmxchat.keys import chat_key, sockets_key
from htmxchat.store import ChatStore
from tests.helpers import ScriptedBot, find, parse_frame

# In the final fragment of a reply (a user message is "complete" as well, but not this).
REPLY_DONE = 'class="msg msg-assistant" data-status="complete"'


async def next_text(ws: aiohttp.ClientWebSocketResponse, seconds: float = 5.0) -> str:
    message = await ws.receive(timeout=seconds)
    assert message.type == WSMsgType.TEXT, message
    return str(message.data)


async def notice_text(ws: aiohttp.ClientWebSocketResponse) -> str:
    """The next notice the server shows (skipping other fragments)."""
    async with asyncio.timeout(5):
        while True:
            notice = find(parse_frame(await next_text(ws)), "notice")
            if notice is not None:
                return notice.text.strip()


async def still_serving(client: TestClient, bot: ScriptedBot) -> None:
    """A fresh socket on a fresh conversation gets a complete reply."""
    conversation = new_id()
    bot.enqueue(["still ", "here"])
    ws = await client.ws_connect("/ws")
    await ws.send_json({"action": "send", "conversation": conversation, "message": "ping"})
    async with asyncio.timeout(5):
        while REPLY_DONE not in await next_text(ws):
            pass
    await ws.close()


async def eventually(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    """Wait until `condition()` holds (TimeoutError after `seconds`)."""
    async with asyncio.timeout(seconds):
        for _ in itertools.count():
            if condition():
                return
            await asyncio.sleep(0.02)


def app_of(client: TestClient) -> web.Application:
    app = client.app
    assert app is not None
    return app


async def test_oversize_frame_closes_with_1009_and_others_keep_working(
    client: TestClient, bot: ScriptedBot, store: ChatStore
) -> None:
    ws = await client.ws_connect("/ws")
    payload = json.dumps(
        {"action": "send", "conversation": new_id(), "message": "x" * ws_module.MAX_FRAME_BYTES}
    )
    await ws.send_str(payload)
    closing = await ws.receive(timeout=5)
    assert closing.type in (WSMsgType.CLOSE, WSMsgType.CLOSED)
    assert ws.close_code == aiohttp.WSCloseCode.MESSAGE_TOO_BIG
    assert await store.conversations() == [] and bot.histories == []
    await still_serving(client, bot)


async def test_huge_frame_is_dropped_without_hurting_the_server(
    client: TestClient, bot: ScriptedBot
) -> None:
    ws = await client.ws_connect("/ws")
    try:
        await ws.send_str("x" * (10 * 1024 * 1024))
        await ws.receive(timeout=5)
    except (ConnectionError, aiohttp.ClientError):
        pass  # the server may drop us while we are still sending
    await still_serving(client, bot)


async def test_too_long_message_gets_a_readable_error(
    client: TestClient, bot: ScriptedBot, store: ChatStore
) -> None:
    ws = await client.ws_connect("/ws")
    conversation = new_id()
    too_long = "y" * (MAX_MESSAGE_CHARS + 1)
    await ws.send_json({"action": "send", "conversation": conversation, "message": too_long})
    text = await notice_text(ws)
    assert f"{MAX_MESSAGE_CHARS:,}" in text and "Shorten" in text
    assert await store.messages(conversation) == [] and bot.histories == []
    assert not ws.closed
    await ws.close()


BAD_FRAMES = [
    "not json",
    "{",
    "[1, 2]",
    "null",
    '"a string"',
    "12",
    "[" * 100_000 + "]" * 100_000,  # nesting deep enough to blow the recursion limit
    json.dumps({"action": "dance", "conversation": "{id}"}),
    json.dumps({"action": ["send"], "conversation": "{id}"}),
    json.dumps({"action": "send"}),
    json.dumps({"action": "send", "conversation": 12345678901234567890}),
    json.dumps({"action": "send", "conversation": 'x" onload="alert(1)'}),
    json.dumps({"action": "send", "conversation": "{id}, body"}),
    json.dumps({"action": "send", "conversation": "{id}", "message": 5}),
    json.dumps({"action": "send", "conversation": "{id}", "message": ["a"]}),
    json.dumps({"action": "send", "conversation": "{id}", "message": None}),
    json.dumps({"action": "send", "conversation": "{id}", "message": {"a": 1}}),
]


@pytest.mark.parametrize("frame", BAD_FRAMES, ids=range(len(BAD_FRAMES)))
async def test_bad_frames_get_a_message_and_the_socket_stays_usable(
    client: TestClient, bot: ScriptedBot, store: ChatStore, frame: str
) -> None:
    conversation = new_id()
    ws = await client.ws_connect("/ws")
    await ws.send_str(frame.replace("{id}", conversation))
    assert await notice_text(ws)  # a readable sentence, not a traceback
    assert await store.conversations() == [] and bot.histories == []
    # the same socket still works
    bot.enqueue(["ok"])
    await ws.send_json({"action": "send", "conversation": conversation, "message": "fine"})
    async with asyncio.timeout(5):
        while REPLY_DONE not in await next_text(ws):
            pass
    await ws.close()


async def test_binary_frames_get_a_message(client: TestClient, store: ChatStore) -> None:
    ws = await client.ws_connect("/ws")
    await ws.send_bytes(b"\x00\x01\xff" * 100)
    assert "text" in await notice_text(ws)
    assert await store.conversations() == []
    await ws.close()


@pytest.mark.parametrize("message", ["", " ", "\n\t \r\n"])
async def test_empty_messages_start_nothing(
    client: TestClient, bot: ScriptedBot, store: ChatStore, message: str
) -> None:
    conversation = new_id()
    ws = await client.ws_connect("/ws")
    await ws.send_json({"action": "send", "conversation": conversation, "message": message})
    await ws.send_json({"action": "sync", "conversation": conversation})
    await next_text(ws)
    await asyncio.sleep(0.05)
    assert await store.conversations() == [] and bot.histories == []
    await ws.close()


async def test_lone_surrogates_do_not_break_storage_or_sending(
    client: TestClient, bot: ScriptedBot, store: ChatStore
) -> None:
    # JSON allows "\ud800" (half a UTF-16 pair); neither SQLite nor send_str accepts it.
    conversation = new_id()
    ws = await client.ws_connect("/ws")
    bot.enqueue(["ok"])
    raw = '{"action": "send", "conversation": "ID", "message": "a\\ud800b \\ud83d\\ude00"}'
    await ws.send_str(raw.replace("ID", conversation))
    async with asyncio.timeout(5):
        while REPLY_DONE not in await next_text(ws):
            pass
    (user, _) = await store.messages(conversation)
    assert user.content == "a\ufffdb \U0001f600"
    await ws.close()


async def test_flood_of_sends_during_a_reply_gets_busy_answers(
    client: TestClient, bot: ScriptedBot, store: ChatStore
) -> None:
    bot.gate = asyncio.Event()
    bot.enqueue(["the ", "only ", "reply"])
    conversation = new_id()
    ws = await client.ws_connect("/ws")
    flood = 300
    for number in range(flood):
        await ws.send_json(
            {"action": "send", "conversation": conversation, "message": f"msg {number}"}
        )
    busy = 0
    async with asyncio.timeout(10):
        while busy < flood - 1:
            notice = find(parse_frame(await next_text(ws)), "notice")
            if notice is not None and "still being written" in notice.text:
                busy += 1
    assert len(bot.histories) == 1  # one reply at a time per conversation
    assert [m.role for m in await store.messages(conversation)] == ["user", "assistant"]
    bot.gate.set()
    async with asyncio.timeout(5):
        while REPLY_DONE not in await next_text(ws):
            pass
    contents = [m.content for m in await store.messages(conversation)]
    assert contents == ["msg 0", "the only reply"]
    await ws.close()


async def test_flood_from_a_second_tab_is_refused_too(
    client: TestClient, bot: ScriptedBot, store: ChatStore
) -> None:
    bot.gate = asyncio.Event()
    conversation = new_id()
    first, second = await client.ws_connect("/ws"), await client.ws_connect("/ws")
    await first.send_json({"action": "send", "conversation": conversation, "message": "one"})
    await second.send_json({"action": "send", "conversation": conversation, "message": "two"})
    assert "still being written" in await notice_text(second)
    bot.gate.set()
    async with asyncio.timeout(5):
        while REPLY_DONE not in await next_text(first):
            pass
    assert len(bot.histories) == 1
    assert [m.content for m in await store.messages(conversation)] == ["one", "ok"]
    await first.close()
    await second.close()


async def test_client_that_stops_reading_is_dropped_and_memory_stays_bounded(
    client: TestClient, bot: ScriptedBot, store: ChatStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ws_module, "SEND_TIMEOUT_SECONDS", 0.5)
    # This reply is larger than one answer may be; lift that limit so only the socket's
    # back-pressure is under test here.
    monkeypatch.setattr(reply_module, "MAX_ANSWER_CHARS", 20 * 1024 * 1024)
    app = app_of(client)
    piece = "z" * 32 * 1024
    pieces = 400  # 12.5 MiB: far more than the socket buffers hold
    bot.enqueue([piece] * pieces)
    conversation = new_id()
    stuck = await client.ws_connect("/ws", max_msg_size=0)
    await stuck.send_json({"action": "send", "conversation": conversation, "message": "go"})
    # Never read again. The server must drop this socket instead of buffering the reply.
    chat = app[chat_key]
    (server_ws,) = app[sockets_key]
    transport = server_ws._req.transport  # type: ignore[union-attr]
    largest_buffer = 0
    async with asyncio.timeout(20):
        while app[sockets_key]:
            if not transport.is_closing():
                largest_buffer = max(largest_buffer, transport.get_write_buffer_size())
            await asyncio.sleep(0.01)
    # What the server holds for this client beyond the kernel's socket buffers: about one
    # frame plus aiohttp's writer limit, not the 12.5 MiB reply.
    assert largest_buffer < 1024 * 1024, largest_buffer
    assert transport.is_closing()
    await eventually(lambda: not chat.is_busy(conversation), 20)  # the reply goes on to the end
    (_, reply) = await store.messages(conversation)
    assert reply.status == "complete" and len(reply.content) == len(piece) * pieces
    await still_serving(client, bot)
    stuck_task = [t for t in asyncio.all_tasks() if t.get_name() == "ws-writer"]
    assert stuck_task == []


async def test_dead_peer_is_closed_by_the_heartbeat(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ws_module, "HEARTBEAT_SECONDS", 0.2)
    app = app_of(client)
    # autoping=False: the client never answers pings, like a peer that vanished.
    ws = await client.ws_connect("/ws", autoping=False)
    assert len(app[sockets_key]) == 1
    await eventually(lambda: not app[sockets_key])
    async with asyncio.timeout(5):
        while not ws.closed:
            message = await ws.receive()
            if message.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.ERROR):
                break


async def test_no_compression_is_negotiated(client: TestClient) -> None:
    # permessage-deflate costs memory per socket and buys nothing on loopback.
    ws = await client.ws_connect("/ws", compress=15)
    assert ws.compress == 0
    await ws.close()


async def test_a_big_finished_reply_is_rendered_off_the_event_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The final fragment of a long answer is one full Markdown render: on the event loop it
    # would stall every other socket, so the frame builder has it rendered in the render
    # process first (its HTML lands in the cache the fragment reads).
    from htmxchat.events import ReplyFinished
    from htmxchat.markdown import render as render_module
    from htmxchat.markdown.jobs import RenderJob
    from htmxchat.markdown.offload import PROCESS_CHARS, prerender_events
    from htmxchat.markdown.worker import WORKER
    from htmxchat.models import Message

    parsed_here: list[int] = []
    parse = render_module.MD.parse

    def spy(text: str, env: object = None) -> object:
        parsed_here.append(len(text))
        return parse(text, env)  # type: ignore[arg-type]

    monkeypatch.setattr(render_module.MD, "parse", spy)
    render_module.clear_caches()
    big = "Some *words* here.\n\n" * (PROCESS_CHARS // 10)
    small = Message(new_id(), new_id(), "assistant", "short")
    large = Message(new_id(), new_id(), "assistant", big, reasoning="think")
    try:
        await prerender_events([ReplyFinished(small)])
        # Small answers are rendered with the frame.
        assert not RenderJob("markdown", "short").cached() and WORKER.pid is None
        await prerender_events([ReplyFinished(large)])
        assert RenderJob("markdown", big).cached() and parsed_here == []
        assert not RenderJob("markdown", "think").cached()  # small: left for the frame
    finally:
        await WORKER.stop()
