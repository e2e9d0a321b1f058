"""The streaming protocol over the WebSocket: fragments, order, ids, escaping, sync."""

from __future__ import annotations

import asyncio
import json
import re

import pytest
from aiohttp.test_utils import TestClient

from htmxchat.fragments import frame_header
from htmxchat.ids import new_id
from htmxchat.markdown.html import stream_ids
from htmxchat.store import ChatStore
from tests.helpers import (
    XSS,
    ScriptedBot,
    find,
    is_finished,
    open_conversation,
    parse_frame,
    receive_until,
    shown_messages,
    stream_tail,
)
from tests.oob_dom import Node, Page, serialise


def resume_from(conversation: str, req: int, start: dict[str, str | None]) -> dict[str, object]:
    """A page's `sync` asking to go on from the join whose header is `start`."""
    return {
        "action": "sync",
        "conversation": conversation,
        "req": req,
        "epoch": start["data-epoch"],
        "seq": start["data-seq"],
    }


async def test_send_streams_fragments_in_order(client: TestClient, bot: ScriptedBot) -> None:
    conversation = new_id()
    bot.enqueue(["Hello ", "there, ", "friend."])
    ws, _ = await open_conversation(client, conversation)
    await ws.send_json({"action": "send", "conversation": conversation, "message": "Hi bot"})
    frames = await receive_until(ws, is_finished)
    elements = [element for frame in frames for element in parse_frame(frame)]

    # a. the input is cleared (a fresh empty textarea, focused, placeholder kept)
    cleared = [e for e in elements if e.id == "composer-input"]
    assert len(cleared) == 1
    assert cleared[0].attrs.get("hx-swap-oob") == "true"
    assert cleared[0].text == ""
    assert "autofocus" in cleared[0].attrs and cleared[0].attrs.get("placeholder")

    # b. the user message is appended to the transcript, then c. the reply element
    appends = [e for e in elements if e.id == "messages"]
    assert [a.attrs.get("hx-swap-oob") for a in appends] == ["beforeend", "beforeend"]
    user, reply = (a.children[0] for a in appends)
    assert "msg-user" in (user.attrs["class"] or "") and "Hi bot" in user.text
    assert (
        "msg-assistant" in (reply.attrs["class"] or "")
        and reply.attrs["data-status"] == "streaming"
    )
    reply_id = reply.id
    assert reply_id and reply_id.startswith("m-")

    # d. deltas carry only the new text, appended to the reply body's unfinished tail
    tail = stream_tail(reply_id)
    deltas = [
        e
        for e in elements
        if e.id == tail and e.attrs.get("hx-swap-oob") in ("innerHTML", "beforeend")
    ]
    # (the first sets the tail, the later ones append to it)
    assert [d.attrs["hx-swap-oob"] for d in deltas] == ["innerHTML", "beforeend", "beforeend"]
    assert [d.text for d in deltas] == ["Hello ", "there, ", "friend."]

    # e. the final fragment replaces the reply with its finished render, keeping the body
    # the page streamed (the text does not come again), so the page shows the whole answer
    final = [e for e in elements if e.id == reply_id and e.attrs.get("hx-swap-oob") == "true"]
    assert len(final) == 1 and final[0].attrs["data-status"] == "complete"
    assert "Hello there, friend." not in final[0].text
    shown = shown_messages(frames)
    assert [m.attrs["data-status"] for m in shown] == ["complete", "complete"]
    assert "Hello there, friend." in shown[1].text

    # at the end the Markdown is committed (a block before the tail, the tail removed), so
    # the page already shows the final render when the finished message replaces it
    order = [
        (e.id, e.attrs.get("hx-swap-oob")) for e in elements if e.id in {"messages", tail, reply_id}
    ]
    assert order == [
        ("messages", "beforeend"),
        ("messages", "beforeend"),
        (tail, "innerHTML"),
        (tail, "beforeend"),
        (tail, "beforeend"),
        (tail, "beforebegin"),
        (tail, "delete"),
        (reply_id, "true"),
    ]
    await ws.close()


