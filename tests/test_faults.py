"""Faults: kill -9 mid-reply, unusable data dirs, a corrupt chat log, a busy port, write errors."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from htmxchat import store_queries
from htmxchat.app import create_app
from htmxchat.config import Settings
from htmxchat.ids import new_id
from htmxchat.markdown.html import stream_ids
from htmxchat.store import DB_FILENAME, ChatStore, StoreError
from tests.helpers import (
    ROOT,
    ScriptedBot,
    ServerProcess,
    find,
    logged_in_client,
    parse_frame,
    run_cli,
    shown_messages,
    stream_tail,
)
from tests.oob_dom import Node, Page, parse, serialise


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def integrity(db_path: Path) -> str:
    db = sqlite3.connect(db_path)
    try:
        return str(db.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        db.close()


# -- kill -9 -----------------------------------------------------------------------------------


def text_of(node: Node) -> str:
    """All the text inside `node`, as a browser's textContent."""
    return node.text if not node.tag else "".join(text_of(child) for child in node.children)


class Tab:
    """A WebSocket client of a real server, reading frames into message texts and states."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.pages: dict[str, Page] = {}  # each reply's body as the fragments build it
        self.finished: set[str] = set()
        self.replies: list[str] = []

    @property
    def bodies(self) -> dict[str, str]:
        """The text each reply's body shows now."""
        return {key: text_of(page.root) for key, page in self.pages.items()}

    async def read(self, seconds: float) -> None:
        message = await self.ws.receive(timeout=seconds)
        assert message.type == aiohttp.WSMsgType.TEXT, message
        for element in parse(message.data):
            element_id = (element.attr("id") or "") if element.tag else ""
            if element_id == "messages" and element.attr("hx-swap-oob") == "beforeend":
                article = element.children[0]
                if "msg-assistant" in (article.attr("class") or ""):
                    key = str(article.attr("id"))[2:]
                    self.replies.append(key)
                    body, tail = f"m-{key}-body", stream_tail(key)
                    self.pages[key] = Page(f'<div id="{body}"><div id="{tail}"></div></div>')
            elif self.replies and self._streamed_into(element_id, self.replies[-1]):
                # a socket follows one conversation, which streams one reply at a time
                self.pages[self.replies[-1]].apply(serialise([element]))
            elif element.tag == "article" and element.attr("hx-swap-oob") == "true":
                self.finished.add(element_id[2:])

    @staticmethod
    def _streamed_into(element_id: str, key: str) -> bool:
        prefix, tail = stream_ids(key, "body")
        return element_id == tail or element_id.startswith(prefix + "-")

    async def send(self, conversation: str, text: str) -> str:
        """Send a message; the id of the reply it starts."""
        count = len(self.replies)
        await self.ws.send_json({"action": "send", "conversation": conversation, "message": text})
        async with asyncio.timeout(10):
            while len(self.replies) == count:
                await self.read(10)
        return self.replies[-1]


