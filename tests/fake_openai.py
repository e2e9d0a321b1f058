"""A scripted fake OpenAI-compatible model server for tests.

In tests: `fake = FakeOpenAI(); base_url = await fake.serve_with(aiohttp_server)`, then
`fake.enqueue(Reply(chunks=[...]))` before each request. Each reply is a list of steps: bytes
to write, a number of seconds to sleep, or `DISCONNECT` to drop the connection. With nothing
queued, /v1/chat/completions streams a canned reply word by word and /v1/models lists
`fake.models`. Requests are recorded in `fake.requests`; `fake.disconnected` is set when
the client goes away mid-reply.

Standalone (for browser tests): `python -m tests.fake_openai --port 8765` serves on
127.0.0.1 until killed and prints its base URL.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import enum
import json
import socket
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer
from multidict import CIMultiDict


class Action(enum.Enum):
    """Special script steps."""

    DISCONNECT = "disconnect"


DISCONNECT = Action.DISCONNECT
Step = bytes | float | Action


@dataclass
class Reply:
    """One scripted response. A reply with `chunks` streams; otherwise `body` is sent whole."""

    status: int = 200
    chunks: Sequence[Step] = ()
    body: bytes = b""
    content_type: str = "text/event-stream"
    delay: float = 0.0  # seconds before the status line, e.g. 3600 for a server that hangs
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def error(cls, status: int, message: str, *, type_: str = "api_error") -> Reply:
        """An OpenAI-style error response."""
        payload = {"error": {"message": message, "type": type_, "param": None, "code": None}}
        return cls(status, body=json.dumps(payload).encode(), content_type="application/json")

    @classmethod
    def json(cls, payload: object, status: int = 200, *, delay: float = 0.0) -> Reply:
        """A JSON response, e.g. a /v1/models list."""
        body = json.dumps(payload).encode()
        return cls(status, body=body, content_type="application/json", delay=delay)


@dataclass
class Received:
    """A request as the fake saw it."""

    method: str
    path: str
    json: Any
    headers: CIMultiDict[str]


def chunk(
    content: str | None = None,
    *,
    reasoning: str | None = None,
    reasoning_key: str = "reasoning_content",
    finish: str | None = None,
) -> dict[str, Any]:
    """A `chat.completion.chunk` with the given delta and finish reason."""
    delta: dict[str, Any] = {}
    if content is not None:
        delta["content"] = content
    if reasoning is not None:
        delta[reasoning_key] = reasoning
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "fake-model",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }


def sse(*payloads: dict[str, Any] | str, newline: str = "\n") -> bytes:
    """SSE events: dicts become `data: <json>`, strings (e.g. "[DONE]") go in as they are."""
    out = []
    for payload in payloads:
        data = payload if isinstance(payload, str) else json.dumps(payload)
        out.append(f"data: {data}{newline}{newline}")
    return "".join(out).encode()


def split(data: bytes, size: int | None) -> list[bytes]:
    """Cut `data` into pieces of `size` bytes (None: one piece)."""
    if size is None:
        return [data]
    return [data[i : i + size] for i in range(0, len(data), size)]


def words_reply(text: str, *, delay: float = 0.0, done: bool = True) -> list[Step]:
    """Steps streaming `text` word by word, then a stop chunk and (optionally) [DONE]."""
    steps: list[Step] = [
        sse({**chunk(""), "choices": [{"index": 0, "delta": {"role": "assistant"}}]})
    ]
    for i, word in enumerate(text.split(" ")):
        if delay:
            steps.append(delay)
        steps.append(sse(chunk(word if i == 0 else " " + word)))
    steps.append(sse(chunk(finish="stop")))
    if done:
        steps.append(sse("[DONE]"))
    return steps


def tool_fragment(
    index: int | None,
    *,
    call_id: str | None = None,
    name: str | None = None,
    arguments: str | None = None,
) -> dict[str, Any]:
    """One `delta.tool_calls` entry: what a server sends of a call in one chunk."""
    entry: dict[str, Any] = {}
    if index is not None:
        entry["index"] = index
    if call_id is not None:
        entry["id"], entry["type"] = call_id, "function"
    function: dict[str, Any] = {}
    if name is not None:
        function["name"] = name
    if arguments is not None:
        function["arguments"] = arguments
    if function:
        entry["function"] = function
    return entry


def tool_chunk(*entries: dict[str, Any], content: str | None = None) -> dict[str, Any]:
    """A chunk carrying `delta.tool_calls` entries (and maybe text)."""
    payload = chunk(content)
    payload["choices"][0]["delta"]["tool_calls"] = list(entries)
    return payload


def tool_calls_reply(
    calls: Sequence[tuple[str, str, str]],
    *,
    text: str = "",
    piece: int = 4,
    interleave: bool = False,
    delay: float = 0.0,
) -> list[Step]:
    """Steps streaming tool calls (id, name, arguments JSON) the way servers do: id and name
    in a call's first fragment, its arguments `piece` characters at a time, each call on
    its own index (`interleave`: the calls' fragments alternate), then finish_reason
    "tool_calls" and [DONE]."""
    steps: list[Step] = [sse(chunk(text))] if text else []
    fragments: list[list[dict[str, Any]]] = []
    for i, (call_id, name, arguments) in enumerate(calls):
        parts = [tool_fragment(i, call_id=call_id, name=name, arguments="")]
        parts += [
            tool_fragment(i, arguments=arguments[k : k + piece])
            for k in range(0, len(arguments), piece)
        ]
        fragments.append(parts)
    order = (
        [f for group in _zip_longest(fragments) for f in group]
        if interleave
        else [f for parts in fragments for f in parts]
    )
    for fragment in order:
        if delay:
            steps.append(delay)
        steps.append(sse(tool_chunk(fragment)))
    steps.append(sse(chunk(finish="tool_calls")))
    steps.append(sse("[DONE]"))
    return steps


def _zip_longest(groups: list[list[dict[str, Any]]]) -> list[list[dict[str, Any]]]:
    longest = max((len(g) for g in groups), default=0)
    return [[g[i] for g in groups if i < len(g)] for i in range(longest)]


class FakeOpenAI:
    """The scripted server (see the module docstring)."""

    CANNED = "Hello! I am the fake model server, streaming this reply one word at a time."

    def __init__(
        self,
        models: Sequence[str] = ("fake-model",),
        word_delay: float = 0.0,
        *,
        tool_script: bool = False,
    ) -> None:
        # tool_script: with nothing queued, a user message "/call NAME ARGS [NAME ARGS...]"
        # is answered with those tool calls (in fragments), and the request after the tool
        # turns with "Tools said: ..." (their contents), so a browser test can drive rounds.
        self.tool_script = tool_script
        self.models = list(models)
        self.word_delay = word_delay
        self.requests: list[Received] = []
        self.disconnected = asyncio.Event()
        self.disconnected_at: float | None = None  # time.monotonic() when noticed
        self._queues: dict[str, deque[Reply]] = {"chat": deque(), "models": deque()}
        self.app = web.Application()
        self.app.router.add_get("/v1/models", self._models)
        self.app.router.add_post("/v1/chat/completions", self._chat)
        # How servers describe their context windows: vLLM's max_model_len in the model list,
        # llama.cpp's /props, Ollama's /api/show (each off until a test sets it).
        self.max_model_len: int | None = None
        self.props: dict[str, Any] | None = None
        self.shown: dict[str, dict[str, Any]] = {}
        self.app.router.add_get("/props", self._props)
        self.app.router.add_post("/api/show", self._show)
        # For tests in another process (browser tests): the chat request bodies received.
        self.app.router.add_get("/_received", self._received)
        self._runner: web.AppRunner | None = None
        self.base_url = ""  # set by serve_with() / start()

    def enqueue(self, reply: Reply, *, endpoint: str = "chat") -> None:
        """Queue `reply` for the next request to `endpoint` ("chat" or "models")."""
        self._queues[endpoint].append(reply)

    @property
    def chat_requests(self) -> list[Received]:
        """Recorded POSTs to /v1/chat/completions."""
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    async def serve_with(self, aiohttp_server: Callable[..., Awaitable[TestServer]]) -> str:
        """Serve through pytest-aiohttp's `aiohttp_server`; returns the base URL (.../v1)."""
        # aiohttp's TestServer turns on handler_cancellation: a client disconnect cancels the
        # handler at once, which is how the fake notices it while sleeping between chunks.
        server = await aiohttp_server(self.app, host="127.0.0.1")
        self.base_url = str(server.make_url("/v1"))
        return self.base_url

    async def start(self, port: int = 0) -> str:
        """Serve on 127.0.0.1:`port` without pytest; returns the base URL."""
        sock = socket.create_server(("127.0.0.1", port))  # bind first: port 0 -> real port
        self._runner = web.AppRunner(self.app, handler_cancellation=True, access_log=None)
        await self._runner.setup()
        await web.SockSite(self._runner, sock).start()
        self.base_url = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
        return self.base_url

    async def stop(self) -> None:
        """Stop a server started with `start()`."""
        if self._runner is not None:
            await self._runner.cleanup()

    async def _models(self, request: web.Request) -> web.StreamResponse:
        default = Reply.json(
            {"object": "list", "data": [self._model_entry(m) for m in self.models]}
        )
        return await self._respond(request, "models", default)

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        default = Reply(chunks=words_reply(self.CANNED, delay=self.word_delay))
        if self.tool_script and request.can_read_body:
            default = self._scripted(await request.json()) or default
        return await self._respond(request, "chat", default)

    def _scripted(self, payload: Any) -> Reply | None:
        messages = payload.get("messages") if isinstance(payload, dict) else None
        if not isinstance(messages, list) or not messages:
            return None
        last = messages[-1]
        if last.get("role") == "tool":
            asked = max(i for i, m in enumerate(messages) if m.get("role") == "user")
            said = [m["content"] for m in messages[asked:] if m.get("role") == "tool"]
            return Reply(chunks=words_reply("Tools said: " + " | ".join(said), delay=0.01))
        text = last.get("content") if last.get("role") == "user" else None
        if not isinstance(text, str) or not text.startswith("/call "):
            return None
        words = text.split(" ")[1:]
        n = len(self.requests)
        calls = [(f"call{n}_{i}", words[i], words[i + 1]) for i in range(0, len(words) - 1, 2)]
        return Reply(chunks=tool_calls_reply(calls, delay=0.01))

    async def _props(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(
            Received(request.method, request.path, None, CIMultiDict(request.headers))
        )
        if self.props is None:
            return web.json_response({"error": "not found"}, status=404)
        return web.json_response(self.props)

    async def _show(self, request: web.Request) -> web.StreamResponse:
        payload = await request.json()
        self.requests.append(
            Received(request.method, request.path, payload, CIMultiDict(request.headers))
        )
        found = self.shown.get(payload.get("model")) if isinstance(payload, dict) else None
        if found is None:
            return web.json_response({"error": "not found"}, status=404)
        return web.json_response(found)

    async def _received(self, request: web.Request) -> web.StreamResponse:
        return web.json_response([r.json for r in self.chat_requests])

    def _model_entry(self, name: str) -> dict[str, Any]:
        entry: dict[str, Any] = {"id": name, "object": "model", "created": 0, "owned_by": "fake"}
        if self.max_model_len is not None:
            entry["max_model_len"] = self.max_model_len
        return entry

    async def _respond(
        self, request: web.Request, endpoint: str, default: Reply
    ) -> web.StreamResponse:
        try:
            payload = await request.json() if request.can_read_body else None
        except ValueError:
            payload = None  # recorded as None; the test asserting on it will say so
        self.requests.append(
            Received(request.method, request.path, payload, CIMultiDict(request.headers))
        )
        queue = self._queues[endpoint]
        reply = queue.popleft() if queue else default
        try:
            if reply.delay:
                await asyncio.sleep(reply.delay)
            if not reply.chunks:
                return web.Response(
                    status=reply.status,
                    body=reply.body,
                    content_type=reply.content_type,
                    headers=reply.headers,
                )
            resp = web.StreamResponse(status=reply.status, headers=reply.headers)
            resp.content_type = reply.content_type
            await resp.prepare(request)
            for step in reply.chunks:
                if step is DISCONNECT:
                    assert request.transport is not None
                    request.transport.close()
                    return resp
                if isinstance(step, bytes):
                    await resp.write(step)
                elif isinstance(step, float | int):
                    await asyncio.sleep(step)
            await resp.write_eof()
            return resp
        except asyncio.CancelledError:
            self._mark_disconnected()
            raise
        except ConnectionResetError:
            self._mark_disconnected()
            return web.Response(status=499)  # never sent: the client is gone

    def _mark_disconnected(self) -> None:
        if self.disconnected_at is None:
            self.disconnected_at = time.monotonic()
        self.disconnected.set()


async def _serve_forever(port: int, tools: bool) -> None:
    fake = FakeOpenAI(word_delay=0.05, tool_script=tools)
    base_url = await fake.start(port)
    print(f"fake OpenAI-compatible server at {base_url}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await fake.stop()


def main(argv: Sequence[str] | None = None) -> None:
    """Run the fake on 127.0.0.1 until killed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free port)")
    parser.add_argument("--tools", action="store_true", help="answer /call messages with tools")
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how this is meant to stop
        asyncio.run(_serve_forever(args.port, args.tools))


if __name__ == "__main__":
    main()