async def test_final_fragment_is_what_a_reload_shows(client: TestClient, bot: ScriptedBot) -> None:
    conversation = new_id()
    bot.enqueue(["Line one\n\n", "line <two>"])
    ws, _ = await open_conversation(client, conversation)
    await ws.send_json({"action": "send", "conversation": conversation, "message": "x"})
    frames = await receive_until(ws, is_finished)
    # what the page shows after the stream (the finished message keeping the streamed body,
    # whose chunks have no box of their own) is what a reload shows
    streamed = Page('<div id="messages"></div>')
    for frame in frames:
        streamed.apply(frame, lenient=True)
    reloaded = Page(await (await client.get(f"/c/{conversation}")).text())
    answer = next(n for n in parse_frame(frames[-1]) if n.tag == "article").id
    assert answer is not None
    after, before = streamed.find(answer), reloaded.find(answer)
    assert after is not None and before is not None
    # the answer's Markdown: carried by the reload, fetched by Copy after streaming
    source = after.attr("data-source")
    assert source is not None and after.attr("data-markdown") is None
    fetched = await client.get(source)
    assert fetched.status == 200 and fetched.content_type == "text/plain"
    assert await fetched.text() == before.attr("data-markdown") == "Line one\n\nline <two>"
    for node in (after, before):
        node.attrs = [(k, v) for k, v in node.attrs if k not in ("data-source", "data-markdown")]
    prefix = stream_ids(answer.removeprefix("m-"), "body")[0]  # streamed blocks' ids
    assert serialise(_unchunk_tree(after), drop_ids=prefix) == serialise([before])
    await ws.close()


def _unchunk_tree(node: Node) -> list[Node]:
    """`node` with every chunk (`md-chunk`, no box of its own) replaced by its children."""
    node.children = [c for child in node.children for c in _unchunk_tree(child)]
    return node.children if node.attr("class") == "md-chunk" else [node]


async def test_user_and_bot_text_is_escaped(client: TestClient, bot: ScriptedBot) -> None:
    conversation = new_id()
    bot.enqueue([XSS])
    ws, _ = await open_conversation(client, conversation)
    await ws.send_json({"action": "send", "conversation": conversation, "message": XSS})
    frames = await receive_until(ws, is_finished)
    for frame in frames:
        assert "<script>" not in frame and "<img" not in frame
        # no fragment may target the page itself, and no element gets an hx-* attribute
        # from the text (it stays text, whatever it says)
        for element in parse_frame(frame):
            assert element.id != "app"
            injected = [el for el in walk(element) if el.attrs.get("hx-get") == "/x"]
            assert not injected, injected
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in "".join(frames)
    page = await (await client.get(f"/c/{conversation}")).text()
    assert "<script>alert" not in page and "&lt;img src=x onerror=alert(2)&gt;" in page
    # Defence in depth: what people and models wrote sits in hx-disable containers, so htmx
    # would not act on an attribute even if one got through (page and final fragment alike).
    final = [e for e in parse_frame(frames[-1]) if e.tag == "article"]
    containers = re.findall(r'<div id="m-[0-9a-z]+-(?:body|reasoning)"[^>]*>', page)
    assert len(containers) == 3 and all(" hx-disable" in c for c in containers), containers
    bodies = [el for e in final for el in walk(e) if str(el.attrs.get("id", "")).endswith("-body")]
    assert bodies and all("hx-disable" in el.attrs for el in bodies)
    await ws.close()


async def test_blank_message_is_ignored_without_reply(client: TestClient, bot: ScriptedBot) -> None:
    conversation = new_id()
    ws, _ = await open_conversation(client, conversation)
    await ws.send_json({"action": "send", "conversation": conversation, "message": "  \n\t "})
    await ws.send_json({"action": "sync", "conversation": conversation})
    frames = await receive_until(ws, lambda f: 'id="messages"' in f)
    assert len(frames) == 1, "a blank message must produce no fragments"
    assert bot.histories == []
    await ws.close()


async def test_sync_shows_history_and_never_wipes_it(
    client: TestClient, bot: ScriptedBot, store: ChatStore
) -> None:
    conversation = new_id()
    bot.enqueue(["first answer"])
    ws, _ = await open_conversation(client, conversation)
    await ws.send_json({"action": "send", "conversation": conversation, "message": "first"})
    await receive_until(ws, is_finished)
    await ws.close()
    # a reconnect gets the conversation back, not a greeting that replaces it
    ws2, sync = await open_conversation(client, conversation)
    root = find(parse_frame(sync), "messages")
    assert root is not None and root.attrs["hx-swap-oob"] == "innerHTML"
    assert "first" in root.text and "first answer" in root.text
    await ws2.close()


async def test_ids_are_unique_across_conversations(client: TestClient, bot: ScriptedBot) -> None:
    seen: set[str] = set()
    for _ in range(3):
        conversation = new_id()
        ws, _ = await open_conversation(client, conversation)
        await ws.send_json({"action": "send", "conversation": conversation, "message": "q"})
        frames = await receive_until(ws, is_finished)
        ids = {e.children[0].id for f in frames for e in parse_frame(f) if e.id == "messages"}
        assert len(ids) == 2 and not ids & seen
        seen |= ids
        await ws.close()


