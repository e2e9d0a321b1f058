"""What a tool round adds to an answer beyond the tool's own run time.

Run from the repository root:

    python -m tests.benchmarks.bench_tools            # 20 runs
    python -m tests.benchmarks.bench_tools --runs 5

In-process: the chat core, the scripted model server on 127.0.0.1 and the test MCP server
over stdio, with the call allowed in advance ("Always allow"), so no person is waited for.
Per run it times a plain answer (one model request), the same tool call made directly
through the MCP connection (the tool's own run time as htmxchat sees it), and an answer
with one tool round (two model requests and the call). The round's cost is the answer with
the round, minus a plain answer, minus the direct call: what is left is the second model
request (the scripted server answers at once) and htmxchat's own work around the call
(publishing, storing, sending the tool turns back).
A smoke run with two runs is part of the test suite (tests/test_tools_bench_smoke.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

from htmxchat.answering.bots.openai import OpenAICompatBot
from htmxchat.answering.service import Answering
from htmxchat.chat import ChatService
from htmxchat.events import ReplyFinished
from htmxchat.ids import new_id
from htmxchat.store import DB_FILENAME, ChatStore
from htmxchat.tools.chat_tools import ChatTools
from htmxchat.tools.servers import ToolServers
from tests.fake_openai import FakeOpenAI, Reply, tool_calls_reply, words_reply
from tests.helpers import MCP_TEST_SERVER, chat_core, write_mcp_config

TOOL_SECONDS = 0.05  # the slow tool sleeps this long


async def _answer(chat: ChatService, conversation: str, text: str) -> float:
    wake = asyncio.Event()
    subscription, _ = await chat.join(conversation, wake)
    started = time.perf_counter()
    try:
        await chat.send(conversation, text)
        while True:
            for item in subscription.take(1000):
                if isinstance(item.event, ReplyFinished):
                    return time.perf_counter() - started
            wake.clear()
            if not subscription.pending():
                await wake.wait()
    finally:
        chat.leave(subscription)


async def measure(runs: int, directory: Path) -> dict[str, float]:
    """Median seconds of a plain answer, a direct call, an answer with a tool round, and
    the round's own cost."""
    fake = FakeOpenAI()
    base = await fake.start()
    config = write_mcp_config(directory / "mcp.json", {"test": MCP_TEST_SERVER})
    store = await ChatStore.open(directory / DB_FILENAME)
    toolbox = ToolServers(config, directory / "tools.json")
    bot = OpenAICompatBot(base, "fake-model")
    answering = Answering(bot, models=("fake-model",))
    answering.toolbox = toolbox
    chat = chat_core(store, answering, coalesce_window=0.0)
    arguments = json.dumps({"seconds": TOOL_SECONDS})
    plain, direct, rounds = [], [], []
    try:
        conversation = new_id()
        allowed = ChatTools(("test",), always=("test__slow",)).to_stored()
        await store.save_chat_settings(conversation, allowed)
        for n in range(runs + 1):  # the first run starts the server: not counted
            fake.enqueue(Reply(chunks=words_reply("Plain answer.")))
            t_plain = await _answer(chat, conversation, f"plain {n}")
            started = time.perf_counter()
            await toolbox.call("test", "slow", {"seconds": TOOL_SECONDS})
            t_direct = time.perf_counter() - started
            fake.enqueue(Reply(chunks=tool_calls_reply([(f"c{n}", "test__slow", arguments)])))
            fake.enqueue(Reply(chunks=words_reply("Answer after the tool.")))
            t_round = await _answer(chat, conversation, f"tool {n}")
            if n:
                plain.append(t_plain)
                direct.append(t_direct)
                rounds.append(t_round)
    finally:
        await chat.shutdown()
        await toolbox.close()
        await bot.close()
        await store.close()
        await fake.stop()
    p, d, r = (statistics.median(x) for x in (plain, direct, rounds))
    return {"plain": p, "direct": d, "round": r, "added": r - p - d}


def main() -> None:
    parser = argparse.ArgumentParser(description="What a tool round adds to an answer.")
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        result = asyncio.run(measure(args.runs, Path(tmp)))
    print(f"runs: {args.runs} (medians)")
    print(f"plain answer (one model request):   {result['plain'] * 1000:7.1f} ms")
    print(f"the tool called directly:           {result['direct'] * 1000:7.1f} ms")
    print(f"answer with one tool round:         {result['round'] * 1000:7.1f} ms")
    print(f"added by the round beyond the tool: {result['added'] * 1000:7.1f} ms")
    print("  (the second model request and htmxchat's own work around the call)")


if __name__ == "__main__":
    main()
