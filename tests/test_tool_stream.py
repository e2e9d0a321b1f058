"""Tool calls in an OpenAI-compatible stream: fragments assembled by index, with the repairs
real servers need, and tool turns sent back in the API's form."""

from __future__ import annotations

import json

from htmxchat.answering.bots import ReplyEnd, Turn
from htmxchat.answering.bots.openai import OpenAICompatBot
from htmxchat.answering.bots.tool_stream import StreamedCall, ToolCallAssembler, ToolCallsPiece
from htmxchat.tools.results import MAX_ARGUMENT_CHARS, MAX_CALLS_PER_ROUND, ToolCall
from tests.fake_openai import (
    FakeOpenAI,
    Reply,
    chunk,
    sse,
    tool_calls_reply,
    tool_chunk,
    tool_fragment,
)


def assemble(*chunks: list[dict[str, object]]) -> tuple[StreamedCall, ...]:
    assembler = ToolCallAssembler()
    for entries in chunks:
        assembler.feed(entries)
    return assembler.calls


def test_fragments_are_joined_by_index_even_interleaved() -> None:
    calls = assemble(
        [tool_fragment(0, call_id="a", name="t__add", arguments="")],
        [tool_fragment(1, call_id="b", name="t__echo", arguments='{"te')],
        [tool_fragment(0, arguments='{"a": 1,')],
        [tool_fragment(1, arguments='xt": "hi"}')],
        [tool_fragment(0, arguments=' "b": 2}')],
    )
    assert calls == (
        StreamedCall("a", "t__add", '{"a": 1, "b": 2}'),
        StreamedCall("b", "t__echo", '{"text": "hi"}'),
    )


def test_a_new_id_on_an_index_in_use_is_a_new_call() -> None:
    # Ollama streams index 0 for every call of a parallel batch.
    calls = assemble(
        [tool_fragment(0, call_id="a", name="t__add", arguments='{"a": 1, "b": 2}')],
        [tool_fragment(0, call_id="b", name="t__add", arguments='{"a": 3, "b": 4}')],
    )
    assert [c.id for c in calls] == ["a", "b"]
    assert [c.arguments for c in calls] == ['{"a": 1, "b": 2}', '{"a": 3, "b": 4}']


def test_calls_without_index_are_told_apart_by_id() -> None:
    calls = assemble(
        [tool_fragment(None, call_id="a", name="t__echo", arguments='{"text":')],
        [tool_fragment(None, arguments=' "x"}')],
        [tool_fragment(None, call_id="b", name="t__echo", arguments='{"text": "y"}')],
    )
    assert calls == (
        StreamedCall("a", "t__echo", '{"text": "x"}'),
        StreamedCall("b", "t__echo", '{"text": "y"}'),
    )


def test_two_entries_with_one_index_in_one_chunk_are_merged() -> None:
    # vLLM with speculative decoding.
    calls = assemble(
        [
            tool_fragment(0, call_id="a", name="t__echo", arguments='{"text"'),
            tool_fragment(0, arguments=': "z"}'),
        ]
    )
    assert calls == (StreamedCall("a", "t__echo", '{"text": "z"}'),)


def test_later_fragments_on_another_index_continue_the_call() -> None:
    calls = assemble(
        [tool_fragment(0, call_id="a", name="t__echo", arguments='{"text"')],
        [tool_fragment(1, arguments=': "w"}')],
    )
    assert calls == (StreamedCall("a", "t__echo", '{"text": "w"}'),)


def test_calls_and_arguments_are_bounded() -> None:
    many = [[tool_fragment(i, call_id=f"c{i}", name="t__add")] for i in range(100)]
    assert len(assemble(*many)) == MAX_CALLS_PER_ROUND
    huge = assemble(
        [tool_fragment(0, call_id="a", name="t__echo", arguments="x" * (MAX_ARGUMENT_CHARS + 9))]
    )
    assert len(huge[0].arguments) == MAX_ARGUMENT_CHARS


async def stream(bot: OpenAICompatBot, turns: list[Turn]) -> list[object]:
    return [item async for item in bot.stream(turns, params={"tools": []})]


async def test_the_bot_yields_the_calls_as_they_grow(aiohttp_server) -> None:
    fake = FakeOpenAI()
    base = await fake.serve_with(aiohttp_server)
    calls = [("c1", "t__add", '{"a": 1, "b": 2}'), ("c2", "t__echo", '{"text": "hé"}')]
    fake.enqueue(Reply(chunks=tool_calls_reply(calls, text="Let me see.", interleave=True)))
    bot = OpenAICompatBot(base, "fake-model")
    try:
        items = await stream(bot, [Turn("user", "hi")])
    finally:
        await bot.close()
    pieces = [i for i in items if isinstance(i, ToolCallsPiece)]
    assert len(pieces) > 3  # shown as they stream, not only at the end
    assert pieces[-1].calls == (
        StreamedCall("c1", "t__add", '{"a": 1, "b": 2}'),
        StreamedCall("c2", "t__echo", '{"text": "hé"}'),
    )
    end = items[-1]
    assert isinstance(end, ReplyEnd) and end.finish_reason == "tool_calls"
    assert fake.chat_requests[0].json["tools"] == []


async def test_text_and_calls_in_one_chunk_lose_neither(aiohttp_server) -> None:
    fake = FakeOpenAI()
    base = await fake.serve_with(aiohttp_server)
    both = tool_chunk(tool_fragment(0, call_id="c", name="t__add", arguments="{}"), content="Hi")
    fake.enqueue(Reply(chunks=[sse(both), sse(chunk(finish="tool_calls")), sse("[DONE]")]))
    bot = OpenAICompatBot(base, "fake-model")
    try:
        items = await stream(bot, [Turn("user", "hi")])
    finally:
        await bot.close()
    assert any(getattr(i, "text", "") == "Hi" for i in items)
    pieces = [i for i in items if isinstance(i, ToolCallsPiece)]
    assert pieces[-1].calls == (StreamedCall("c", "t__add", "{}"),)


async def test_tool_turns_go_back_in_the_api_form(aiohttp_server) -> None:
    fake = FakeOpenAI()
    base = await fake.serve_with(aiohttp_server)
    bot = OpenAICompatBot(base, "fake-model")
    call = ToolCall("c1", "t__add", '{"a": 1}')
    turns = [
        Turn("user", "add"),
        Turn("assistant", "", tool_calls=(call,)),
        Turn("tool", "2", tool_call_id="c1"),
    ]
    try:
        await stream(bot, turns)
    finally:
        await bot.close()
    sent = fake.chat_requests[0].json["messages"]
    assert sent[1] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "c1",
                "type": "function",
                "function": {"name": "t__add", "arguments": '{"a": 1}'},
            }
        ],
    }
    assert sent[2] == {"role": "tool", "tool_call_id": "c1", "content": "2"}
    assert json.loads(sent[1]["tool_calls"][0]["function"]["arguments"]) == {"a": 1}
