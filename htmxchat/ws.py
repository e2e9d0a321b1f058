"""The chat WebSocket: parses browser frames, calls the chat core, sends fragments back.

Frames from the page are the htmx ws extension's JSON: form fields plus `HEADERS`. The
server answers with HTML fragments that htmx swaps in out of band.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass, replace
from typing import Literal

import aiohttp_jinja2
from aiohttp import WSCloseCode, WSMsgType, web

from htmxchat.chat import ChatInputError, ChatService, Resync, Subscription
from htmxchat.fragments import Fragments
from htmxchat.ids import is_valid_id
from htmxchat.keys import chat_key, choice_key, sockets_key
from htmxchat.store import StoreError
from htmxchat.views import PAGE_MESSAGES

log = logging.getLogger(__name__)

# Enough for the longest allowed message even if every character were JSON-escaped.
MAX_FRAME_BYTES = 1024 * 1024
HEARTBEAT_SECONDS = 30.0
# A client that does not take a frame within this time is stuck: drop it (bounded memory).
SEND_TIMEOUT_SECONDS = 15.0
MAX_EVENTS_PER_FRAME = 64

Action = Literal["send", "stop", "sync", "regenerate"]
MAX_MODEL_NAME = 256


@dataclass(frozen=True, slots=True)
class ClientFrame:
    """A validated frame from the page."""

    action: Action
    conversation_id: str
    message: str = ""
    model: str | None = None
    since: str | None = None  # sync: the oldest message the page shows (keep it shown)


class FrameError(Exception):
    """A frame the server cannot use; the message is shown to the user."""


def parse_client_frame(raw: str) -> ClientFrame:
    """Validate a frame's JSON and narrow it to a ClientFrame (or raise FrameError)."""
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: "[[[[…" nested past the limit
        raise FrameError("The page sent something that is not JSON; reload the page.") from None
    if not isinstance(data, dict):
        raise FrameError("The page sent a frame of the wrong shape; reload the page.")
    action = data.get("action", "send")
    if action not in ("send", "stop", "sync", "regenerate"):
        raise FrameError("The page asked for something the server does not know; reload it.")
    conversation_id = data.get("conversation")
    if not is_valid_id(conversation_id):
        raise FrameError("The page did not say which conversation this is for; reload it.")
    message = data.get("message", "")
    if not isinstance(message, str):
        raise FrameError("The message must be text.")
    model = data.get("model") or None
    if model is not None and (not isinstance(model, str) or len(model) > MAX_MODEL_NAME):
        raise FrameError("The model name must be text of at most 256 characters.")
    if model is not None:
        model = _valid_unicode(model)
    since = data.get("since")
    return ClientFrame(
        action,
        str(conversation_id),
        _valid_unicode(message),
        model,
        since if is_valid_id(since) else None,
    )


def _valid_unicode(text: str) -> str:
    """Join surrogate pairs and replace lone halves: JSON allows "\\ud800", but neither
    SQLite nor a WebSocket text frame can carry it (UnicodeEncodeError)."""
    if text.isascii():
        return text
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


async def chat_ws(request: web.Request) -> web.StreamResponse:
    """One browser tab's socket: subscribe to its conversation, accept its input."""
    # compress=False: deflate buys nothing on loopback and costs ~100 KB per connection.
    ws = web.WebSocketResponse(
        heartbeat=HEARTBEAT_SECONDS, max_msg_size=MAX_FRAME_BYTES, compress=False
    )
    await ws.prepare(request)
    sockets = request.app[sockets_key]
    sockets.add(ws)
    choice = request.app[choice_key]
    fragments = Fragments(aiohttp_jinja2.get_env(request.app), bot_label=choice.bot.label)
    connection = _Connection(ws, request.app[chat_key], fragments, request.transport, choice.models)
    try:
        await connection.serve()
    except Exception:
        log.exception("websocket handler failed; closing the socket (the page reconnects)")
        await ws.close(code=WSCloseCode.INTERNAL_ERROR, message=b"server error")
    finally:
        await connection.close()
        sockets.discard(ws)
    return ws


