"""Test helpers: scripted bots, frame parsing, and running htmxchat as a real process."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import inspect
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, ClassVar

import aiohttp
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestClient

from htmxchat.access import load_or_create_token, login_url
from htmxchat.answering.bots import BuiltIn, Piece, ReplyEnd, Turn
from htmxchat.answering.bots.detect import Candidate
from htmxchat.app import create_app
from htmxchat.chat import ChatService
from htmxchat.config import Settings
from htmxchat.events import ReplyFinished
from htmxchat.ids import new_id
from htmxchat.markdown.html import Part, stream_ids
from htmxchat.models import Message
from htmxchat.store import DB_FILENAME, ChatStore

ROOT = Path(__file__).resolve().parent.parent
# Markup that must come out escaped wherever a person or a model can put it.
XSS = (
    "<script>alert(1)</script><img src=x onerror=alert(2)> "
    'hx-get="/x" <div hx-swap-oob="true" id="app">'
)


class Tab:
    """A reader of one conversation's numbered events, as a socket is (no server needed)."""

    def __init__(self, chat: Any, subscription: Any, snapshot: Any) -> None:
        self.chat = chat
        self.subscription = subscription
        self.snapshot = snapshot
        self.seqs: list[int] = []

    @classmethod
    async def open(cls, chat: Any, conversation_id: str) -> Tab:
        subscription, snapshot = await chat.join(conversation_id, asyncio.Event())
        return cls(chat, subscription, snapshot)

    def drain(self) -> list[Any]:
        """The events buffered now, in order."""
        items = self.subscription.take(10_000)
        self.seqs.extend(item.seq for item in items)
        return [item.event for item in items]

    async def next(self, timeout: float = 5.0) -> Any:  # noqa: ASYNC109
        """The next event, waiting for it."""
        async with asyncio.timeout(timeout):
            while True:
                items = self.subscription.take(1)
                if items:
                    self.seqs.append(items[0].seq)
                    return items[0].event
                self.subscription.wake.clear()
                await self.subscription.wake.wait()

    async def until(self, kind: type, timeout: float = 5.0) -> list[Any]:  # noqa: ASYNC109
        """Events up to and including the first of type `kind`."""
        events = [await self.next(timeout)]
        while not isinstance(events[-1], kind):
            events.append(await self.next(timeout))
        return events

    def close(self) -> None:
        self.chat.leave(self.subscription)


class ScriptedBot(BuiltIn):
    """A bot whose replies tests enqueue: lists of pieces, with optional delays and failure."""

    label = "Scripted bot"

    def __init__(self, *, delay: float = 0.0, model: str | None = None) -> None:
        self.delay = delay
        self.model = model
        self.scripts: list[tuple[list[str], Exception | None]] = []
        self.histories: list[list[Turn]] = []
        self.models_used: list[str | None] = []
        self.params_used: list[dict[str, object] | None] = []
        self.cancelled = asyncio.Event()
        self.gate: asyncio.Event | None = None  # when set, pieces wait for it

    def enqueue(self, pieces: Sequence[str], *, fail_with: Exception | None = None) -> None:
        self.scripts.append((list(pieces), fail_with))

    async def stream(
        self,
        history: Sequence[Turn],
        *,
        model: str | None = None,
        params: dict[str, object] | None = None,
    ) -> AsyncIterator[Piece]:
        self.histories.append(list(history))
        self.models_used.append(model)
        self.params_used.append(params)
        pieces, failure = self.scripts.pop(0) if self.scripts else (["ok"], None)
        try:
            for text in pieces:
                if self.gate is not None:
                    await self.gate.wait()
                await asyncio.sleep(self.delay)
                yield Piece(text=text)
            if failure is not None:
                raise failure
            yield ReplyEnd("stop")
        except asyncio.CancelledError:
            self.cancelled.set()
            raise

    async def close(self) -> None:
        self.closed = True


@dataclass
class Element:
    """A top-level element of a frame: tag, attributes and inner text."""

    tag: str
    attrs: dict[str, str | None]
    text: str = ""
    children: list[Element] = field(default_factory=list)

    @property
    def id(self) -> str | None:
        return self.attrs.get("id")


