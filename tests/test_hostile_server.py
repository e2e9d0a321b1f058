"""A hostile model server against the running app: bombs, deep JSON, huge lines, endless and
trickling streams, wrong types. Each attack runs with a /healthz probe beside it; each test
asserts the app kept answering and what the user was told (docs/limits.md)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient

from htmxchat import reply as reply_module
from htmxchat.answering.bots import BotError
from htmxchat.answering.bots.budget import OverBudget, ReadBudget
from htmxchat.answering.bots.openai import OpenAICompatBot
from htmxchat.answering.bots.openai_models import list_models
from htmxchat.answering.bots.select import ChosenBot, choose_bot
from htmxchat.config import Settings
from htmxchat.ids import new_id
from htmxchat.limits import MAX_IDLE_LINES
from htmxchat.store import ChatStore
from tests.fake_openai import FakeOpenAI, Reply, chunk, sse
from tests.hostile import Probe, chat_until_final, final_bubble_text, gzip_of

GZIP = {"Content-Encoding": "gzip"}
DEEP = b"[" * 200_000 + b"]" * 200_000
STALL = 2.0  # the bot's stall timeout: above the seconds a bomb takes to be refused


@pytest.fixture
async def fake(aiohttp_server) -> FakeOpenAI:
    server = FakeOpenAI()
    await server.serve_with(aiohttp_server)
    return server


@pytest.fixture
async def hostile_client(app_client, fake: FakeOpenAI) -> AsyncIterator[TestClient]:
    bot = OpenAICompatBot(fake.base_url, "fake-model", stall_timeout=STALL, label="Hostile")
    client = await app_client(ChosenBot(bot, ("fake-model",), "Hostile"))
    yield client
    await bot.close()


async def attack(client: TestClient, fake: FakeOpenAI, reply: Reply) -> tuple[str, str]:
    """Send a message while the fake answers with `reply`; the final status and text."""
    fake.enqueue(reply)
    async with Probe.on(client) as probe:
        frame = await chat_until_final(client, new_id(), "hello")
    probe.assert_responsive()
    return final_bubble_text(frame)


async def test_a_gzip_newline_bomb_is_cut_off_with_a_message(
    hostile_client: TestClient, fake: FakeOpenAI
) -> None:
    # 64 MiB of newlines from 64 KB of gzip: a minute and more of the loop without the limit.
    bomb = gzip_of(b"\n", 64 * 1024 * 1024)
    status, text = await attack(hostile_client, fake, Reply(chunks=[bomb], headers=GZIP))
    assert status == "error"
    assert f"more than {MAX_IDLE_LINES:,} empty lines" in text, text


async def test_a_bomb_of_empty_events_is_cut_off(
    hostile_client: TestClient, fake: FakeOpenAI
) -> None:
    events = gzip_of(b"data: {}\n\n", 8 * 1024 * 1024)  # 800,000 events without text
    status, text = await attack(hostile_client, fake, Reply(chunks=[events], headers=GZIP))
    assert status == "error" and "without any text" in text, text


async def test_a_flood_of_comment_lines_is_cut_off(
    hostile_client: TestClient, fake: FakeOpenAI
) -> None:
    flood = gzip_of(b": keep-alive\r\n", 16 * 1024 * 1024)
    status, text = await attack(hostile_client, fake, Reply(chunks=[flood], headers=GZIP))
    assert status == "error" and "empty lines" in text, text


async def test_text_before_a_bomb_is_kept(
    hostile_client: TestClient, fake: FakeOpenAI, store: ChatStore
) -> None:
    start = sse(chunk("Kept text."))
    bomb = gzip_of(start + b"\n" * (1024 * 1024 - len(start)), 32 * 1024 * 1024)
    status, text = await attack(hostile_client, fake, Reply(chunks=[bomb], headers=GZIP))
    assert status == "error" and "Kept text." in text and "empty lines" in text


async def test_deep_json_mid_stream_says_what_was_wrong(
    hostile_client: TestClient, fake: FakeOpenAI
) -> None:
    reply = Reply(chunks=[sse(chunk("Before. ")), b"data: " + DEEP + b"\n\n"])
    status, text = await attack(hostile_client, fake, reply)
    assert status == "error" and "Before." in text
    assert "nested thousands of levels deep" in text, text


async def test_a_huge_line_is_refused(hostile_client: TestClient, fake: FakeOpenAI) -> None:
    line = gzip_of(b"data: " + b"x" * 1024, 64 * 1024 * 1024)  # one 64 MiB line
    status, text = await attack(hostile_client, fake, Reply(chunks=[line], headers=GZIP))
    assert status == "error" and "larger than 8 MiB" in text, text


@pytest.mark.parametrize(
    "payload",
    [
        {"choices": "nope"},
        {"choices": [{"delta": {"content": 42}}]},
        {"choices": [{"delta": ["content"]}]},
        {"choices": [7], "usage": {"prompt_tokens": "many"}},
        [1, 2, 3],
        "just a string",
    ],
    ids=["choices-string", "content-number", "delta-list", "choice-number", "list", "string"],
)
async def test_wrong_types_never_crash_the_reply(
    hostile_client: TestClient, fake: FakeOpenAI, payload: object
) -> None:
    reply = Reply(chunks=[sse(chunk("Fine. ")), sse(payload), sse(chunk(finish="stop"))])  # type: ignore[arg-type]
    status, text = await attack(hostile_client, fake, reply)
    assert "Fine." in text
    assert "failed unexpectedly" not in text
    assert status == "complete" or "malformed" in text, (status, text)


async def test_an_endless_stream_ends_at_the_answer_limit(
    hostile_client: TestClient,
    fake: FakeOpenAI,
    store: ChatStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(reply_module, "MAX_ANSWER_CHARS", 200_000)
    paragraph = sse(chunk("word " * 200 + "\n\n"))  # 1,002 characters an event
    endless = Reply(chunks=[paragraph] * 100_000)  # 100 MB if it were all read
    conversation = new_id()
    fake.enqueue(endless)
    async with Probe.on(hostile_client) as probe:
        frame = await chat_until_final(hostile_client, conversation, "go on forever")
    probe.assert_responsive()
    status, text = final_bubble_text(frame)
    assert status == "complete" and "the most one answer may hold" in text, text[-300:]
    saved = (await store.messages(conversation))[-1]
    assert len(saved.content) == 200_000 and saved.error is not None
    await asyncio.wait_for(fake.disconnected.wait(), 5)  # the connection was dropped


async def test_a_keep_alive_trickle_is_given_up(
    hostile_client: TestClient, fake: FakeOpenAI
) -> None:
    # A comment every 0.1 s: each read succeeds, but no text comes for the 2 s allowed.
    trickle = [sse(chunk("Started. ")), *([b": still here\n", 0.1] * 300)]
    status, text = await attack(hostile_client, fake, Reply(chunks=trickle))
    assert status == "error" and "Started." in text
    assert "sent no text for 2 seconds" in text, text


async def test_a_byte_by_byte_trickle_is_given_up(
    hostile_client: TestClient, fake: FakeOpenAI
) -> None:
    event = sse(chunk("slow"))
    trickle: list[bytes | float] = []
    for byte in event * 3:
        trickle += [bytes([byte]), 0.05]  # 20 bytes a second: a word every 4 seconds
    status, text = await attack(hostile_client, fake, Reply(chunks=trickle))
    assert status == "error" and "sent no text for 2 seconds" in text, text


async def test_a_reply_has_an_overall_deadline() -> None:
    """However steadily text comes, a reply ends after MAX_REPLY_SECONDS."""
    now = [0.0]
    budget = ReadBudget(10.0, max_seconds=30.0, clock=lambda: now[0])

    class Content:
        async def readany(self) -> bytes:
            now[0] += 7.0  # text every 7 s: never stalled
            budget.progress()
            if now[0] > 30.0:
                raise TimeoutError  # what asyncio.timeout_at raises at the deadline
            return b"data: x\n\n"

    with pytest.raises(OverBudget) as info:
        while True:
            await budget.read(Content())  # type: ignore[arg-type]
    assert info.value.reason == "too-long" and info.value.limit == 30.0


async def test_deep_json_from_models_is_a_message_not_a_crash(fake: FakeOpenAI) -> None:
    fake.enqueue(Reply(body=DEEP, content_type="application/json"), endpoint="models")
    with pytest.raises(BotError, match="nested thousands of levels deep"):
        await list_models(fake.base_url)


async def test_start_up_survives_a_deep_json_model_list(
    fake: FakeOpenAI, settings: Settings
) -> None:
    fake.enqueue(Reply(body=DEEP, content_type="application/json"), endpoint="models")
    settings = Settings(data_dir=settings.data_dir, base_url=fake.base_url, open_browser=False)
    chosen = await choose_bot(settings)
    assert chosen.problem is not None and "nested" in chosen.problem
    await chosen.bot.close()


async def test_a_gzip_bomb_as_a_model_list_is_read_only_up_to_its_limit(
    fake: FakeOpenAI,
) -> None:
    bomb = gzip_of(b" ", 64 * 1024 * 1024)  # 64 MiB of spaces; the list is read to 8 MiB
    fake.enqueue(Reply(body=bomb, content_type="application/json", headers=GZIP), endpoint="models")
    with pytest.raises(BotError, match="did not answer like an OpenAI-compatible server"):
        await list_models(fake.base_url)


@pytest.mark.parametrize(
    "line",
    [
        "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod\n",
        "| cell one | cell two | cell three | cell four |\n",
    ],
    ids=["paragraph", "table"],
)
async def test_a_long_block_without_a_blank_line_streams_in_linear_time(
    app_client, fake: FakeOpenAI, store: ChatStore, line: str
) -> None:
    """150 KB of one paragraph (or table) in 200-character pieces, each flushed on its own:
    parsing the whole open block at every flush took a minute and more (the bound below);
    now it takes a few seconds."""
    bot = OpenAICompatBot(fake.base_url, "fake-model", stall_timeout=STALL, label="Hostile")
    client = await app_client(ChosenBot(bot, ("fake-model",), "Hostile"), coalesce_window=0.0)
    head = "| a | b | c | d |\n|---|---|---|---|\n" if line.startswith("|") else ""
    text = head + line * (150_000 // len(line))
    pieces = [sse(chunk(text[i : i + 200])) for i in range(0, len(text), 200)]
    fake.enqueue(Reply(chunks=[*pieces, sse(chunk(finish="stop"))]))
    conversation = new_id()
    async with Probe.on(client) as probe:
        frame = await chat_until_final(client, conversation, "one long block", timeout=25)
    probe.assert_responsive()
    status, _ = final_bubble_text(frame)
    assert status == "complete"
    assert (await store.messages(conversation))[-1].content == text
    await bot.close()


async def test_a_saved_server_answering_deep_json_never_breaks_the_servers_page(
    client: TestClient, fake: FakeOpenAI
) -> None:
    for _ in range(3):  # adding it, then the page asking again, then once more
        fake.enqueue(Reply(body=DEEP, content_type="application/json"), endpoint="models")
    response = await client.post(
        "/settings/connections", data={"name": "Deep", "base_url": fake.base_url}
    )
    assert response.status == 200
    page = await (await client.get("/settings")).text()
    assert "Deep" in page and "nested thousands of levels deep" in page
