"""Large Markdown renders in a separate process (htmxchat/markdown/worker.py, docs/limits.md).

Its work never competes with the event loop for the GIL; a render over the time limit ends
with the text shown plain and a note saying why; the process starts at the first large
render, is replaced when it dies, is gone once the app stops, and when it cannot start at
all large renders go to a thread instead.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from htmxchat.ids import new_id
from htmxchat.markdown import render as render_module
from htmxchat.markdown import worker as worker_module
from htmxchat.markdown.offload import PROCESS_CHARS, prerender
from htmxchat.markdown.ops import Block, FenceClose, ListItem
from htmxchat.markdown.render import render_block, render_list_item, render_markdown
from htmxchat.markdown.worker import WORKER
from htmxchat.models import Message
from htmxchat.store import DB_FILENAME, ChatStore
from tests.hostile import Probe

# Formulas and links, the slow kinds; MARKER finds it in a parse.
LARGE = "MARKER " + "$x^2$ http://a.example/x " * 200
SMALL = "MARKER " + "$x^2$ http://a.example/x " * 100
assert len(SMALL) <= PROCESS_CHARS < len(LARGE)


@pytest.fixture(autouse=True)
async def fresh_worker() -> AsyncIterator[None]:
    """Each test starts with no render process and empty caches, and leaves none behind."""
    await WORKER.stop()
    render_module.clear_caches()
    yield
    await WORKER.stop()
    render_module.clear_caches()


async def open_answer(client: TestClient, store: ChatStore, text: str) -> str:
    """Store a conversation answered by `text`; return its page."""
    conversation = new_id()
    await store.add_message(Message(new_id(), conversation, "user", "question"))
    await store.add_message(Message(new_id(), conversation, "assistant", text))
    response = await client.get(f"/c/{conversation}")
    assert response.status == 200
    return await response.text()


def gone(pid: int) -> bool:
    """No such process, not even a zombie (signal 0 reaches a zombie)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


async def test_a_large_answer_renders_in_another_process(
    client: TestClient, store: ChatStore, parse_threads: list[str]
) -> None:
    page = await open_answer(client, store, LARGE)
    assert "MARKER" in page and "<math" in page  # formatted
    assert parse_threads == [], "the large answer was parsed in the app's own process"
    assert WORKER.pid is not None and WORKER.pid != os.getpid() and not gone(WORKER.pid)
    # Background work: the app's own process gets the CPU first.
    assert os.getpriority(os.PRIO_PROCESS, WORKER.pid) > os.getpriority(os.PRIO_PROCESS, 0)


async def test_a_small_answer_renders_in_a_thread_and_starts_no_process(
    client: TestClient, store: ChatStore, parse_threads: list[str]
) -> None:
    page = await open_answer(client, store, SMALL)
    assert "MARKER" in page and "<math" in page
    assert parse_threads and threading.main_thread().name not in parse_threads
    assert WORKER.pid is None


async def test_the_process_renders_exactly_what_the_app_would() -> None:
    table = "| a | b |\n|:--|--:|\n" + "| `x` | **y** |\n" * 300
    fence = "```python\n" + "def f(x):\n    return x * 2  # <b>\n" * 200 + "```\n"
    item = "- item $a^2$ with [a link](http://a.example) " + "and words " * 500 + "\n"
    refs = (("ref", "http://ref.example", "the title"),)
    text = "# Title\n\n" + table + "\n" + fence + "\n" + "Some [ref] text. " * 300
    await prerender([text], [Block(table, refs), FenceClose(1, fence), ListItem(1, item, True)])
    assert WORKER.pid is not None  # all of them went to the process
    from_process = [
        render_markdown(text),
        render_block(table, refs),
        render_block(fence),
        render_list_item(item, True),
    ]
    render_module.clear_caches()
    assert from_process == [
        render_markdown(text),
        render_block(table, refs),
        render_block(fence),
        render_list_item(item, True),
    ]