class _FrameParser(HTMLParser):
    VOID = frozenset({"input", "br", "img", "meta", "link", "hr"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.roots: list[Element] = []
        self.stack: list[Element] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, dict(attrs))
        if self.stack:
            self.stack[-1].children.append(element)
        else:
            self.roots.append(element)
        if tag not in self.VOID:
            self.stack.append(element)

    def handle_endtag(self, tag: str) -> None:
        if self.stack and self.stack[-1].tag == tag:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        for element in self.stack:
            element.text += data


def parse_frame(html: str) -> list[Element]:
    """The top-level elements of a frame, as the htmx ws extension will see them."""
    parser = _FrameParser()
    parser.feed(html)
    parser.close()
    return parser.roots


def find(elements: Sequence[Element], element_id: str) -> Element | None:
    """Depth-first search by id."""
    for element in elements:
        if element.id == element_id:
            return element
        found = find(element.children, element_id)
        if found is not None:
            return found
    return None


async def logged_in_client(
    aiohttp_client, aiohttp_server, app: web.Application, data_dir: Path
) -> TestClient:
    """Serve `app`, then exchange the token for the cookie as a browser's first visit does.

    The client sends the page's own Origin on every request (browsers do on the WebSocket
    handshake and on POSTs; the server refuses those without it).
    """
    server = await aiohttp_server(app)
    origin = f"http://127.0.0.1:{server.port}"
    client = await aiohttp_client(server, headers={"Origin": origin})
    token = load_or_create_token(data_dir)
    response = await client.get(f"/?token={token}", allow_redirects=False)
    assert response.status == 303, await response.text()
    return client


def run_cli(*args: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    """`python -m htmxchat --no-browser ARGS` to completion (for exit codes and messages)."""
    return subprocess.run(
        [sys.executable, "-m", "htmxchat", "--no-browser", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def seed_conversation(data_dir: Path, texts: Sequence[str]) -> str:
    """A conversation of alternating user/assistant messages, written straight to the
    database from a thread of its own (safe while Playwright or another loop runs)."""
    from htmxchat.store import DB_FILENAME

    async def write() -> str:
        store = await ChatStore.open(data_dir / DB_FILENAME, recover=False)
        conversation = new_id()
        try:
            for number, text in enumerate(texts):
                role = "user" if number % 2 == 0 else "assistant"
                await store.add_message(
                    Message(new_id(), conversation, role, text, bot="Demo bot")  # type: ignore[arg-type]
                )
        finally:
            await store.close()
        return conversation

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, write()).result()


class ServerProcess:
    """`python -m htmxchat` in a subprocess, with its printed URL."""

    # Every server started, so a fixture can kill what a failing test left running.
    started: ClassVar[list[ServerProcess]] = []

    def __init__(
        self,
        data_dir: Path,
        *args: str,
        env: dict[str, str] | None = None,
        open_browser: bool = False,
    ) -> None:
        # The demo bot with repeatable picks (seed 12: the long reply first), unless a test
        # asks otherwise, so a model server running on this machine cannot change results.
        defaults = {
            "HTMXCHAT_BOT": "demo",
            "HTMXCHAT_DEMO_SEED": "12",
            "HTMXCHAT_LOCAL_SERVERS": "off",  # nor can one make the settings page differ
        }
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **defaults, **(env or {})}
        full_env.pop("HTMXCHAT_PORT", None)
        flags = [] if open_browser else ["--no-browser"]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "htmxchat", *flags, "--data-dir", str(data_dir), *args],
            cwd=ROOT,
            env=full_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        ServerProcess.started.append(self)
        self.output: list[str] = []
        # The login URL as printed, with ?token=… (a browser's first visit sets the cookie).
        self.url = self._wait_for_url()
        self.base_url, _, self.token = self.url.partition("?token=")
        self._wait_until_serving()

    def _wait_for_url(self, timeout: float = 60.0) -> str:
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            self.output.append(line)
            if re.fullmatch(r"http://\S+/(\?token=[\w-]+)?\n", line):
                return line.strip()
        self.process.kill()
        _, err = self.process.communicate(timeout=5)
        raise AssertionError(f"no URL printed; stdout={self.output!r} stderr={err!r}")

    def _wait_until_serving(self) -> None:
        """The URL is printed before the server has loaded (its socket queues requests);
        the line saying who answers comes once it serves."""
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        self.output.append(line)
        if not line:
            self.process.kill()
            _, err = self.process.communicate(timeout=5)
            raise AssertionError(f"stopped after printing its URL; stderr={err!r}")

    @property
    def port(self) -> int:
        return int(self.base_url.rsplit(":", 1)[1].strip("/"))

    @property
    def headers(self) -> dict[str, str]:
        """What a non-browser client sends: the token, and the page's own Origin."""
        return {"Authorization": f"Bearer {self.token}", "Origin": self.base_url.rstrip("/")}

    def stop(self, sig: int = signal.SIGINT, timeout: float = 10.0) -> tuple[int, str, str]:
        """Send `sig`, wait, and return (exit code, rest of stdout, stderr)."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        out, err = self.process.communicate(timeout=timeout)
        return self.process.returncode, "".join(self.output) + out, err

    def kill(self) -> None:
        """Kill the process if it still runs, and close its pipes."""
        if self.process.poll() is None:
            self.process.kill()
        if self.process.stdout is not None and not self.process.stdout.closed:
            self.process.communicate(timeout=10)


# tests/mcp_server.py as an MCP server entry of mcp.json (stdio, this checkout importable).
MCP_TEST_SERVER: dict[str, object] = {
    "command": sys.executable,
    "args": ["-m", "tests.mcp_server"],
    "env": {"PYTHONPATH": str(ROOT)},
}


def write_mcp_config(path: Path, servers: dict[str, object]) -> Path:
    """An mcp.json at `path` naming `servers` (name: entry)."""
    path.write_text(json.dumps({"mcpServers": servers}), "utf-8")
    return path


class FakeModelServer:
    """`python -m tests.fake_openai` in a subprocess: a model server for end-to-end tests."""

    def __init__(self, port: int = 0, *, tools: bool = False) -> None:
        # tools: "/call NAME ARGS" messages are answered with tool calls.
        flags = ["--tools"] if tools else []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.fake_openai", "--port", str(port), *flags],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        self.base_url = self.process.stdout.readline().split()[-1]

    def __enter__(self) -> FakeModelServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop it (a model server going away)."""
        if self.process.poll() is None:
            self.process.terminate()
        self.process.communicate(timeout=10)


async def eventually(check, timeout: float = 5.0, interval: float = 0.01) -> None:  # noqa: ASYNC109
    """Wait until `check()` (plain or async) returns true, polling every `interval`."""
    for _ in range(int(timeout / interval)):
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")


# -- the socket, as a page uses it ---------------------------------------------------------


async def receive_until(ws, predicate, limit: float = 5.0) -> list[str]:
    """Frames up to and including the first one for which predicate(frame) is true."""
    frames: list[str] = []
    async with asyncio.timeout(limit):
        while True:
            message = await ws.receive()
            assert message.type == WSMsgType.TEXT, message
            frames.append(message.data)
            if predicate(message.data):
                return frames


def is_finished(frame: str) -> bool:
    return 'data-busy="false"' in frame and 'hx-swap-oob="true"' in frame and "<article" in frame


async def open_conversation(client: TestClient, conversation: str):
    ws = await client.ws_connect("/ws")
    await ws.send_json({"action": "sync", "conversation": conversation})
    sync = await receive_until(ws, lambda f: 'id="messages"' in f)
    # The conversation list follows the conversation in its own frame.
    await receive_until(ws, lambda f: f.startswith("<!--frame kind=feed-snapshot "))
    return ws, sync[-1]


async def chat(client: TestClient, conversation: str, text: str, **extra: str) -> list[str]:
    """Send `text`; return the frames up to the reply's final render."""
    ws = await client.ws_connect("/ws")
    await ws.send_json({"action": "send", "conversation": conversation, "message": text, **extra})
    frames = []
    async with asyncio.timeout(10):
        async for message in ws:
            frames.append(message.data)
            if is_final(message.data):
                break
    await ws.close()
    return frames


def is_final(frame: str) -> bool:
    """True for the frame that replaces a reply with its finished render."""
    return any(
        "msg-assistant" in (e.attrs.get("class") or "") and e.attrs.get("hx-swap-oob") == "true"
        for e in parse_frame(frame)
    )


def final_reply(frames: list[str]) -> Shown:
    """The finished answer as the page shows it after `frames` (its text streamed in)."""
    assert is_final(frames[-1])
    return [m for m in shown_messages(frames) if "msg-assistant" in (m.attrs["class"] or "")][-1]


def free_port() -> int:
    """A port on 127.0.0.1 nothing listens on now (for a server a test starts later)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- a page in a browser ------------------------------------------------------------------

TIMEOUT = 15_000  # ms: how long a browser test waits for what the page should show


def at(server: ServerProcess, path: str) -> str:
    """The login link for `path`: the token is swapped for the cookie, then `path` opens."""
    return f"{server.base_url}{path}?token={server.token}"


def seed(data_dir: Path, texts: list[str]) -> str:
    """A conversation written straight to the database (in a thread: Playwright owns the loop)."""
    return seed_conversation(data_dir, texts)


def wait_connected(page) -> None:
    page.wait_for_selector('#connection[data-state="open"]', timeout=TIMEOUT)


def send(page, text: str) -> None:
    page.fill("#composer-input", text)
    page.press("#composer-input", "Enter")


DONE = "article.msg-assistant[data-status=complete]"


def chat_in_page(page, url: str, text: str) -> None:
    """Open `url`, send `text` once connected, and wait until an answer is finished."""
    page.goto(url)
    # attached: on a phone the connection's badge is not drawn, but its state is kept
    page.wait_for_selector('#connection[data-state="open"]', state="attached", timeout=TIMEOUT)
    send(page, text)
    page.wait_for_selector(DONE, timeout=TIMEOUT)


def wait_reply_done(page, count: int) -> None:
    """Until the page shows `count` finished replies and Send is back."""
    page.wait_for_function(
        "n => document.querySelectorAll('article.msg-assistant[data-status=complete]').length"
        " >= n && document.querySelector('#composer-actions').dataset.busy === 'false'",
        arg=count,
        timeout=TIMEOUT,
    )


def texts(page, selector: str = "#messages .msg-body") -> list[str]:
    return page.eval_on_selector_all(selector, "els => els.map(e => e.textContent.trim())")


@contextlib.contextmanager
def served_in_thread(
    data_dir: Path, bot: EchoBot, local_servers: Sequence[Candidate] | None = None
) -> Iterator[str]:
    """The app with `bot`, served from a thread (Playwright owns this one's loop);
    `local_servers`: where it looks for local model servers (default: the usual ports)."""
    loop = asyncio.new_event_loop()
    started: dict[str, object] = {}
    ready = threading.Event()

    async def start() -> None:
        settings = Settings(data_dir=data_dir, open_browser=False, word_delay=0)
        runner = web.AppRunner(create_app(settings, bot=bot, local_servers=local_servers))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        started["runner"] = runner
        started["port"] = runner.addresses[0][1]

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(10)
    base = f"http://127.0.0.1:{started['port']}/"
    yield login_url(base, load_or_create_token(data_dir))
    runner = started["runner"]
    assert isinstance(runner, web.AppRunner)
    asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


class EchoBot(BuiltIn):
    """A "model" that repeats the user's text in small pieces: hostile model output."""

    label = "Echo bot"
    model: str | None = None

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay

    async def close(self) -> None:
        """Nothing to release."""

    async def stream(
        self, history: Sequence[Turn], *, model: str | None = None, params: object = None
    ) -> AsyncIterator[Piece]:
        text = history[-1].content
        for start in range(0, len(text), 5):  # split tags across pieces, like tokens
            await asyncio.sleep(self.delay)
            yield Piece(text=text[start : start + 5])


# Collects CSP violations from the first moment of every page.
WATCH_CSP = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__violations.push(
    `${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber} ${e.sample}`);
});
"""


def assert_inert(page) -> None:
    assert page.evaluate("window.__pwned") is None
    assert page.evaluate("window.__violations") == []
    injected = (
        "#messages script, #messages img, #messages svg, "
        # the only buttons, and the only hx-get (Edit fetches its form): the page's own
        # message actions, outside every body a person or a model wrote
        "#messages [hx-get]:not(.msg-actions > [hx-get]), "
        "#messages button:not(.msg-actions > button):not(.versions > button)"
    )
    assert page.evaluate(f"document.querySelectorAll({injected!r}).length") == 0
    assert page.locator("form#composer").count() == 1


class TwoModels(EchoBot):
    """An echo bot with a model name, so that the page shows a model picker."""

    label = "Echo server"
    model: str | None = "echo-1"


def reply_finished(frame: str) -> bool:
    return 'data-busy="false"' in frame and "<article" in frame


def chat_once(server: ServerProcess, conversation: str, text: str) -> None:
    """Send one message and wait until the reply has finished."""
    send_and_wait(server, conversation, text, reply_finished)


def reply_streaming(frame: str) -> bool:
    """At least one word of the reply arrived: a numbered room frame that adds no message
    (deltas address the streaming body by a short id, not by the message's own)."""
    return bool(re.match(r"<!--\d", frame)) and "<article" not in frame and "hx-swap-oob" in frame


def send_and_wait(
    server: ServerProcess, conversation: str, text: str, until: Callable[[str], bool]
) -> None:
    """Send one message over the WebSocket, then read frames until `until(frame)`."""

    async def run() -> None:
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(ws_url(server), headers=server.headers) as ws:
                await ws.send_json(
                    {"action": "send", "conversation": conversation, "message": text}
                )
                async with asyncio.timeout(20):
                    async for message in ws:
                        if until(message.data):
                            return

    asyncio.run(run())


def ws_url(server: ServerProcess) -> str:
    return server.base_url.replace("http", "ws", 1) + "ws"


class RecordingStore(ChatStore):
    """A real store that also records the order of writes."""

    writes: list[tuple[str, str, str]]

    async def add_message(self, message: Message) -> Message:
        self.writes.append(("add", message.role, message.status))
        return await super().add_message(message)

    async def update_reply(self, message: Message) -> None:
        self.writes.append(("update", message.role, message.status))
        await super().update_reply(message)


async def open_recording(path: Path) -> RecordingStore:
    store = await RecordingStore.open(path)
    assert isinstance(store, RecordingStore)
    store.writes = []
    return store


async def wait_finished(chat: ChatService, conversation: str) -> ReplyFinished:
    tab = await Tab.open(chat, conversation)
    finished = (await tab.until(ReplyFinished, timeout=10))[-1]
    tab.close()
    return finished


PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


def form(*files: tuple[str, bytes]) -> aiohttp.FormData:
    data = aiohttp.FormData()
    for name, content in files:
        data.add_field(
            "file", io.BytesIO(content), filename=name, content_type="application/octet-stream"
        )
    return data


async def upload(client: TestClient, conversation: str, *files: tuple[str, bytes]) -> list[str]:
    response = await client.post(f"/c/{conversation}/attachments", data=form(*files))
    assert response.status == 200, await response.text()
    return [a["id"] for a in (await response.json())["attachments"]]


def database_bytes(data_dir: Path) -> bytes:
    """The database file with its WAL and shared-memory files, as they are on disk."""
    return b"".join(
        path.read_bytes() for path in data_dir.iterdir() if path.name.startswith(DB_FILENAME)
    )


def stored(server: ServerProcess, conversation: str) -> list[dict]:
    request = urllib.request.Request(
        f"{server.base_url}c/{conversation}/export.json", headers=server.headers
    )
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read())["messages"]


