"""Context windows: the size each kind of server states is read (vLLM's model list,
llama.cpp's /props, Ollama's /api/show), an answer's stats say how much of it the
conversation uses, and a message that will not fit is refused before it is sent."""

from __future__ import annotations

from htmxchat.answering.connections import Connections
from htmxchat.ids import new_id
from htmxchat.store import ChatStore
from tests.fake_openai import FakeOpenAI, Reply, chunk, sse
from tests.helpers import (
    ScriptedBot,
    chat,
    final_reply,
    find,
    open_conversation,
    parse_frame,
    receive_until,
)


async def context_of(aiohttp_server, data_dir, fake: FakeOpenAI) -> dict[str, int]:
    base_url = await fake.serve_with(aiohttp_server)
    connections = Connections(data_dir)
    connection = connections.add("Sized", base_url, None)
    await connections.refresh([connection])
    await connections.close()
    return connection.context


async def test_each_server_kind_says_how_large_its_context_is(aiohttp_server, data_dir) -> None:
    vllm = FakeOpenAI(models=("m",))
    vllm.max_model_len = 4096
    assert await context_of(aiohttp_server, data_dir, vllm) == {"m": 4096}
    llama = FakeOpenAI(models=("gguf",))
    llama.props = {"default_generation_settings": {"n_ctx": 8192}}
    assert await context_of(aiohttp_server, data_dir, llama) == {"gguf": 8192}
    ollama = FakeOpenAI(models=("qwen3", "llama3.2"))
    ollama.shown = {
        "qwen3": {"parameters": "num_ctx 16384\ntemperature 0.6", "model_info": {}},
        "llama3.2": {"model_info": {"llama.context_length": 131072}},
    }
    assert await context_of(aiohttp_server, data_dir, ollama) == {
        "qwen3": 16384,
        "llama3.2": 131072,
    }
    plain = FakeOpenAI(models=("x",))
    assert await context_of(aiohttp_server, data_dir, plain) == {}


async def test_a_server_is_asked_about_its_context_once(aiohttp_server, data_dir) -> None:
    fake = FakeOpenAI(models=("gguf",))
    fake.props = {"default_generation_settings": {"n_ctx": 2048}}
    base_url = await fake.serve_with(aiohttp_server)
    connections = Connections(data_dir)
    connection = connections.add("Once", base_url, None)
    for _ in range(3):
        await connections.refresh([connection])
    await connections.close()
    assert [r.path for r in fake.requests].count("/props") == 1
    assert connection.context == {"gguf": 2048}


async def test_the_stats_show_the_context_used_and_a_message_too_long_is_refused(
    app_client, aiohttp_server, data_dir, store: ChatStore
) -> None:
    fake = FakeOpenAI(models=("m",))
    fake.max_model_len = 600
    base_url = await fake.serve_with(aiohttp_server)
    Connections(data_dir).add("Small", base_url, None)
    client = await app_client(ScriptedBot(), coalesce_window=0.0)
    usage = {"choices": [], "usage": {"prompt_tokens": 380, "completion_tokens": 20}}
    fake.enqueue(Reply(chunks=[sse(chunk("Short."), chunk(finish="stop"), usage, "[DONE]")]))
    conversation = new_id()
    frames = await chat(client, conversation, "hi", model="small|m")
    assert "context 400 of 600 tokens" in final_reply(frames).text
    ws, _ = await open_conversation(client, conversation)
    await ws.send_json(
        {
            "action": "send",
            "conversation": conversation,
            "message": "word " * 200,  # about 290 tokens more: past 600
            "model": "small|m",
        }
    )
    frames = await receive_until(ws, lambda f: find(parse_frame(f), "notice") is not None)
    notice = find(parse_frame(frames[-1]), "notice")
    assert notice is not None and "will not fit" in notice.text and "600" in notice.text
    assert len(fake.chat_requests) == 1
    assert len(await store.messages(conversation)) == 2  # nothing was stored
    await ws.close()