class _Connection:
    """Reader (the handler's own task) plus one writer task that forwards chat events."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        chat: ChatService,
        fragments: Fragments,
        transport: asyncio.Transport | None = None,
        models: tuple[str, ...] = (),
    ):
        self.ws = ws
        self.models = models
        self.transport = transport
        self.chat = chat
        self.fragments = fragments
        self.conversation_id: str | None = None
        self.writer: asyncio.Task[None] | None = None
        self.shown: set[str] = set()
        self.since: str | None = None
        self._send_lock = asyncio.Lock()

    async def serve(self) -> None:
        try:
            async for msg in self.ws:
                if msg.type == WSMsgType.TEXT:
                    await self._handle(msg.data)
                elif msg.type == WSMsgType.BINARY:
                    notice = "htmxchat only understands text frames."
                    await self.send(self.fragments.notice(notice))
                elif msg.type == WSMsgType.ERROR:
                    log.info("websocket error: %s", self.ws.exception())
        except (ConnectionError, TimeoutError) as exc:
            log.info("websocket closed while answering: %r", exc)

    async def _handle(self, raw: str) -> None:
        try:
            frame = parse_client_frame(raw)
        except FrameError as exc:
            await self.send(self.fragments.notice(str(exc)))
            return
        if frame.model is not None and frame.model not in self.models:
            if self.models:
                # Only what the server offers: a forged name must not reach (and bill) the API.
                notice = f"The model {frame.model!r} is not offered here; pick one from the list."
                await self.send(self.fragments.notice(notice))
                return
            frame = replace(frame, model=None)  # this bot has no models to choose from
        if frame.action == "sync" or frame.conversation_id != self.conversation_id:
            try:
                await self.sync(frame.conversation_id, since=frame.since)
            except StoreError as exc:
                await self.send(self.fragments.notice(str(exc)))
                return
        if frame.action == "stop":
            if not self.chat.stop(frame.conversation_id):
                # Nothing runs (it just ended): make sure this tab shows Send again.
                await self.send(self.fragments.composer_actions(busy=False))
        elif frame.action == "send":
            await self._accept(frame)
        elif frame.action == "regenerate":
            try:
                await self.chat.regenerate(frame.conversation_id, model=frame.model)
            except (ChatInputError, StoreError) as exc:
                await self.send(self.fragments.notice(str(exc)))

    async def _accept(self, frame: ClientFrame) -> None:
        try:
            user = await self.chat.send(frame.conversation_id, frame.message, model=frame.model)
        except (ChatInputError, StoreError) as exc:
            await self.send(self.fragments.notice(str(exc)))
            return
        if user is not None:
            await self.send(self.fragments.cleared_input() + self.fragments.notice(None))

    async def sync(self, conversation_id: str, *, since: str | None = None) -> None:
        """(Re)subscribe to a conversation and send its current state."""
        await self._stop_writer()
        self.conversation_id = conversation_id
        self.since = since
        subscription = await self._snapshot(conversation_id)
        self.writer = asyncio.create_task(self._forward(subscription), name="ws-writer")

    async def _snapshot(self, conversation_id: str) -> Subscription:
        # Subscribe first, then read: events queued meanwhile are applied after the snapshot.
        subscription = self.chat.subscribe(conversation_id)
        try:
            messages = await self.chat.transcript(
                conversation_id,
                limit=PAGE_MESSAGES,
                live_reply=subscription.live_reply,
                since=self.since,
            )
            self.shown = {m.id for m in messages}
            busy = self.chat.is_busy(conversation_id)
            older = bool(messages) and await self.chat.store.has_older(
                conversation_id, messages[0].id
            )
            await self.send(
                self.fragments.sync(
                    messages, busy=busy, conversation_id=conversation_id, older=older
                )
            )
        except BaseException:
            self.chat.unsubscribe(subscription)
            raise
        return subscription

    async def _forward(self, subscription: Subscription) -> None:
        try:
            while True:
                batch = [await subscription.queue.get()]
                while not subscription.queue.empty() and len(batch) < MAX_EVENTS_PER_FRAME:
                    batch.append(subscription.queue.get_nowait())
                if any(isinstance(item, Resync) for item in batch):
                    self.chat.unsubscribe(subscription)
                    subscription = await self._snapshot(subscription.conversation_id)
                    continue
                html = "".join(
                    self.fragments.event(item, shown=self.shown)
                    for item in batch
                    if not isinstance(item, Resync)
                )
                await self.send(html)
        except (ConnectionError, TimeoutError, StoreError) as exc:
            log.info("dropping a websocket that cannot be written to: %r", exc)
            await self.ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"please reconnect")
        finally:
            self.chat.unsubscribe(subscription)

    async def send(self, html: str) -> None:
        """Send one frame of fragments (never two writes at once)."""
        if not html.strip():
            return
        async with self._send_lock:
            try:
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a
                # cancellation that lands as the send completes, and the writer then never
                # stops (the socket's handler hangs until the server's shutdown timeout).
                async with asyncio.timeout(SEND_TIMEOUT_SECONDS):
                    await self.ws.send_str(html)
            except TimeoutError:
                # The peer stopped reading. Abort rather than close: a close frame could not
                # get through either, and a plain close keeps the unsent bytes in memory
                # until the peer reads them, which it may never do.
                if self.transport is not None:
                    self.transport.abort()
                raise ConnectionResetError("the client stopped reading") from None

    async def _stop_writer(self) -> None:
        if self.writer is not None:
            self.writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.writer
            self.writer = None

    async def close(self) -> None:
        """Stop forwarding events (the reply itself keeps running)."""
        await self._stop_writer()
