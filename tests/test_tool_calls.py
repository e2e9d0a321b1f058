"""Tool calls through the chat core: offered, asked, allowed or denied, run, answered and
kept, over a scripted OpenAI-compatible server and the test MCP server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from htmxchat.answering.bots.openai import OpenAICompatBot
from htmxchat.answering.service import Answering
from htmxchat.chat import ChatInputError, ChatService
from htmxchat.events import ReplyFinished, RoomEvent, ToolCallsChanged
from htmxchat.ids import new_id
from htmxchat.models import Message
from htmxchat.store import ChatStore
from htmxchat.tools.chat_tools import ChatTools
from htmxchat.tools.servers import ToolServers
from tests.fake_openai import FakeOpenAI, Reply, tool_calls_reply, words_reply
from tests.helpers import MCP_TEST_SERVER, ScriptedBot, chat_core, write_mcp_config

pytest.importorskip("mcp")


class Setup:
    def __init__(self, chat: ChatService, fake: FakeOpenAI, store: ChatStore) -> None:
        self.chat, self.fake, self.store = chat, fake, store
        self.conversation = new_id()
        self.events: list[RoomEvent] = []
        self.wake = asyncio.Event()

    async def allow_servers(self, *names: str, rounds: int = 5) -> None:
        stored = await self.store.chat_settings(self.conversation)
        tools = ChatTools(names, rounds)
        await self.store.save_chat_settings(self.conversation, {**stored, **tools.to_stored()})

    async def send(self, text: str) -> None:
        self.subscription, _ = await self.chat.join(self.conversation, self.wake)
        await self.chat.send(self.conversation, text)

    async def next_event(self, accept: Any) -> RoomEvent:
        async with asyncio.timeout(20):
            while True:
                for item in self.subscription.take(1000):
                    self.events.append(item.event)
                    if accept(item.event):
                        return item.event
                self.wake.clear()
                if not self.subscription.pending():
                    await self.wake.wait()

    async def asking(self, count: int = 1) -> ToolCallsChanged:
        def ready(e: RoomEvent) -> bool:
            return (
                isinstance(e, ToolCallsChanged)
                and sum(c.state == "asking" for c in e.calls) >= count
            )

        event = await self.next_event(ready)
        assert isinstance(event, ToolCallsChanged)
        return event

    async def finished(self) -> Message:
        event = await self.next_event(lambda e: isinstance(e, ReplyFinished))
        assert isinstance(event, ReplyFinished)
        return event.message


@pytest.fixture
async def setup(aiohttp_server, store: ChatStore, tmp_path: Path) -> AsyncIterator[Setup]:
    fake = FakeOpenAI()
    base = await fake.serve_with(aiohttp_server)
    config = tmp_path / "mcp.json"
    write_mcp_config(config, {"test": MCP_TEST_SERVER})
    toolbox = ToolServers(config, tmp_path / "tools.json")
    bot = OpenAICompatBot(base, "fake-model", label="Fake")
    answering = Answering(bot, models=("fake-model",))
    answering.toolbox = toolbox
    chat = chat_core(store, answering, coalesce_window=0.0)
    yield Setup(chat, fake, store)
    await chat.shutdown()
    await toolbox.close()
    await bot.close()


async def test_no_tools_unless_the_chat_turns_a_server_on(setup: Setup) -> None:
    await setup.send("hi")
    await setup.finished()
    assert "tools" not in setup.fake.chat_requests[0].json


async def test_calls_in_a_chat_without_tools_are_not_run_and_the_answer_says_why(
    setup: Setup,
) -> None:
    # A model may call tools nobody offered it (a hallucination, or tools named in a prompt).
    calls = [("c1", "test__add", '{"a": 1, "b": 2}'), ("c2", "<b>weird</b>", "{}")]
    setup.fake.enqueue(Reply(chunks=tool_calls_reply(calls)))
    await setup.send("add 1 and 2")
    final = await setup.finished()
    assert final.status == "complete" and final.content == "" and final.tool_calls == ()
    assert final.error is not None
    assert "asked to use test__add, <b>weird</b>, but this chat offers it no tools" in final.error
    assert "Chat settings" in final.error
    assert len(setup.fake.chat_requests) == 1  # nothing ran, nothing was sent back


async def test_an_allowed_call_runs_and_the_model_goes_on(setup: Setup) -> None:
    await setup.allow_servers("test")
    setup.fake.enqueue(Reply(chunks=tool_calls_reply([("c1", "test__add", '{"a": 2, "b": 40}')])))
    setup.fake.enqueue(Reply(chunks=words_reply("The sum is 42.")))
    await setup.send("add 2 and 40")
    asking = await setup.asking()
    assert asking.calls[0].arguments == '{"a": 2, "b": 40}' and asking.calls[0].tool == "add"
    offered = setup.fake.chat_requests[0].json["tools"]
    add = next(t for t in offered if t["function"]["name"] == "test__add")
    assert add["function"]["description"] == "Add two integers."
    assert add["function"]["parameters"]["required"] == ["a", "b"]
    setup.chat.decide(setup.conversation, asking.message_id, 0, "allow")
    final = await setup.finished()
    assert final.content == "The sum is 42." and final.status == "complete"
    # The server was started for this answer, and the answer said so meanwhile.
    notes = [e.notes for e in setup.events if isinstance(e, ToolCallsChanged)]
    assert notes[0] == ("Starting test…",) and notes[1] == ()
    assert final.error is None
    (call,) = final.tool_calls
    assert (call.state, call.approval, call.result and call.result.text) == (
        "done",
        "allowed",
        "42",
    )
    second = setup.fake.chat_requests[1].json["messages"]
    assert second[-2]["tool_calls"][0]["id"] == "c1"
    assert second[-1] == {"role": "tool", "tool_call_id": "c1", "content": "42"}
    # Kept: read back from the chat log, and sent again as history next time.
    stored = await setup.store.message(final.id)
    assert stored is not None and stored.tool_calls == final.tool_calls
    await setup.send("thanks")
    await setup.finished()
    history = setup.fake.chat_requests[2].json["messages"]
    assert [m["role"] for m in history] == ["user", "assistant", "tool", "assistant", "user"]


async def test_a_denied_call_tells_the_model(setup: Setup) -> None:
    await setup.allow_servers("test")
    setup.fake.enqueue(Reply(chunks=tool_calls_reply([("c1", "test__echo", '{"text": "x"}')])))
    setup.fake.enqueue(Reply(chunks=words_reply("Fine.")))
    await setup.send("echo")
    asking = await setup.asking()
    setup.chat.decide(setup.conversation, asking.message_id, 0, "deny")
    final = await setup.finished()
    assert final.tool_calls[0].state == "denied" and final.tool_calls[0].result is None
    tool_turn = setup.fake.chat_requests[1].json["messages"][-1]
    assert tool_turn["role"] == "tool" and "declined" in tool_turn["content"]
    with pytest.raises(ChatInputError, match="no longer waiting"):
        setup.chat.decide(setup.conversation, asking.message_id, 0, "allow")


async def test_parallel_calls_each_get_their_answer_and_always_allow_sticks(
    setup: Setup,
) -> None:
    await setup.allow_servers("test")
    calls = [
        ("a", "test__add", '{"a": 1, "b": 1}'),
        ("b", "test__echo", '{"text": "yes"}'),
        ("c", "test__add", '{"a": 2, "b": 2}'),
    ]
    setup.fake.enqueue(Reply(chunks=tool_calls_reply(calls, interleave=True)))
    setup.fake.enqueue(Reply(chunks=words_reply("Done.")))
    await setup.send("several")
    asking = await setup.asking(3)
    setup.chat.decide(setup.conversation, asking.message_id, 1, "deny")
    setup.chat.decide(setup.conversation, asking.message_id, 0, "always")  # c is add too
    final = await setup.finished()
    assert [(c.state, c.approval) for c in final.tool_calls] == [
        ("done", "always"),
        ("denied", "denied"),
        ("done", "auto"),
    ]
    answers = [m for m in setup.fake.chat_requests[1].json["messages"] if m["role"] == "tool"]
    assert [(m["tool_call_id"], m["content"][:8]) for m in answers] == [
        ("a", "2"),
        ("b", "The user"),
        ("c", "4"),
    ]
    # Always allowed for this conversation: the next add runs without asking.
    setup.fake.enqueue(Reply(chunks=tool_calls_reply([("d", "test__add", '{"a": 5, "b": 5}')])))
    setup.fake.enqueue(Reply(chunks=words_reply("Ten.")))
    await setup.send("again")
    final = await setup.finished()
    assert final.tool_calls[0].approval == "auto" and final.tool_calls[0].result.text == "10"


async def test_bad_calls_are_answered_without_asking(setup: Setup) -> None:
    await setup.allow_servers("test")
    calls = [("a", "test__nope", "{}"), ("b", "test__add", '{"a": 1,')]
    setup.fake.enqueue(Reply(chunks=tool_calls_reply(calls)))
    setup.fake.enqueue(Reply(chunks=words_reply("Sorry.")))
    await setup.send("bad")
    final = await setup.finished()
    texts = [c.result.text for c in final.tool_calls if c.result]
    assert "no tool called" in texts[0] and "not valid JSON" in texts[1]
    assert all(c.approval == "" for c in final.tool_calls)


async def test_stop_during_a_call_ends_the_reply_at_once(setup: Setup) -> None:
    await setup.allow_servers("test")
    setup.fake.enqueue(Reply(chunks=tool_calls_reply([("s", "test__slow", '{"seconds": 60}')])))
    await setup.send("wait")
    asking = await setup.asking()
    setup.chat.decide(setup.conversation, asking.message_id, 0, "allow")
    await setup.next_event(
        lambda e: isinstance(e, ToolCallsChanged) and e.calls[0].state == "running"
    )
    setup.chat.stop(setup.conversation)
    async with asyncio.timeout(5):
        final = await setup.finished()
    assert final.status == "stopped" and final.tool_calls[0].state == "stopped"


async def test_the_round_limit_ends_the_reply_saying_so(setup: Setup) -> None:
    await setup.allow_servers("test", rounds=1)
    setup.fake.enqueue(Reply(chunks=tool_calls_reply([("a", "test__add", '{"a": 1, "b": 1}')])))
    setup.fake.enqueue(Reply(chunks=tool_calls_reply([("b", "test__add", '{"a": 1, "b": 1}')])))
    await setup.send("loop")
    setup.chat.decide(setup.conversation, (await setup.asking()).message_id, 0, "always")
    final = await setup.finished()
    assert final.error is not None and "after 1 rounds" in final.error
    assert [c.state for c in final.tool_calls] == ["done", "stopped"]


async def test_a_model_server_without_tools_gets_none_and_the_page_says_why(
    store: ChatStore, tmp_path: Path
) -> None:
    from htmxchat.answering.bots.demo import DemoBot

    config = tmp_path / "mcp.json"
    write_mcp_config(config, {"test": MCP_TEST_SERVER})
    toolbox = ToolServers(config, tmp_path / "tools.json")
    answering = Answering(DemoBot(word_delay=0), models=())
    answering.toolbox = toolbox
    chat = chat_core(store, answering, coalesce_window=0.0)
    setup = Setup(chat, FakeOpenAI(), store)
    await setup.allow_servers("test")
    await setup.send("hi")
    final = await setup.finished()
    assert final.error is not None and "cannot call tools" in final.error
    assert toolbox.status()[0].state == "not started"
    await chat.shutdown()


def render_message(message: Message) -> str:
    import jinja2

    from htmxchat.answering.service import Answering
    from htmxchat.fragments import Fragments
    from htmxchat.template_helpers import setup_environment

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("htmxchat", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    setup_environment(env)
    return Fragments(env, Answering(ScriptedBot())).message(message)


def test_what_a_model_or_tool_sent_is_shown_as_text_never_run() -> None:
    from htmxchat.tools.results import ResultPart, ToolCall, ToolResult

    hostile = '<script>alert(1)</script><img src="http://evil.example/x.png">'
    result = ToolResult(
        (
            ResultPart("text", hostile),
            ResultPart("image", "iVBORw0KGgo=", "image/png"),
            ResultPart("image", 'x" onerror="alert(1)', "image/png"),
        )
    )
    from htmxchat.tools.results import bounded_parts

    call = ToolCall("c1", "test__echo", '{"text": "<b>hi</b>"}', state="done", result=result)
    bounded = ToolCall(
        "c2", "test__echo", "{}", state="done", result=ToolResult(bounded_parts(list(result.parts)))
    )
    message = Message(
        id=new_id(),
        conversation_id=new_id(),
        role="assistant",
        content="ok",
        tool_calls=(call, bounded),
    )
    html = render_message(message)
    assert "<script>" not in html and 'src="http://evil' not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "{&#34;text&#34;: &#34;&lt;b&gt;hi&lt;/b&gt;&#34;}" in html  # exactly as sent
    assert 'src="data:image/png;base64,iVBORw0KGgo="' in html
    assert 'onerror="alert' not in html
    assert "[an image of type" in html  # the bad data was left out, saying so


async def answer_with_a_call(setup: Setup) -> Message:
    await setup.allow_servers("test")
    calls = [("c1", "test__echo", '{"text": "zanzibar"}')]
    setup.fake.enqueue(Reply(chunks=tool_calls_reply(calls, text="Let me look.")))
    setup.fake.enqueue(Reply(chunks=words_reply("It said so.")))
    await setup.send("echo something")
    setup.chat.decide(setup.conversation, (await setup.asking()).message_id, 0, "allow")
    return await setup.finished()


async def test_calls_are_searchable_exported_imported_and_deleted_for_real(
    setup: Setup, store: ChatStore
) -> None:
    from htmxchat.export import parse_export, to_json

    answer = await answer_with_a_call(setup)
    assert answer.content == "Let me look.\n\nIt said so."
    (hit,) = await store.search("zanzibar")  # in the arguments and the result only
    assert hit.message_id == answer.id and any(match for _, match in hit.snippet)
    # Export and import: the same calls, results and decisions.
    conversation = await store.conversation(setup.conversation)
    assert conversation is not None
    document = to_json(conversation, await store.export_messages(setup.conversation))
    imported = await store.import_conversation(*parse_export(document))
    copy = [m for m in await store.export_messages(imported.id) if m.role == "assistant"]
    assert copy[0].tool_calls == answer.tool_calls
    assert copy[0].tool_calls[0].result is not None
    assert copy[0].tool_calls[0].result.text == "zanzibar"
    # Deleted: gone from the log and from search.
    await setup.chat.delete_message(imported.id, copy[0].id)
    await setup.chat.delete_message(setup.conversation, answer.id)
    assert await store.search("zanzibar") == []
    assert await store.message(answer.id) is None


async def test_regenerate_across_tool_rounds_sends_the_question_only(setup: Setup) -> None:
    answer = await answer_with_a_call(setup)
    setup.fake.enqueue(Reply(chunks=words_reply("Another answer.")))
    await setup.chat.regenerate(setup.conversation, target=answer.id)
    again = await setup.finished()
    assert again.content == "Another answer." and again.tool_calls == ()
    sent = setup.fake.chat_requests[-1].json["messages"]
    assert [m["role"] for m in sent] == ["user"]
    # The first version keeps its calls.
    first = await setup.store.message(answer.id)
    assert first is not None and first.tool_calls == answer.tool_calls
    # An edit of the question answers anew, the earlier rounds left with their version.
    setup.fake.enqueue(Reply(chunks=words_reply("Edited.")))
    user = next(m for m in await setup.store.branch(setup.conversation) if m.role == "user")
    await setup.chat.edit(setup.conversation, user.id, "echo again")
    assert (await setup.finished()).content == "Edited."
    assert [m["role"] for m in setup.fake.chat_requests[-1].json["messages"]] == ["user"]


async def test_a_call_written_as_text_is_pointed_out(setup: Setup) -> None:
    # llama.cpp without --jinja: the model writes the call into its answer.
    await setup.allow_servers("test")
    text = 'I will call {"name": "test__add", "arguments": {"a": 1, "b": 2}}'
    setup.fake.enqueue(Reply(chunks=words_reply(text)))
    await setup.send("add")
    final = await setup.finished()
    assert final.error is not None and "wrote a tool call as text" in final.error


async def test_a_server_refusing_tools_gets_a_hint(setup: Setup) -> None:
    await setup.allow_servers("test")
    setup.fake.enqueue(Reply.error(400, "tools are not supported by this model"))
    await setup.send("add")
    final = await setup.finished()
    assert final.status == "error" and final.error is not None
    assert "tools are not supported" in final.error and "turn this chat's tools off" in final.error


async def test_a_chosen_server_switched_off_is_named_not_silently_dropped(setup: Setup) -> None:
    await setup.allow_servers("test")
    toolbox = setup.chat.answering.toolbox
    assert toolbox is not None
    await toolbox.switch("test", False)
    await setup.send("hi")
    final = await setup.finished()
    assert final.error is not None and "Not offered: test" in final.error
    assert "tools" not in setup.fake.chat_requests[-1].json
