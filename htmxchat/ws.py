"""The chat WebSocket: parses browser frames, calls the chat core, sends fragments back.

Frames from the page are the htmx ws extension's JSON: form fields plus `HEADERS`. The
server answers with HTML fragments that htmx swaps in out of band. A socket follows one
conversation's room and the conversation feed; `sync` says which conversation, and from
which event numbers the page already has it (docs/design.md, "Frames").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from typing import Any

import aiohttp_jinja2
from aiohttp import WSCloseCode, WSMsgType, web

from htmxchat.answering.service import Answering
from htmxchat.channel import Numbered, Subscription
from htmxchat.chat import ChatInputError, ChatService
from htmxchat.events import ChoiceChanged, FeedEvent, RoomEvent
from htmxchat.fragments import Fragments
from htmxchat.frames import ClientFrame, FrameError, Position, parse_client_frame
from htmxchat.keys import answering_key, chat_key, sockets_key
from htmxchat.markdown.offload import prerender_events, prerender_messages
from htmxchat.store import StoreError

log = logging.getLogger(__name__)

# Enough for the longest allowed message even if every character were JSON-escaped.
MAX_FRAME_BYTES = 1024 * 1024
HEARTBEAT_SECONDS = 30.0
# A client that does not take a frame within this time is stuck: drop it (bounded memory).
SEND_TIMEOUT_SECONDS = 15.0
MAX_EVENTS_PER_FRAME = 64


async def chat_ws(request: web.Request) -> web.StreamResponse:
    """One browser tab's socket: follow its conversation and the feed, accept its input."""
    # compress=False: deflate buys nothing on loopback and costs ~100 KB per connection.
    ws = web.WebSocketResponse(
        heartbeat=HEARTBEAT_SECONDS, max_msg_size=MAX_FRAME_BYTES, compress=False
    )
    await ws.prepare(request)
    sockets = request.app[sockets_key]
    sockets.add(ws)
    fragments = Fragments(aiohttp_jinja2.get_env(request.app), request.app[answering_key])
    connection = _Connection(
        ws, request.app[chat_key], request.app[answering_key], fragments, request.transport
    )
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
    """Reader (the handler's own task) plus one writer task that forwards numbered events."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        chat: ChatService,
        answering: Answering,
        fragments: Fragments,
        transport: asyncio.Transport | None = None,
    ):
        self.ws = ws
        self.transport = transport
        self.chat = chat
        self.answering = answering
        self.fragments = fragments
        self.wake = asyncio.Event()  # set when either subscription has something
        self.conversation_id: str | None = None
        self.room: Subscription[RoomEvent] | None = None
        # Events the room's history gave back after this socket fell behind, not yet sent:
        # they go out a frame at a time, like any others (one frame of a thousand events
        # would hold the loop for 50-100 ms).
        self.missed: deque[Numbered[RoomEvent]] = deque()
        self.feed: Subscription[FeedEvent] | None = None
        self.req = 0
        self.since: str | None = None
        self.choice: str | None = None  # the conversation's model choice, for its picker
        self.writer: asyncio.Task[None] | None = None
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
        if frame.action == "sync" or frame.conversation_id != self.conversation_id:
            try:
                await self.sync(frame)
            except StoreError as exc:
                await self.send(self.fragments.notice(str(exc)))
                return
        try:
            if frame.action == "stop":
                if not self.chat.stop(frame.conversation_id):
                    # Nothing runs (it just ended): make sure this tab shows Send again.
                    await self.send(self.fragments.composer_actions(busy=False))
            elif frame.action == "send":
                user = await self.chat.send(
                    frame.conversation_id,
                    frame.message,
                    model=frame.model,
                    attachments=frame.attachments,
                )
                if user is not None:
                    label = self.answering.label_for(frame.model)
                    cleared = self.fragments.cleared_input(label, frame.model)
                    cleared += self.fragments.cleared_attachments()
                    await self.send(cleared + self.fragments.notice(None))
            elif frame.action == "regenerate":
                await self.chat.regenerate(
                    frame.conversation_id, target=frame.target, model=frame.model
                )
            elif frame.action == "edit" and frame.target is not None:
                await self.chat.edit(
                    frame.conversation_id, frame.target, frame.message, model=frame.model
                )
            elif frame.action == "version" and frame.target is not None:
                await self.chat.show_version(frame.conversation_id, frame.target, frame.step)
            elif frame.action == "delete" and frame.target is not None:
                await self.chat.delete_message(frame.conversation_id, frame.target)
            elif frame.action == "tool" and frame.target is not None:
                self.chat.decide(frame.conversation_id, frame.target, frame.call, frame.decision)
        except (ChatInputError, StoreError) as exc:
            await self.send(self.fragments.notice(str(exc)))

    async def sync(self, frame: ClientFrame) -> None:
        """Follow `frame`'s conversation, resuming the page where it is, or resending it."""
        await self._stop_writer()
        if frame.req is not None:
            self.req = frame.req
        self.conversation_id = frame.conversation_id
        self.since = frame.since
        self._leave()
        room = await self._join_room(frame.room)
        feed = await self._join_feed(frame.feed)
        await self.send(room)
        await self.send(feed)
        self.writer = asyncio.create_task(self._forward(), name="ws-writer")

    async def _join_room(self, position: Position) -> str:
        assert self.conversation_id is not None
        self.choice = await self.chat.remembered_choice(self.conversation_id)
        resumed = self.chat.resume(self.conversation_id, self.wake, position.epoch, position.seq)
        if resumed is not None:
            self.room, missed = resumed
            channel = self.room.channel
            if not missed:  # the page is up to date: it still needs to hear the join
                return self.fragments.resumed(
                    self.conversation_id, channel.epoch, position.seq, req=self.req
                )
            self.missed.extend(missed[MAX_EVENTS_PER_FRAME:])  # the writer sends the rest
            if self.missed:
                self.wake.set()
            first = missed[:MAX_EVENTS_PER_FRAME]
            await prerender_events(item.event for item in first)
            return self.fragments.joined_events(
                self.conversation_id, channel.epoch, first, req=self.req
            )
        self.room, snapshot = await self.chat.join(
            self.conversation_id, self.wake, since=self.since
        )
        await prerender_messages(snapshot.messages, snapshot.streams)
        return self.fragments.snapshot(snapshot, req=self.req)

    async def _join_feed(self, position: Position) -> str:
        feed = self.chat.feed
        if position.epoch == feed.epoch and (missed := feed.since(position.seq)) is not None:
            self.feed = feed.subscribe(self.wake)
            if not missed:
                return self.fragments.feed_resumed(feed.epoch, position.seq, req=self.req)
            return self.fragments.joined_feed_events(
                feed.epoch, missed, current=self.conversation_id, req=self.req, selected=self.choice
            )
        self.feed = feed.subscribe(self.wake)
        snapshot = await self.chat.feed_snapshot()
        self.feed.skip_to(snapshot.seq)  # what the snapshot shows already
        return self.fragments.feed_snapshot(
            snapshot, current=self.conversation_id, req=self.req, selected=self.choice
        )

    def _feed_frame(self, items: list[Any]) -> str:
        return self.fragments.feed_events(items, current=self.conversation_id, selected=self.choice)

    async def _forward(self) -> None:
        try:
            while True:
                await self.wake.wait()
                self.wake.clear()
                await self.send(await self._room_frame())
                await self.send(await self._feed_updates())
        except (ConnectionError, TimeoutError, StoreError) as exc:
            log.info("dropping a websocket that cannot be written to: %r", exc)
            await self.ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"please reconnect")

    async def _room_frame(self) -> str:
        room, conversation_id = self.room, self.conversation_id
        if room is None or conversation_id is None:
            return ""
        if room.overflowed:
            log.warning("a socket fell behind in %s; it catches up", conversation_id)
            missed = room.catch_up()
            if missed is None:
                self.chat.leave(room)
                self.missed.clear()
                self.room, snapshot = await self.chat.join(
                    conversation_id, self.wake, since=self.since
                )
                await prerender_messages(snapshot.messages, snapshot.streams)
                return self.fragments.snapshot(snapshot, req=self.req)
            self.missed.extend(missed)
        # What it missed comes first: the room's buffer holds what followed.
        count = min(len(self.missed), MAX_EVENTS_PER_FRAME)
        items = [self.missed.popleft() for _ in range(count)]
        items += room.take(MAX_EVENTS_PER_FRAME - len(items))
        if self.missed or room.pending():
            self.wake.set()  # more than one frame's worth: come back for the rest
        for item in items:
            if isinstance(item.event, ChoiceChanged):
                self.choice = item.event.choice  # a later picker keeps it
        await prerender_events(item.event for item in items)
        return self.fragments.events(items)

    async def _feed_updates(self) -> str:
        feed = self.feed
        if feed is None:
            return ""
        if feed.overflowed:
            missed = feed.catch_up()
            if missed is None:
                snapshot = await self.chat.feed_snapshot()
                feed.skip_to(snapshot.seq)
                return self.fragments.feed_snapshot(
                    snapshot, current=self.conversation_id, req=self.req, selected=self.choice
                )
            return self._feed_frame(missed)
        items = feed.take(MAX_EVENTS_PER_FRAME)
        if feed.pending():
            self.wake.set()
        return self._feed_frame(items)

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

    def _leave(self) -> None:
        self.missed.clear()
        if self.room is not None:
            self.chat.leave(self.room)
            self.room = None
        if self.feed is not None:
            self.feed.close()
            self.feed = None

    async def _stop_writer(self) -> None:
        if self.writer is not None:
            self.writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.writer
            self.writer = None

    async def close(self) -> None:
        """Stop forwarding events (a running reply keeps going)."""
        await self._stop_writer()
        self._leave()
