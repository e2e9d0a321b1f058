"""Edit, versions, Regenerate and Delete on the message tree, end to end through the chat
core and the socket; a scripted model server records what it is sent (docs/design.md,
"Message tree")."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from htmxchat.answering.bots.openai import OpenAICompatBot
from htmxchat.answering.bots.select import ChosenBot
from htmxchat.chat import ChatInputError, ChatService
from htmxchat.frames import FrameError, parse_client_frame
from htmxchat.ids import new_id
from htmxchat.keys import chat_key
from htmxchat.store import DB_FILENAME, ChatStore
from tests.fake_openai import FakeOpenAI, Reply, words_reply
from tests.helpers import (
    ScriptedBot,
    chat_core,
    database_bytes,
    eventually,
    find,
    is_finished,
    open_conversation,
    parse_frame,
    receive_until,
    upload,
)


@pytest.fixture
async def fake(aiohttp_server) -> FakeOpenAI:
    server = FakeOpenAI(models=("fake-model",))
    await server.serve_with(aiohttp_server)
    return server


@pytest.fixture
async def llm_client(app_client, fake: FakeOpenAI) -> TestClient:
    bot = OpenAICompatBot(fake.base_url, "fake-model", stall_timeout=1.0, label="Fake")
    return await app_client(ChosenBot(bot, ("fake-model",), "Fake."), coalesce_window=0.0)


def sent(fake: FakeOpenAI) -> list[tuple[str, str]]:
    """The conversation the model server was sent last, as (role, content) pairs."""
    return [(m["role"], m["content"]) for m in fake.chat_requests[-1].json["messages"]]


async def settle(chat: ChatService, conversation: str) -> None:
    await eventually(lambda: not chat.is_busy(conversation))


async def texts(store: ChatStore, conversation: str) -> list[str]:
    return [m.content for m in await store.branch(conversation)]


async def test_edit_branch_and_switch_send_the_model_exactly_the_branch_shown(
    llm_client: TestClient, fake: FakeOpenAI, store: ChatStore
) -> None:
    chat = llm_client.app[chat_key]
    conversation = new_id()
    for answer in ("a1", "a2", "a2 edited", "a3", "a4"):
        fake.enqueue(Reply(chunks=words_reply(answer)))
    await chat.send(conversation, "q1")
    await settle(chat, conversation)
    q2 = await chat.send(conversation, "q2")
    assert q2 is not None
    await settle(chat, conversation)

    edited = await chat.edit(conversation, q2.id, "q2 edited")
    assert edited is not None and edited.parent_id == q2.parent_id
    assert (edited.version, edited.versions) == (2, 2)
    await settle(chat, conversation)
    assert sent(fake) == [("user", "q1"), ("assistant", "a1"), ("user", "q2 edited")]
    assert await texts(store, conversation) == ["q1", "a1", "q2 edited", "a2 edited"]

    # Back to the first version: its answer is shown again, and the model continues it.
    await chat.show_version(conversation, edited.id, -1)
    assert await texts(store, conversation) == ["q1", "a1", "q2", "a2"]
    await chat.send(conversation, "q3")
    await settle(chat, conversation)
    assert sent(fake) == [
        ("user", "q1"), ("assistant", "a1"), ("user", "q2"), ("assistant", "a2"), ("user", "q3"),
    ]  # fmt: skip

    # And forward again: the edited branch, untouched.
    await chat.show_version(conversation, q2.id, +1)
    assert await texts(store, conversation) == ["q1", "a1", "q2 edited", "a2 edited"]
    await chat.send(conversation, "q4")
    await settle(chat, conversation)
    assert sent(fake)[-2:] == [("assistant", "a2 edited"), ("user", "q4")]
    # Nothing was lost by editing: every message is still in the log.
    everything = {m.content for m in await store.messages(conversation)}
    assert everything >= {"q1", "a1", "q2", "a2", "q3", "a3", "q2 edited", "a2 edited", "q4"}


async def test_regenerated_versions_and_the_choice_survive_a_restart(data_dir: Path) -> None:
    store = await ChatStore.open(data_dir / DB_FILENAME)
    bot = ScriptedBot()
    chat = chat_core(store, bot, coalesce_window=0.0)
    conversation = new_id()
    for answer in ("one", "two", "three"):
        bot.enqueue([answer])
    await chat.send(conversation, "question")
    await settle(chat, conversation)
    await chat.regenerate(conversation)
    await settle(chat, conversation)
    await chat.regenerate(conversation)
    await settle(chat, conversation)
    shown, _ = await store.shown(conversation)
    assert [(m.content, m.version, m.versions) for m in shown] == [
        ("question", 1, 1), ("three", 3, 3),
    ]  # fmt: skip
    await chat.show_version(conversation, shown[-1].id, -1)
    await chat.shutdown()
    await store.close()

    reopened = await ChatStore.open(data_dir / DB_FILENAME)
    try:
        shown, _ = await reopened.shown(conversation)
        assert [(m.content, m.version, m.versions) for m in shown] == [
            ("question", 1, 1), ("two", 2, 3),
        ]  # fmt: skip
    finally:
        await reopened.close()


async def test_regenerate_of_an_earlier_answer_branches_below_its_question(
    store: ChatStore,
) -> None:
    bot = ScriptedBot()
    chat = chat_core(store, bot, coalesce_window=0.0)
    conversation = new_id()
    for answer in ("a1", "a2", "a1 again"):
        bot.enqueue([answer])
    await chat.send(conversation, "q1")
    await settle(chat, conversation)
    await chat.send(conversation, "q2")
    await settle(chat, conversation)
    first_answer = (await store.branch(conversation))[1]
    await chat.regenerate(conversation, target=first_answer.id)
    await settle(chat, conversation)
    assert [t.content for t in bot.histories[-1]] == ["q1"]
    assert await texts(store, conversation) == ["q1", "a1 again"]
    await chat.show_version(conversation, first_answer.id, 0)  # the first version again
    assert await texts(store, conversation) == ["q1", "a1", "q2", "a2"]


async def test_deleting_a_middle_message_erases_it_and_what_follows(
    data_dir: Path, store: ChatStore
) -> None:
    bot = ScriptedBot()
    chat = chat_core(store, bot, coalesce_window=0.0)
    conversation = new_id()
    for answer in ("a1", "a2 quetzalcoatl", "a3"):
        bot.enqueue([answer])
    await chat.send(conversation, "q1")
    await settle(chat, conversation)
    q2 = await chat.send(conversation, "q2 about the okapi")
    assert q2 is not None
    await settle(chat, conversation)
    await chat.send(conversation, "q3")
    await settle(chat, conversation)

    assert await chat.delete_message(conversation, q2.id) == 4
    assert await texts(store, conversation) == ["q1", "a1"]
    assert len(await store.messages(conversation)) == 2
    assert await store.search("okapi") == [] and await store.search("quetzalcoatl") == []
    # Deleted for real: not in the database file, its WAL or anything beside them.
    raw = database_bytes(data_dir)
    assert b"okapi" not in raw and b"quetzalcoatl" not in raw
    # The conversation goes on from what is left.
    await chat.send(conversation, "q4")
    await settle(chat, conversation)
    assert [t.content for t in bot.histories[-1]] == ["q1", "a1", "q4"]


async def test_tree_changes_wait_for_the_running_reply(store: ChatStore) -> None:
    bot = ScriptedBot()
    chat = chat_core(store, bot, coalesce_window=0.0)
    conversation = new_id()
    question = await chat.send(conversation, "question")
    assert question is not None
    await settle(chat, conversation)
    bot.gate = asyncio.Event()
    bot.enqueue(["slow"])
    await chat.send(conversation, "second")
    for change in (
        chat.edit(conversation, question.id, "changed"),
        chat.show_version(conversation, question.id, 1),
        chat.delete_message(conversation, question.id),
        chat.regenerate(conversation),
    ):
        with pytest.raises(ChatInputError, match="still being written"):
            await change
    bot.gate.set()
    await settle(chat, conversation)
    assert await texts(store, conversation) == ["question", "ok", "second", "slow"]


async def test_edit_refuses_what_it_cannot_do(store: ChatStore) -> None:
    chat = chat_core(store, ScriptedBot(), coalesce_window=0.0)
    conversation = new_id()
    question = await chat.send(conversation, "question")
    assert question is not None
    await settle(chat, conversation)
    answer = (await store.branch(conversation))[-1]
    with pytest.raises(ChatInputError, match="cannot be empty"):
        await chat.edit(conversation, question.id, "  \n")
    with pytest.raises(ChatInputError, match="Only your own messages"):
        await chat.edit(conversation, answer.id, "no")
    with pytest.raises(ChatInputError, match="no longer there"):
        await chat.edit(new_id(), question.id, "another conversation's message")
    with pytest.raises(ChatInputError, match="Only answers"):
        await chat.regenerate(conversation, target=question.id)


def test_action_frames_name_their_message() -> None:
    target = new_id()
    frame = parse_client_frame(
        f'{{"action": "version", "conversation": "{new_id()}", "target": "{target}", "step": "-1"}}'
    )
    assert (frame.target, frame.step) == (target, -1)
    other = new_id()
    for bad in (
        {"action": "edit", "conversation": other, "message": "x"},
        {"action": "delete", "conversation": other, "target": "../x"},
        {"action": "version", "conversation": other, "target": target, "step": 5},
    ):
        with pytest.raises(FrameError):
            parse_client_frame(json.dumps(bad))


async def test_every_tab_is_shown_the_new_branch(client: TestClient, bot: ScriptedBot) -> None:
    conversation = new_id()
    bot.enqueue(["first answer"])
    bot.enqueue(["second answer"])
    one, _ = await open_conversation(client, conversation)
    two, _ = await open_conversation(client, conversation)
    await one.send_json({"action": "send", "conversation": conversation, "message": "question"})
    await receive_until(one, is_finished)
    await receive_until(two, is_finished)
    await one.send_json({"action": "regenerate", "conversation": conversation})
    await receive_until(one, is_finished)
    frames = await receive_until(two, is_finished)
    assert "second answer" in "".join(frames)
    # The other tab switches back to the first version: both tabs get the branch.
    answer_id = (await client.app[chat_key].store.branch(conversation))[-1].id
    await two.send_json(
        {"action": "version", "conversation": conversation, "target": answer_id, "step": "-1"}
    )
    for ws in (one, two):
        frame = (await receive_until(ws, lambda f: 'id="messages" hx-swap-oob="innerHTML"' in f))[
            -1
        ]
        assert "first answer" in frame and "second answer" not in frame
        assert ">1/2<" in frame and 'aria-label="Previous version"' in frame
    # A version that is not there says so, in the tab that asked.
    await two.send_json({"action": "delete", "conversation": new_id(), "target": answer_id})
    notice = find(
        parse_frame((await receive_until(two, lambda f: 'id="notice"' in f))[-1]), "notice"
    )
    assert notice is not None and "no longer there" in notice.text
    await one.close()
    await two.close()


async def test_an_edited_message_keeps_its_files_and_deleting_erases_their_bytes(
    llm_client: TestClient, fake: FakeOpenAI, store: ChatStore, data_dir: Path
) -> None:
    chat = llm_client.app[chat_key]
    conversation = new_id()
    ids = await upload(llm_client, conversation, ("notes.txt", b"capybara-991"))
    fake.enqueue(Reply(chunks=words_reply("first")))
    fake.enqueue(Reply(chunks=words_reply("second")))
    question = await chat.send(conversation, "Read this", attachments=ids)
    assert question is not None
    await settle(chat, conversation)
    edited = await chat.edit(conversation, question.id, "Read this again")
    assert edited is not None
    await settle(chat, conversation)
    assert sent(fake) == [("user", "Read this again\n\nnotes.txt:\n```\ncapybara-991\n```")]
    assert [a.name for a in (await store.branch(conversation))[0].attachments] == ["notes.txt"]

    # Each version owns its copy: deleting both erases the bytes for real.
    await chat.delete_message(conversation, edited.id)
    assert b"capybara-991" in database_bytes(data_dir)  # the first version still has them
    await chat.delete_message(conversation, question.id)
    assert b"capybara-991" not in database_bytes(data_dir)


async def test_a_search_hit_on_another_version_opens_that_branch(
    client: TestClient, bot: ScriptedBot, store: ChatStore
) -> None:
    chat = client.app[chat_key]
    conversation = new_id()
    question = await chat.send(conversation, "original wording")
    assert question is not None
    await settle(chat, conversation)
    edited = await chat.edit(conversation, question.id, "the pangolin wording")
    assert edited is not None
    await settle(chat, conversation)
    await chat.show_version(conversation, edited.id, -1)
    hits = await store.search("pangolin")
    assert [h.message_id for h in hits] == [edited.id]

    page = await (await client.get(f"/c/{conversation}?at={edited.id}")).text()
    assert ">the pangolin wording</div>" in page and f'data-focus="{edited.id}"' in page
    assert ">original wording</div>" not in page  # (it stays the chat's title)
    assert (await store.branch(conversation))[0].id == edited.id