async def test_bad_frames_get_a_clear_message(client: TestClient) -> None:
    ws = await client.ws_connect("/ws")
    for bad in ("not json", "[1, 2]", json.dumps({"action": "dance", "conversation": new_id()})):
        await ws.send_str(bad)
        frame = (await ws.receive()).data
        notice = find(parse_frame(frame), "notice")
        assert notice is not None and notice.text.strip(), frame
    await ws.send_bytes(b"\x00\x01")
    notice = find(parse_frame((await ws.receive()).data), "notice")
    assert notice is not None and "text" in notice.text
    await ws.close()


async def test_regenerate_writes_a_new_answer_to_the_last_question(
    client: TestClient, bot: ScriptedBot, store: ChatStore
) -> None:
    conversation = new_id()
    bot.enqueue(["first try"])
    bot.enqueue(["second try"])
    ws, _ = await open_conversation(client, conversation)
    await ws.send_json({"action": "send", "conversation": conversation, "message": "question"})
    await receive_until(ws, is_finished)
    await ws.send_json({"action": "regenerate", "conversation": conversation})
    frames = await receive_until(ws, is_finished)
    assert "second try" in "".join(frames)
    # the model saw the question again, without the answer being replaced
    assert [(t.role, t.content) for t in bot.histories[1]] == [("user", "question")]
    stored = await store.messages(conversation)
    assert [(m.role, m.content) for m in stored] == [
        ("user", "question"),
        ("assistant", "first try"),
        ("assistant", "second try"),
    ]
    await ws.close()


async def test_regenerate_with_nothing_to_answer_says_so(client: TestClient) -> None:
    conversation = new_id()
    ws, _ = await open_conversation(client, conversation)
    await ws.send_json({"action": "regenerate", "conversation": conversation})
    notice = find(parse_frame((await ws.receive()).data), "notice")
    assert notice is not None and "nothing to regenerate" in notice.text
    await ws.close()


async def test_sends_during_a_reply_get_a_busy_answer(client: TestClient, bot: ScriptedBot) -> None:
    conversation = new_id()
    bot.gate = asyncio.Event()
    ws, _ = await open_conversation(client, conversation)
    await ws.send_json({"action": "send", "conversation": conversation, "message": "one"})
    await receive_until(ws, lambda f: 'data-busy="true"' in f)
    for _ in range(20):
        await ws.send_json({"action": "send", "conversation": conversation, "message": "more"})
    refused = 0

    def count(frame: str) -> bool:
        nonlocal refused
        refused += "still being written" in frame
        return refused == 20

    await receive_until(ws, count)
    bot.gate.set()
    await receive_until(ws, is_finished)
    assert len(bot.histories) == 1, "refused messages never reach the bot"
    await ws.close()


async def test_stop_over_the_socket_keeps_partial_text(
    client: TestClient, bot: ScriptedBot
) -> None:
    conversation = new_id()
    bot.delay = 0.02
    bot.enqueue(["word "] * 500)
    ws, _ = await open_conversation(client, conversation)
    await ws.send_json({"action": "send", "conversation": conversation, "message": "go"})
    await receive_until(ws, lambda f: any(e.id == stream_tail() for e in parse_frame(f)))
    await ws.send_json({"action": "stop", "conversation": conversation})
    frames = await receive_until(ws, is_finished)
    assert 'data-status="stopped"' in frames[-1]
    assert bot.cancelled.is_set()
    await ws.close()


async def test_stop_with_nothing_running_shows_send_again(client: TestClient) -> None:
    conversation = new_id()
    ws, _ = await open_conversation(client, conversation)
    await ws.send_json({"action": "stop", "conversation": conversation})
    actions = find(parse_frame((await ws.receive()).data), "composer-actions")
    assert actions is not None and actions.attrs["data-busy"] == "false"
    await ws.close()


async def test_a_closed_socket_always_ends_its_handler(client: TestClient) -> None:
    """Closing right as the server sends must not leave the handler hanging (a cancellation
    swallowed by asyncio.wait_for on Python 3.11 once did, until the shutdown timeout)."""
    from htmxchat.keys import sockets_key

    sockets = client.server.app[sockets_key]
    for _ in range(20):
        conversation = new_id()
        ws, _ = await open_conversation(client, conversation)
        await ws.send_json({"action": "regenerate", "conversation": conversation})
        await ws.receive()  # one of the two frames; the other is being sent as we close
        await ws.close()
    async with asyncio.timeout(5):
        while sockets:  # noqa: ASYNC110 - the set has no change event to wait on
            await asyncio.sleep(0.01)


