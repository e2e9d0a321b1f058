"""Load and leak checks for the chat WebSocket.

Run the full version with one command (about half a minute):

    python -m tests.benchmarks.ws_load          # 500 clients, 1,000 connect/disconnect cycles
    python -m tests.benchmarks.ws_load --clients 50 --cycles 100

The server is the real app (demo bot, SQLite store in a temporary data dir) served the way
`htmxchat` serves it, in this process on 127.0.0.1, so its tasks, memory and file handles can
be counted. Every client chats on its own conversation; every reply must arrive complete and
be stored exactly as streamed. tests/test_load.py runs a scaled-down version in the suite.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import re
import resource
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import aiohttp
from aiohttp import web

from htmxchat.access import load_or_create_token
from htmxchat.answering.bots.demo import DemoBot
from htmxchat.app import create_app
from htmxchat.config import Settings
from htmxchat.guard import cookie_name, cookie_value
from htmxchat.ids import new_id
from htmxchat.keys import chat_key, sockets_key, store_key
from htmxchat.launch import bind_socket
from htmxchat.markdown.html import stream_ids
from htmxchat.markdown.render import render_markdown
from htmxchat.server import SHUTDOWN_TIMEOUT
from tests.oob_dom import Node, Page, parse, serialise, unchunked

_REPLY = re.compile(r'<article id="m-([0-9a-z]+)" class="msg msg-assistant"')


def rss_mib() -> float:
    """Resident memory of this process (Linux /proc), in MiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def open_fds() -> int:
    """Open file descriptors of this process."""
    return len(os.listdir("/proc/self/fd"))