async def test_kill_9_mid_reply_keeps_the_database_and_marks_the_reply(data_dir: Path) -> None:
    server = ServerProcess(data_dir, "--port", "0", "--word-delay", "0.15")
    earlier, current = new_id(), new_id()
    try:
        async with aiohttp.ClientSession(headers=server.headers) as session:
            ws = await session.ws_connect(server.base_url + "ws")
            tab = Tab(ws)
            await ws.send_json({"action": "sync", "conversation": earlier})
            await tab.read(5)
            # An earlier chat: a reply stopped after a few words (quick, and stored).
            first = await tab.send(earlier, "an earlier chat")
            while len(tab.bodies.get(first, "").split()) < 2 and first not in tab.finished:
                await tab.read(5)
            await ws.send_json({"action": "stop", "conversation": earlier})
            while first not in tab.finished:
                await tab.read(5)
            # The reply being written when the process dies: past its first checkpoint (1 s).
            reply, started = None, 0.0
            while reply is None or time.monotonic() - started < 1.6:
                if reply is None or reply in tab.finished:  # a short canned reply: ask again
                    reply, started = await tab.send(current, "tell me more"), time.monotonic()
                await tab.read(5)
            streamed = tab.bodies[reply]
        server.process.kill()  # SIGKILL: no chance to save anything
        server.process.communicate(timeout=10)
    finally:
        server.kill()

    copy = data_dir.parent / "copy"
    shutil.copytree(data_dir, copy)  # check the files as the crash left them
    assert integrity(copy / DB_FILENAME) == "ok"

    again = ServerProcess(data_dir, "--port", "0")
    try:
        assert integrity(data_dir / DB_FILENAME) == "ok"
        async with aiohttp.ClientSession(headers=again.headers) as session:
            async with session.get(again.base_url + f"c/{current}") as response:
                page = await response.text()
            async with session.get(again.base_url + f"c/{earlier}") as response:
                earlier_page = await response.text()
    finally:
        again.kill()
    roots = parse_frame(page)
    message = find(roots, f"m-{reply}")
    assert message is not None and message.attrs["data-status"] == "interrupted"
    assert "Interrupted" in message.text
    body = find(roots, f"m-{reply}-body")
    # the saved part of the interrupted reply, rendered (its words, in order)
    assert body is not None and body.text.split()
    assert " ".join(streamed.split()).startswith(" ".join(body.text.split()))
    old = find(parse_frame(earlier_page), f"m-{first}-body")
    assert old is not None and old.text.split() == tab.bodies[first].split()
    # stopped, or complete when the canned reply was shorter than the way to the Stop
    assert find(parse_frame(earlier_page), f"m-{first}").attrs["data-status"] in (
        "stopped",
        "complete",
    )


# -- start-up errors ---------------------------------------------------------------------------


def test_data_dir_that_is_a_file_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "a-file"
    path.write_text("not a directory")
    result = run_cli("--data-dir", str(path), "--port", "0")
    assert result.returncode == 2
    assert str(path) in one_line_error(result)
    inside = run_cli("--data-dir", str(path / "sub"), "--port", "0")
    assert inside.returncode == 2
    assert str(path / "sub") in one_line_error(inside)