def walk(element):
    """An element and everything inside it."""
    yield element
    for child in element.children:
        yield from walk(child)


def header(frame: str) -> dict[str, str]:
    """The fields of a frame's header comment, with `data-` names (empty when it has none).
    A join's header names its fields; a later frame's carries only its numbers."""
    numbers = re.match(r"<!--(f?)(\d+)(?:-(\d+))?(r?)-->", frame)
    if numbers:
        kind = "feed" if numbers[1] else "events"
        found = {"data-kind": kind, "data-first": numbers[2], "data-seq": numbers[3] or numbers[2]}
        return {**found, "data-rebuild": "1"} if numbers[4] else found
    match = re.match(r"<!--frame ([^>]*)-->", frame)
    if not match:
        return {}
    return {f"data-{k}": v for k, v in (field.split("=", 1) for field in match[1].split())}


async def test_the_frame_header_is_a_comment_so_htmx_swaps_only_the_changes(
    client: TestClient, bot: ScriptedBot
) -> None:
    """htmx swaps every top-level element of a frame: the header is a comment, so a streamed
    frame holds nothing but its swaps (no element replaced per frame for bookkeeping)."""
    bot.enqueue(["a ", "b ", "c"])
    conversation = new_id()
    ws, sync = await open_conversation(client, conversation)
    await ws.send_json({"action": "send", "conversation": conversation, "message": "go"})
    frames = [sync, *await receive_until(ws, is_finished)]
    numbered = [f for f in frames if header(f)]
    assert len(numbered) >= 4
    assert numbered[0].startswith("<!--frame kind=snapshot ")
    for frame in numbered:
        elements = parse_frame(frame)
        assert elements, frame
        assert all(e.attrs.get("hx-swap-oob") for e in elements), frame
    await ws.close()


def test_a_frame_header_takes_only_plain_tokens() -> None:
    assert frame_header(kind="events", seq=3) == "<!--frame kind=events seq=3-->"
    with pytest.raises(ValueError, match="plain token"):
        frame_header(kind="events", conversation="x-->y")


async def test_frames_carry_gapless_numbers_and_a_page_resumes_from_its_own(
    client: TestClient, bot: ScriptedBot
) -> None:
    bot.enqueue(["a ", "b ", "c"])
    conversation = new_id()
    ws, sync = await open_conversation(client, conversation)
    start = header(sync)
    assert start["data-kind"] == "snapshot" and start["data-conversation"] == conversation
    await ws.send_json({"action": "send", "conversation": conversation, "message": "go"})
    frames = await receive_until(ws, is_finished)
    expected = int(start["data-seq"] or 0) + 1
    numbered = [header(f) for f in frames if header(f).get("data-kind") == "events"]
    assert numbered, "events arrive in numbered frames"
    for head in numbered:
        # conversation and epoch were said once, in the join (the snapshot)
        assert set(head) == {"data-kind", "data-first", "data-seq"}
        assert int(head["data-first"] or 0) == expected, "a gap or a repeat"
        expected = int(head["data-seq"] or 0) + 1
    # Another page that was at the snapshot's event gets exactly what followed, numbered as
    # before and answering its own request, without the conversation being sent again.
    async with client.ws_connect("/ws") as other:
        await other.send_json(resume_from(conversation, 7, start))
        replay = (await other.receive(timeout=5)).data
        head = header(replay)
        assert (head["data-kind"], head["data-req"]) == ("events", "7")
        assert (head["data-conversation"], head["data-epoch"]) == (
            conversation,
            start["data-epoch"],
        )
        assert int(head["data-first"] or 0) == int(start["data-seq"] or 0) + 1
        assert int(head["data-seq"] or 0) == expected - 1
        assert 'id="messages" hx-swap-oob="innerHTML"' not in replay
    await ws.close()


async def test_a_page_that_missed_nothing_hears_its_join_and_then_only_numbers(
    client: TestClient, bot: ScriptedBot
) -> None:
    """A resumed page that missed nothing still gets a join (a header alone) naming its
    request, conversation and epoch; every frame after it names only its numbers, which
    continue from the page's own."""
    conversation = new_id()
    ws, sync = await open_conversation(client, conversation)
    start = header(sync)
    await ws.close()
    async with client.ws_connect("/ws") as page:
        await page.send_json(resume_from(conversation, 4, start))
        frames = await receive_until(page, lambda f: "kind=feed" in f)
        assert header(frames[0]) == {
            "data-kind": "resume",
            "data-req": "4",
            "data-conversation": conversation,
            "data-epoch": start["data-epoch"],
            "data-seq": start["data-seq"],
        }
        assert frames[0] == frames[0][: frames[0].index("-->") + 3], "a header alone"
        bot.enqueue(["a ", "b ", "c"])
        await page.send_json({"action": "send", "conversation": conversation, "message": "go"})
        later = [f for f in await receive_until(page, is_finished) if header(f)]
        first = header(later[0])
        assert first["data-kind"] == "events"
        assert int(first["data-first"]) == int(start["data-seq"]) + 1
        assert later[0].startswith(f"<!--{first['data-first']}")