def raise_fd_limit(needed: int) -> None:
    """Two descriptors per client (both ends live in this process), plus slack."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(needed, hard), hard))


@dataclass
class Server:
    """The app being measured, and how a browser tab would talk to it."""

    app: web.Application
    runner: web.AppRunner
    base: str
    headers: dict[str, str]


@contextlib.asynccontextmanager
async def running_server(data_dir: Path, *, word_delay: float) -> AsyncIterator[Server]:
    """The app served on 127.0.0.1 as `htmxchat` serves it (same socket and runner setup)."""
    settings = Settings(data_dir=data_dir, port=0, open_browser=False, word_delay=word_delay)
    token = load_or_create_token(data_dir)
    app = create_app(settings, bot=DemoBot(word_delay=word_delay), token=token)
    sock = bind_socket("127.0.0.1", 0)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT)
    await runner.setup()
    try:
        await web.SockSite(runner, sock).start()
        port = sock.getsockname()[1]
        base = f"http://127.0.0.1:{port}"
        headers = {"Origin": base, "Cookie": f"{cookie_name(port)}={cookie_value(token)}"}
        yield Server(app, runner, base, headers)
    finally:
        await runner.cleanup()
        sock.close()


@dataclass
class LoadReport:
    """What one load run measured."""

    clients: int
    word_delay: float
    seconds: float = 0.0
    completed: int = 0
    stored_ok: int = 0
    errors: list[str] = field(default_factory=list)
    words: int = 0
    rss_before_mib: float = 0.0
    rss_peak_mib: float = 0.0
    rss_after_mib: float = 0.0
    fds_before: int = 0
    fds_peak: int = 0
    fds_after: int = 0
    tasks_before: int = 0
    tasks_peak: int = 0
    tasks_after: int = 0


async def _chat_once(
    session: aiohttp.ClientSession, server: Server, start: asyncio.Event, seconds: float
) -> tuple[str, str, str]:
    """One tab: connect, send, read the streamed reply; (conversation, reply id, text)."""
    conversation = new_id()
    async with session.ws_connect(server.base + "/ws", headers=server.headers) as ws:
        await ws.send_json({"action": "sync", "conversation": conversation})
        await start.wait()
        await ws.send_json({"action": "send", "conversation": conversation, "message": "hi"})
        reply_id: str | None = None
        page: Page | None = None  # the reply's body as the streamed fragments build it
        async with asyncio.timeout(seconds):
            async for message in ws:
                if message.type != aiohttp.WSMsgType.TEXT:
                    raise RuntimeError(f"unexpected frame {message.type!r}")
                frame = str(message.data)
                if reply_id is None:
                    found = _REPLY.search(frame)
                    if found is None:
                        continue
                    reply_id = found.group(1)
                    prefix, tail = stream_ids(reply_id, "body")
                    page = Page(f'<div id="m-{reply_id}-body"><div id="{tail}"></div></div>')
                assert page is not None
                for element in parse(frame):
                    element_id = element.attr("id") or "" if element.tag else ""
                    if element_id == tail or element_id.startswith(prefix + "-"):
                        page.apply(serialise([element]))
                    elif element_id == f"m-{reply_id}" and element.attr("hx-swap-oob"):
                        return conversation, reply_id, _streamed(page, element, reply_id)
        raise RuntimeError("the socket closed before the reply ended")


def _streamed(page: Page, article: Node, reply_id: str) -> str:
    """The HTML the streamed fragments built in the reply's body (which the finished
    message keeps: `data-streamed`), without its chunks and stream ids."""
    if article.attr("data-status") != "complete":
        raise RuntimeError(f"the reply ended as {article.attr('data-status')}")
    streamed = page.find(f"m-{reply_id}-body")
    assert streamed is not None
    return serialise(unchunked(streamed.children), drop_ids=stream_ids(reply_id, "body")[0])


async def _sample(report: LoadReport, stop: asyncio.Event) -> None:
    while not stop.is_set():
        report.rss_peak_mib = max(report.rss_peak_mib, rss_mib())
        report.fds_peak = max(report.fds_peak, open_fds())
        report.tasks_peak = max(report.tasks_peak, len(asyncio.all_tasks()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.05)


async def load(
    clients: int, *, word_delay: float, data_dir: Path, seconds: float = 60
) -> LoadReport:
    """`clients` tabs chat at once, each on its own conversation; all replies checked."""
    raise_fd_limit(2 * clients + 256)
    report = LoadReport(clients, word_delay)
    async with running_server(data_dir, word_delay=word_delay) as server:
        report.rss_before_mib, report.fds_before = rss_mib(), open_fds()
        report.tasks_before = len(asyncio.all_tasks())
        stop = asyncio.Event()
        sampler = asyncio.create_task(_sample(report, stop))
        start = asyncio.Event()
        # limit=0: the default connector allows 100 connections and would queue the rest.
        connector = aiohttp.TCPConnector(limit=0, force_close=True)
        async with aiohttp.ClientSession(connector=connector) as session:
            began = time.perf_counter()
            tabs = [
                asyncio.create_task(_chat_once(session, server, start, seconds))
                for _ in range(clients)
            ]
            start.set()
            results = await asyncio.gather(*tabs, return_exceptions=True)
            report.seconds = time.perf_counter() - began
        stop.set()
        await sampler
        store = server.app[store_key]
        for result in results:
            if isinstance(result, BaseException):
                report.errors.append(repr(result))
                continue
            report.completed += 1
            conversation, reply_id, streamed = result
            messages = await store.messages(conversation)
            roles = [(m.role, m.status) for m in messages]
            if roles != [("user", "complete"), ("assistant", "complete")]:
                report.errors.append(f"{conversation}: stored {roles}")
                continue
            report.words += len(messages[1].content.split())
            final = serialise(parse(render_markdown(messages[1].content)))
            if messages[1].id != reply_id or streamed != final:
                report.errors.append(f"{conversation}: stored text differs from the streamed one")
            else:
                report.stored_ok += 1
        await _settle(server.app)
        report.rss_after_mib, report.fds_after = rss_mib(), open_fds()
        report.tasks_after = len(asyncio.all_tasks())
    return report


async def _settle(app: web.Application, seconds: float = 5.0) -> None:
    """Wait for the server to notice closed sockets and forget idle conversations."""
    deadline = time.monotonic() + seconds
    for _ in itertools.count():
        if not (app[sockets_key] or app[chat_key].rooms_in_use) or time.monotonic() > deadline:
            return
        await asyncio.sleep(0.02)


@dataclass
class CycleReport:
    """What the connect/disconnect cycles left behind (all should be back to the start)."""

    cycles: int
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)
    tasks_before: int = 0
    tasks_after: int = 0
    fds_before: int = 0
    fds_after: int = 0
    sockets_after: int = 0
    live_conversations_after: int = 0
    rss_before_mib: float = 0.0
    rss_after_mib: float = 0.0


async def cycles(count: int, *, data_dir: Path, every_nth_chats: int = 10) -> CycleReport:
    """Connect, sync, (sometimes chat,) disconnect, `count` times; then count what is left."""
    report = CycleReport(count)
    async with running_server(data_dir, word_delay=0) as server:
        # Warm up once so lazily created things (template cache, thread pool) are not "leaks".
        await _one_cycle(server, chat=True)
        await _settle(server.app)
        report.tasks_before, report.fds_before = len(asyncio.all_tasks()), open_fds()
        report.rss_before_mib = rss_mib()
        began = time.perf_counter()
        for number in range(count):
            try:
                await _one_cycle(server, chat=number % every_nth_chats == 0)
            except Exception as exc:  # counted and reported, the run goes on
                report.errors.append(repr(exc))
        report.seconds = time.perf_counter() - began
        await _settle(server.app)
        report.tasks_after, report.fds_after = len(asyncio.all_tasks()), open_fds()
        report.sockets_after = len(server.app[sockets_key])
        report.live_conversations_after = server.app[chat_key].rooms_in_use
        report.rss_after_mib = rss_mib()
    return report


async def _one_cycle(server: Server, *, chat: bool) -> None:
    conversation = new_id()
    async with (
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as session,
        session.ws_connect(server.base + "/ws", headers=server.headers) as ws,
    ):
        await ws.send_json({"action": "sync", "conversation": conversation})
        await ws.receive(timeout=5)
        if chat:
            await ws.send_json({"action": "send", "conversation": conversation, "message": "x"})
            # leave mid-reply on purpose: the reply must finish without its tab
            await ws.receive(timeout=5)


async def main_async(args: argparse.Namespace, tmp: Path) -> int:
    """Run both checks in `tmp` (with empty `load` and `cycles` dirs); 0 when all is well."""
    report = await load(args.clients, word_delay=args.word_delay, data_dir=tmp / "load")
    print(json.dumps({"load": asdict(report)}, indent=2))
    leaks = await cycles(args.cycles, data_dir=tmp / "cycles")
    print(json.dumps({"cycles": asdict(leaks)}, indent=2))
    ok = (
        not report.errors
        and report.stored_ok == args.clients
        and not leaks.errors
        and leaks.tasks_after <= leaks.tasks_before
        and leaks.fds_after <= leaks.fds_before
        and leaks.sockets_after == 0
    )
    print("OK" if ok else "FAILED", file=sys.stderr)
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=500)
    parser.add_argument("--word-delay", type=float, default=0.01)
    parser.add_argument("--cycles", type=int, default=1000)
    with tempfile.TemporaryDirectory(prefix="htmxchat-bench-") as tmp:
        for name in ("load", "cycles"):
            Path(tmp, name).mkdir()
        return asyncio.run(main_async(parser.parse_args(), Path(tmp)))


if __name__ == "__main__":
    sys.exit(main())