def test_read_only_data_dir_exits_2(tmp_path: Path) -> None:
    if not shutil.which("unshare"):
        pytest.skip("needs unshare(1) for a private read-only mount")
    mount = tmp_path / "ro"
    mount.mkdir()
    # A read-only tmpfs in a private mount namespace (permissions mean nothing to root).
    script = (
        f"mount -t tmpfs -o ro,size=1m none {mount} && exec {sys.executable} -m htmxchat "
        f"--no-browser --port 0 --data-dir {mount}"
    )
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("cannot create a mount namespace here")
    result = subprocess.run(
        ["unshare", "-m", "sh", "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=20
    )
    assert result.returncode == 2, result
    assert str(mount) in one_line_error(result) and "Read-only" in result.stderr


@pytest.mark.parametrize(
    "content",
    [b"\x00garbage" * 1000, b"SQLite format 3\x00" + b"\xff" * 4080],
    ids=["noise", "bad-pages"],
)
def test_corrupt_database_is_a_clear_error_and_never_overwritten(
    data_dir: Path, content: bytes
) -> None:
    db = data_dir / DB_FILENAME
    db.write_bytes(content)
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    result = run_cli("--data-dir", str(data_dir), "--port", "0")
    assert result.returncode == 2
    line = one_line_error(result)
    assert str(db) in line and "left as it is" in line
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before


def test_busy_port_is_a_clear_error(data_dir: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("--data-dir", str(data_dir), "--port", str(port))
    assert result.returncode == 1
    line = one_line_error(result)
    assert f"Port {port} is already in use" in line


# -- write failures at run time -------------------------------------------------------------


class FailingStore(ChatStore):
    """A store whose writes fail, as on a full or failing disk."""

    fail_adds = 0  # how many add_message calls fail (-1: all)
    fail_updates = 0  # how many update_reply calls fail (-1: all)

    async def add_message(self, message):  # type: ignore[no-untyped-def]
        if self.fail_adds:
            self.fail_adds -= 1
            raise StoreError("Could not write the chat log: disk I/O error")
        return await super().add_message(message)

    async def update_reply(self, message):  # type: ignore[no-untyped-def]
        if self.fail_updates:
            self.fail_updates -= 1
            raise StoreError("Could not write the chat log: disk I/O error")
        await super().update_reply(message)


@pytest.fixture
async def failing_store(data_dir: Path):
    opened = await FailingStore.open(data_dir / DB_FILENAME)
    yield opened
    await opened.close()


@pytest.fixture
async def failing_client(
    aiohttp_client, aiohttp_server, settings: Settings, bot: ScriptedBot, failing_store: ChatStore
) -> TestClient:
    app = create_app(
        settings, bot=bot, store=failing_store, coalesce_window=0.0, checkpoint_interval=0.0
    )
    return await logged_in_client(aiohttp_client, aiohttp_server, app, settings.data_dir)


async def frames_until(ws, predicate, timeout: float = 5.0) -> list[str]:  # noqa: ASYNC109
    frames: list[str] = []
    async with asyncio.timeout(timeout):
        while True:
            message = await ws.receive()
            assert message.type == aiohttp.WSMsgType.TEXT, message
            frames.append(message.data)
            if predicate(message.data):
                return frames


def finished(frame: str) -> bool:
    return 'data-busy="false"' in frame and "<article" in frame


async def test_failed_send_shows_an_error_and_the_server_keeps_running(
    failing_client: TestClient, failing_store: FailingStore, bot: ScriptedBot
) -> None:
    failing_store.fail_adds = -1
    conversation = new_id()
    ws = await failing_client.ws_connect("/ws")
    await ws.send_json({"action": "send", "conversation": conversation, "message": "hello"})
    frames = await frames_until(ws, lambda f: 'id="notice"' in f)
    notice = find(parse_frame(frames[-1]), "notice")
    assert notice is not None and "chat log" in notice.text
    assert bot.histories == []
    failing_store.fail_adds = 0  # the disk recovers: the same socket works again
    bot.enqueue(["fine ", "now"])
    await ws.send_json({"action": "send", "conversation": conversation, "message": "again"})
    await frames_until(ws, finished)
    assert [m.content for m in await failing_store.messages(conversation)] == ["again", "fine now"]
    await ws.close()


async def test_a_failed_write_is_retried_once(
    client: TestClient, store: ChatStore, bot: ScriptedBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = store_queries.insert_message
    failures = iter([sqlite3.OperationalError("disk I/O error")])

    def flaky(db: sqlite3.Connection, message: object) -> None:
        failure = next(failures, None)
        if failure is not None:
            raise failure
        real(db, message)  # type: ignore[arg-type]

    monkeypatch.setattr(store_queries, "insert_message", flaky)
    conversation = new_id()
    bot.enqueue(["stored"])
    ws = await client.ws_connect("/ws")
    await ws.send_json({"action": "send", "conversation": conversation, "message": "hi"})
    frames = await frames_until(ws, finished)
    assert not any("chat log" in f for f in frames)
    assert [m.content for m in await store.messages(conversation)] == ["hi", "stored"]
    await ws.close()


async def test_failing_checkpoints_and_final_save_are_reported_in_the_message(
    failing_client: TestClient, failing_store: FailingStore, bot: ScriptedBot
) -> None:
    failing_store.fail_updates = -1
    bot.delay = 0.01
    bot.enqueue(["every ", "word ", "still ", "arrives"])
    conversation = new_id()
    ws = await failing_client.ws_connect("/ws")
    await ws.send_json({"action": "send", "conversation": conversation, "message": "hi"})
    frames = await frames_until(ws, finished)
    assert any(e.tag == "article" for e in parse_frame(frames[-1]))  # the finished message
    final = shown_messages(frames)[-1]
    assert final.attrs["data-status"] == "complete"  # the bot did not fail: the disk did
    assert "every word still arrives" in final.text
    assert "chat log" in final.text  # the reader learns it was not saved
    # the server keeps serving
    assert (await failing_client.get("/healthz")).status == 200
    await ws.close()