async def test_a_render_over_the_time_limit_is_ended_and_shown_as_plain_text(
    client: TestClient, store: ChatStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 120,000 `\(` and one tag: half a second of parsing at best, far over this limit.
    monkeypatch.setattr(WORKER, "time_limit", 0.05)
    text = "\\(" * 120_000 + "<b>tag</b>"
    async with Probe.on(client) as probe:
        page = await open_answer(client, store, text)
    probe.assert_responsive()
    assert "This answer took more than 0.05 seconds to format, so it is shown as plain text" in page
    assert "\\(\\(\\(" in page and "&lt;b&gt;tag&lt;/b&gt;" in page  # all of it, escaped
    assert WORKER.pid is None  # the process was ended
    monkeypatch.setattr(WORKER, "time_limit", 20.0)
    assert "<math" in await open_answer(client, store, LARGE)  # a new one renders


async def test_the_render_process_is_gone_once_the_app_stops(
    client: TestClient, store: ChatStore
) -> None:
    await open_answer(client, store, LARGE)
    pid = WORKER.pid
    assert pid is not None and not gone(pid)
    await client.close()  # the app's cleanup
    assert WORKER.pid is None
    assert gone(pid), "the render process outlived the app (or was left a zombie)"


async def test_a_killed_render_process_is_replaced(client: TestClient, store: ChatStore) -> None:
    await open_answer(client, store, LARGE)
    first = WORKER.pid
    assert first is not None
    os.kill(first, signal.SIGKILL)
    page = await open_answer(client, store, LARGE.replace("MARKER", "AGAIN"))
    assert "AGAIN" in page and "<math" in page
    assert WORKER.pid not in (None, first)
    assert gone(first)  # reaped, not a zombie


async def test_without_a_render_process_large_answers_render_in_a_thread(
    client: TestClient,
    store: ChatStore,
    parse_threads: list[str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def refuse(self: object) -> None:
        raise BlockingIOError(11, "Resource temporarily unavailable")  # as under RLIMIT_NPROC

    monkeypatch.setattr(worker_module.RenderWorker, "_start", refuse)
    with caplog.at_level(logging.WARNING, logger="htmxchat.markdown.worker"):
        page = await open_answer(client, store, LARGE)
    assert "MARKER" in page and "<math" in page
    assert parse_threads and threading.main_thread().name not in parse_threads
    assert "could not start the render process" in caplog.text
    assert "rendered in a thread" in caplog.text


async def test_where_there_is_no_render_process_large_answers_render_in_a_thread(
    client: TestClient,
    store: ChatStore,
    parse_threads: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(worker_module, "POSIX", False)  # as on Windows
    page = await open_answer(client, store, LARGE)
    assert "MARKER" in page and "<math" in page
    assert parse_threads and threading.main_thread().name not in parse_threads
    assert WORKER.pid is None


async def test_many_tabs_opening_one_large_answer_share_one_render(
    client: TestClient, store: ChatStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[object] = []
    render_one = worker_module.RenderWorker._in_process

    def counting(self: worker_module.RenderWorker, job: object, generation: int) -> bool:
        sent.append(job)
        return render_one(self, job, generation)  # type: ignore[arg-type]

    monkeypatch.setattr(worker_module.RenderWorker, "_in_process", counting)
    conversation = new_id()
    await store.add_message(Message(new_id(), conversation, "user", "question"))
    await store.add_message(Message(new_id(), conversation, "assistant", LARGE))
    pages = await asyncio.gather(*(client.get(f"/c/{conversation}") for _ in range(5)))
    assert all(page.status == 200 for page in pages)
    assert len(sent) == 1


async def test_a_socket_that_fell_behind_catches_up_with_large_blocks_rendered_elsewhere(
    client: TestClient, store: ChatStore, parse_threads: list[str]
) -> None:
    from htmxchat.channel import SUBSCRIPTION_CAPACITY
    from htmxchat.events import ReplyDelta, ReplyNotStarted
    from htmxchat.keys import chat_key

    conversation = new_id()
    await store.add_message(Message(new_id(), conversation, "user", "question"))
    ws = await client.ws_connect("/ws")
    await ws.send_json({"action": "sync", "conversation": conversation, "req": 1})
    await ws.receive(timeout=10)  # the snapshot
    room = client.server.app[chat_key]._rooms[conversation]
    # More events than its buffer holds, before its writer runs: it catches up from the
    # room's history, a large block among them.
    room.publish(ReplyDelta(new_id(), ops=(Block(LARGE),)))
    for _ in range(SUBSCRIPTION_CAPACITY + 10):
        room.publish(ReplyNotStarted())
    async with asyncio.timeout(10):
        while "MARKER" not in (frame := (await ws.receive()).data):
            pass
    await ws.close()
    assert "<math" in frame
    assert parse_threads == [], "the large block was parsed in the app's own process"


def test_the_render_process_works_from_a_fresh_account(tmp_path: Path) -> None:
    """The real server on an account where htmxchat never ran: a large answer renders in
    its child process, which is gone (reaped) when the server stops."""
    import asyncio as aio
    import urllib.request

    from tests.helpers import ServerProcess
    from tests.test_fresh_machine import fresh_environment

    home = tmp_path / "home"
    home.mkdir()
    data = home / ".local/share/htmxchat"
    conversation = new_id()

    async def seed() -> None:
        store = await ChatStore.open(data / DB_FILENAME)
        await store.add_message(Message(new_id(), conversation, "user", "question"))
        await store.add_message(Message(new_id(), conversation, "assistant", LARGE))
        await store.close()

    data.mkdir(parents=True)
    aio.run(seed())
    server = ServerProcess(data, "--port", "0", env=fresh_environment(home))
    request = urllib.request.Request(f"{server.base_url}c/{conversation}", headers=server.headers)
    with urllib.request.urlopen(request, timeout=60) as response:
        page = response.read().decode()
    assert "MARKER" in page and "<math" in page
    children = render_children(server.process.pid)
    assert len(children) == 1
    code, _, err = server.stop()
    assert code == 0 and "Traceback" not in err, err
    assert gone(children[0])


def render_children(pid: int) -> list[int]:
    """The render processes `pid` started (by their command line)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            if b"htmxchat.markdown.worker" in Path(f"/proc/{child}/cmdline").read_bytes():
                found.append(int(child))
    return found
