"""Replies belong to the conversation: several tabs, joining mid-reply, closing a tab."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import pytest
from aiohttp.test_utils import TestClient

from htmxchat.answering.bots import BuiltIn, Piece, Turn
from htmxchat.ids import new_id
from htmxchat.store import ChatStore
from tests.helpers import (
    eventually,
    find,
    is_finished,
    open_conversation,
    parse_frame,
    receive_until,
    stream_tail,
)


class StepBot(BuiltIn):
    """A bot that yields exactly the pieces a test feeds it, when the test feeds them."""

    label = "Step bot"
    model = None

    async def close(self) -> None:
        """Nothing to release."""

    def __init__(self) -> None:
        self.pieces: asyncio.Queue[str | None] = asyncio.Queue()

    async def stream(
        self, history: Sequence[Turn], *, model: str | None = None, params: object = None
    ) -> AsyncIterator[Piece]:
        while (text := await self.pieces.get()) is not None:
            yield Piece(text=text)


@pytest.fixture
def step_bot() -> StepBot:
    return StepBot()


@pytest.fixture
async def step_client(app_client, step_bot: StepBot):
    return await app_client(step_bot, coalesce_window=0.0)


def reply_text(frames: list[str], reply_id: str) -> str:
    """The text a page shows in the reply body after applying `frames` in order.

    For replies without Markdown structure (plain words, as here) the body is the text of
    its finished blocks followed by its unfinished tail, which deltas append to or reset.
    """
    done, tail = "", ""
    for frame in frames:
        for element in parse_frame(frame):
            if element.id in ("messages", f"m-{reply_id}"):  # a snapshot, or the final render
                body = find([element], f"m-{reply_id}-body")
                if body is not None and "data-streamed" not in body.attrs:  # (page keeps its own)
                    found = find(body.children, stream_tail(reply_id))
                    tail = found.text if found is not None else ""
                    done = body.text[: len(body.text) - len(tail)].strip()
            elif element.id == stream_tail(reply_id):
                swap = element.attrs.get("hx-swap-oob")
                if swap == "beforebegin":  # a finished block, committed before the tail
                    done, tail = (done + " " + element.text.strip()).strip(), tail
                elif swap == "delete":  # the reply ended: everything is committed
                    tail = ""
                else:
                    tail = tail + element.text if swap == "beforeend" else element.text
    return done + tail


async def wait_for_delta(ws, text: str) -> list[str]:
    return await receive_until(ws, lambda f: text in f and f"id={stream_tail()} " in f)


async def test_two_tabs_see_the_message_and_the_whole_reply(
    step_client: TestClient, step_bot: StepBot, store: ChatStore
) -> None:
    conversation = new_id()
    a, _ = await open_conversation(step_client, conversation)
    b, _ = await open_conversation(step_client, conversation)
    await a.send_json({"action": "send", "conversation": conversation, "message": "both of you"})
    for piece in ["one ", "two ", "three"]:
        await step_bot.pieces.put(piece)
    await step_bot.pieces.put(None)
    frames_a = await receive_until(a, is_finished)
    frames_b = await receive_until(b, is_finished)
    stored = await store.messages(conversation)
    reply_id = stored[-1].id
    for frames in (frames_a, frames_b):
        assert any("both of you" in f and "msg-user" in f for f in frames)
        deltas = [
            e.text
            for f in frames
            for e in parse_frame(f)
            if e.id == stream_tail(reply_id)
            and e.attrs.get("hx-swap-oob") in ("innerHTML", "beforeend")  # the text as it came
        ]
        assert deltas == ["one ", "two ", "three"]
        assert reply_text(frames, reply_id) == "one two three" == stored[-1].content
    # only the sending tab's box is cleared
    assert any('id="composer-input"' in f for f in frames_a)
    assert not any('id="composer-input"' in f for f in frames_b)
    await a.close()
    await b.close()


async def test_a_tab_opened_mid_reply_gets_text_so_far_then_the_rest(
    step_client: TestClient, step_bot: StepBot, store: ChatStore
) -> None:
    conversation = new_id()
    a, _ = await open_conversation(step_client, conversation)
    await a.send_json({"action": "send", "conversation": conversation, "message": "tell me"})
    await step_bot.pieces.put("alpha ")
    await wait_for_delta(a, "alpha")
    await step_bot.pieces.put("beta ")
    await wait_for_delta(a, "beta")
    reply_id = (await store.messages(conversation))[-1].id

    # a page load now shows the text so far; so does a new socket's sync
    page = await (await step_client.get(f"/c/{conversation}")).text()
    assert "alpha beta" in page and 'data-status="streaming"' in page
    b, sync = await open_conversation(step_client, conversation)
    assert reply_text([sync], reply_id) == "alpha beta "
    assert 'data-busy="true"' in sync  # the Stop button, not Send

    for piece in ["gamma ", "delta"]:
        await step_bot.pieces.put(piece)
    await step_bot.pieces.put(None)
    later = await receive_until(b, is_finished)
    assert (
        reply_text([sync], reply_id)
        + "".join(
            e.text
            for f in later
            for e in parse_frame(f)
            if e.id == stream_tail(reply_id)
            and e.attrs.get("hx-swap-oob") in ("innerHTML", "beforeend")
        )
        == "alpha beta gamma delta"
    )
    assert reply_text([sync, *later], reply_id) == "alpha beta gamma delta"
    assert (await store.messages(conversation))[-1].content == "alpha beta gamma delta"
    await a.close()
    await b.close()


async def test_many_joins_during_a_reply_never_miss_or_double_a_word(
    step_client: TestClient, step_bot: StepBot, store: ChatStore
) -> None:
    conversation = new_id()
    a, _ = await open_conversation(step_client, conversation)
    await a.send_json({"action": "send", "conversation": conversation, "message": "count"})
    words = [f"w{n} " for n in range(12)]
    joined: list[tuple[object, list[str]]] = []
    for word in words:
        await step_bot.pieces.put(word)
        ws, sync = await open_conversation(step_client, conversation)  # joins between pieces
        joined.append((ws, [sync]))
    await step_bot.pieces.put(None)
    reply_id = (await store.messages(conversation))[-1].id
    expected = "".join(words)
    for ws, frames in joined:
        frames += await receive_until(ws, is_finished)
        # the streamed text (before the final render) is already complete and exact
        streamed = reply_text([f for f in frames if not is_finished(f)], reply_id)
        assert streamed.split() == expected.split(), "a word missed or doubled"
        await ws.close()  # type: ignore[attr-defined]
    await a.close()


async def test_closing_the_tab_does_not_stop_the_reply(
    step_client: TestClient, step_bot: StepBot, store: ChatStore
) -> None:
    conversation = new_id()
    a, _ = await open_conversation(step_client, conversation)
    await a.send_json({"action": "send", "conversation": conversation, "message": "bye"})
    await step_bot.pieces.put("still ")
    await wait_for_delta(a, "still")
    await a.close()
    await step_bot.pieces.put("writing")
    await step_bot.pieces.put(None)

    async def finished() -> bool:
        return (await store.messages(conversation))[-1].status == "complete"

    await eventually(finished)
    assert (await store.messages(conversation))[-1].content == "still writing"