async def test_a_frame_that_replaces_the_messages_says_so_in_its_header(
    client: TestClient, bot: ScriptedBot
) -> None:
    """The page learns from the header alone that the messages are rebuilt (another
    branch), to keep the reader's place; never by searching the frame's text."""
    conversation = new_id()
    ws, _ = await open_conversation(client, conversation)
    await ws.send_json({"action": "send", "conversation": conversation, "message": "q"})
    frames = await receive_until(ws, is_finished)
    assert all("data-rebuild" not in header(f) for f in frames)
    await ws.send_json({"action": "regenerate", "conversation": conversation})
    frames = await receive_until(ws, is_finished)
    rebuilding = [f for f in frames if 'id="messages" hx-swap-oob="innerHTML"' in f]
    assert rebuilding and all(header(f).get("data-rebuild") == "1" for f in rebuilding)
    await ws.close()


async def test_a_message_source_is_served_only_for_its_own_conversation(
    client: TestClient, bot: ScriptedBot
) -> None:
    bot.enqueue(["**bold** ", "words"])
    conversation = new_id()
    ws, _ = await open_conversation(client, conversation)
    await ws.send_json({"action": "send", "conversation": conversation, "message": "go"})
    frames = await receive_until(ws, is_finished)
    answer = next(n for n in parse_frame(frames[-1]) if n.tag == "article")
    source = answer.attrs["data-source"]
    assert source is not None
    fetched = await client.get(source)
    assert fetched.status == 200 and await fetched.text() == "**bold** words"
    other = source.replace(conversation, new_id())
    missing = await client.get(other)
    assert missing.status == 404 and "does not exist" in await missing.text()
    await ws.close()


def _room_numbers(frames: list[str]) -> list[int]:
    """The event numbers the room frames among `frames` carry, in order; each frame holds at
    most one frame's worth (a thousand events in one frame hold the loop 50-100 ms)."""
    from htmxchat.ws import MAX_EVENTS_PER_FRAME

    numbers: list[int] = []
    for frame in frames:
        head = header(frame)
        if head.get("data-kind") == "events":
            first, last = int(head["data-first"]), int(head["data-seq"])
            assert last - first + 1 <= MAX_EVENTS_PER_FRAME, (first, last)
            numbers += range(first, last + 1)
    return numbers


async def test_a_socket_that_fell_behind_catches_up_a_frame_at_a_time(
    client: TestClient,
) -> None:
    from htmxchat.channel import SUBSCRIPTION_CAPACITY
    from htmxchat.events import ReplyNotStarted
    from htmxchat.keys import chat_key

    conversation = new_id()
    ws, sync = await open_conversation(client, conversation)
    room = client.server.app[chat_key]._rooms[conversation]
    count = SUBSCRIPTION_CAPACITY + 200
    for _ in range(count):  # at once: more than its buffer holds before its writer runs
        room.publish(ReplyNotStarted())
    numbers: list[int] = []
    async with asyncio.timeout(10):
        while len(numbers) < count:
            numbers += _room_numbers([(await ws.receive()).data])
    start = int(header(sync)["data-seq"] or 0) + 1
    assert numbers == list(range(start, start + count)), "a gap or a repeat"
    await ws.close()


async def test_a_page_resuming_far_behind_gets_what_it_missed_a_frame_at_a_time(
    client: TestClient,
) -> None:
    from htmxchat.events import ReplyNotStarted
    from htmxchat.keys import chat_key

    conversation = new_id()
    ws, sync = await open_conversation(client, conversation)
    start = header(sync)
    await ws.close()
    room = client.server.app[chat_key]._rooms[conversation]
    for _ in range(300):
        room.publish(ReplyNotStarted())
    async with client.ws_connect("/ws") as page:
        await page.send_json(resume_from(conversation, 3, start))
        join = (await page.receive(timeout=5)).data
        head = header(join)
        assert (head["data-kind"], head["data-req"]) == ("events", "3")
        numbers = _room_numbers([join])
        async with asyncio.timeout(10):
            while len(numbers) < 300:
                numbers += _room_numbers([(await page.receive()).data])
    first = int(start["data-seq"] or 0) + 1
    assert numbers == list(range(first, first + 300)), "a gap or a repeat"