def received(base_url: str) -> list[dict]:
    root = base_url.removesuffix("/v1")
    with urllib.request.urlopen(f"{root}/_received") as response:
        return json.loads(response.read())


class PacedEcho(BuiltIn):
    """Repeats the user's text: at once, or (text starting "slow") a few characters at a time."""

    label = "Paced echo"
    model: str | None = "echo-1"

    async def close(self) -> None:
        """Nothing to release."""

    async def stream(
        self, history: Sequence[Turn], *, model: str | None = None, params: object = None
    ) -> AsyncIterator[Piece]:
        text = history[-1].content
        slow = text.startswith("slow")
        burst = text.startswith("burst")  # several paragraphs a piece, as a fast model sends
        step = 12 if slow else 700 if burst else 4000
        for start in range(0, len(text), step):
            await asyncio.sleep(0.03 if slow else 0.25 if burst else 0)
            yield Piece(text=text[start : start + step])


def connect(page, url: str) -> None:
    page.goto(url)
    page.wait_for_selector('#connection[data-state="open"]', timeout=TIMEOUT)


def chat_core(store: ChatStore, bot: Any, **options: Any) -> ChatService:
    """The chat core over `store` with `bot` (a bare bot, or an Answering), as the app builds
    it, for tests of what the core does without a web server in between."""
    return ChatService(store, bot, **options)


@dataclass
class Shown:
    """A message as the page shows it after a run of frames."""

    attrs: dict[str, str | None]
    text: str


def shown_messages(frames: Sequence[str]) -> list[Shown]:
    """The messages a page shows after applying `frames` in order to an empty transcript, as
    htmx does (a finished answer keeps the blocks it streamed: `data-streamed`)."""
    from tests.oob_dom import Page, text_of

    page = Page('<div id="messages"></div>')
    for frame in frames:
        page.apply(frame, lenient=True)
    messages = page.find("messages")
    assert messages is not None
    return [
        Shown({k: v for k, v in node.attrs}, text_of(node))
        for node in messages.children
        if node.tag == "article"
    ]


def stream_tail(message_id: str = "", part: Part = "body") -> str:
    """The id of a streaming reply's tail (the element every streamed frame appends to)."""
    return stream_ids(message_id.removeprefix("m-") or "0" * 22, part)[1]
