"""The chat core: turns user input into stored messages and streamed reply events.

It knows nothing of aiohttp or HTML. A reply runs as a task owned by its conversation, not
by a socket: sockets subscribe to a conversation and all receive the same events; closing a
tab does not stop a reply, Stop and server shutdown do (DESIGN.md).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from htmxchat.bots import Bot, BotError, Turn
from htmxchat.ids import new_id
from htmxchat.models import Message, Status
from htmxchat.store import ChatStore, StoreError

log = logging.getLogger(__name__)

MAX_MESSAGE_CHARS = 100_000
SUBSCRIPTION_QUEUE_SIZE = 256


@dataclass(frozen=True, slots=True)
class MessageAdded:
    """A message joined the conversation (a user message, or a reply that just started)."""

    message: Message


@dataclass(frozen=True, slots=True)
class ReplyDelta:
    """New text for a streaming reply: only what arrived since the previous delta."""

    message_id: str
    text: str = ""
    reasoning: str = ""


@dataclass(frozen=True, slots=True)
class ReplyFinished:
    """A reply ended (complete, stopped, interrupted or failed); `message` is its final state."""

    message: Message


@dataclass(frozen=True, slots=True)
class Resync:
    """The subscriber fell too far behind; its queue was dropped and it must re-sync."""


Event = MessageAdded | ReplyDelta | ReplyFinished
QueueItem = Event | Resync


class ChatInputError(Exception):
    """The user's input was refused; the message says why and what to do."""


class Subscription:
    """One socket's view of one conversation: a bounded queue of events."""

    def __init__(self, conversation_id: str, live_reply: Message | None) -> None:
        self.conversation_id = conversation_id
        # The streaming reply as it was when the subscription started, so the subscriber
        # can show the text so far and then apply exactly the deltas queued after it.
        self.live_reply = live_reply
        self.queue: asyncio.Queue[QueueItem] = asyncio.Queue(SUBSCRIPTION_QUEUE_SIZE)

    def push(self, event: Event) -> bool:
        """Queue an event; on overflow drop the backlog and ask for a re-sync (False)."""
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait(Resync())
            return False
        return True


@dataclass(slots=True)
class _Reply:
    """The reply being written in a conversation, with what has been published of it."""

    message: Message
    text: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    task: asyncio.Task[None] | None = None
    end_status: Status | None = None  # set by stop()/shutdown() before cancelling

    def snapshot(self) -> Message:
        return replace(self.message, content="".join(self.text), reasoning="".join(self.reasoning))


@dataclass(slots=True)
class _Live:
    """In-memory state of a conversation that has subscribers or a running reply."""

    subscribers: set[Subscription] = field(default_factory=set)
    reply: _Reply | None = None
    starting: bool = False  # a send is between its first await and the reply task


class ChatService:
    """Accepts messages, runs replies and fans their events out to subscribers."""

    def __init__(
        self,
        store: ChatStore,
        bot: Bot,
        *,
        coalesce_window: float = 0.04,
        checkpoint_interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.bot = bot
        self.coalesce_window = coalesce_window
        self.checkpoint_interval = checkpoint_interval
        self._clock = clock
        self._live: dict[str, _Live] = {}

    # -- subscriptions ---------------------------------------------------------------

    def subscribe(self, conversation_id: str) -> Subscription:
        """Start receiving the conversation's events (snapshot of any live reply included)."""
        live = self._live.setdefault(conversation_id, _Live())
        snapshot = live.reply.snapshot() if live.reply else None
        subscription = Subscription(conversation_id, snapshot)
        live.subscribers.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """Stop receiving events; forget the conversation when nothing else uses it."""
        live = self._live.get(subscription.conversation_id)
        if live is None:
            return
        live.subscribers.discard(subscription)
        self._forget_if_idle(subscription.conversation_id)

    def _forget_if_idle(self, conversation_id: str) -> None:
        live = self._live.get(conversation_id)
        if live and not live.subscribers and live.reply is None and not live.starting:
            del self._live[conversation_id]

    def _publish(self, conversation_id: str, event: Event) -> None:
        live = self._live.get(conversation_id)
        if live is None:
            return
        for subscription in list(live.subscribers):
            if not subscription.push(event):
                log.warning("a subscriber of %s fell behind; it will re-sync", conversation_id)
                live.subscribers.discard(subscription)

    # -- reading ---------------------------------------------------------------------

    def is_busy(self, conversation_id: str) -> bool:
        """True while a reply is being written (or about to be) in the conversation."""
        live = self._live.get(conversation_id)
        return bool(live and (live.reply is not None or live.starting))

    async def transcript(
        self,
        conversation_id: str,
        *,
        limit: int | None = None,
        live_reply: Message | None = None,
        since: str | None = None,
    ) -> list[Message]:
        """Stored messages with the streaming reply shown as far as it has been published.

        Pass a subscription's `live_reply` to get the state that matches its event queue;
        `since` keeps older messages in the window (see `ChatStore.messages`).
        """
        messages = await self.store.messages(conversation_id, limit=limit, since=since)
        if live_reply is None:
            live = self._live.get(conversation_id)
            live_reply = live.reply.snapshot() if live and live.reply else None
        if live_reply is None:
            return messages
        return [live_reply if m.id == live_reply.id else m for m in messages]

    # -- writing ---------------------------------------------------------------------

    async def send(self, conversation_id: str, text: str) -> Message | None:
        """Store the user's message, then start the reply. None when `text` is blank.

        Raises ChatInputError when the message is too long or a reply is still running.
        """
        if not text.strip():
            return None
        if len(text) > MAX_MESSAGE_CHARS:
            raise ChatInputError(
                f"Your message is {len(text):,} characters long; the limit is "
                f"{MAX_MESSAGE_CHARS:,}. Shorten it or split it into several messages."
            )
        live = self._live.setdefault(conversation_id, _Live())
        if live.reply is not None or live.starting:
            raise ChatInputError(
                "A reply is still being written. Wait for it to finish or press Stop."
            )
        live.starting = True  # refuse concurrent sends while we await the store
        try:
            user = await self.store.add_message(
                Message(id=new_id(), conversation_id=conversation_id, role="user", content=text)
            )
            self._publish(conversation_id, MessageAdded(user))
            history = await self.store.messages(conversation_id)
            reply = await self.store.add_message(
                Message(
                    id=new_id(),
                    conversation_id=conversation_id,
                    role="assistant",
                    content="",
                    status="streaming",
                    bot=self.bot.label,
                    model=self.bot.model,
                )
            )
        except StoreError:
            live.starting = False
            self._forget_if_idle(conversation_id)
            raise
        state = _Reply(reply)
        live.reply = state
        live.starting = False
        self._publish(conversation_id, MessageAdded(reply))
        turns = [Turn(m.role, m.content) for m in history if m.content or m.role == "user"]
        state.task = asyncio.create_task(self._run_reply(state, turns), name=f"reply-{reply.id}")
        return user

    def stop(self, conversation_id: str) -> bool:
        """Stop the conversation's running reply, keeping its text. False if none runs."""
        live = self._live.get(conversation_id)
        if live is None or live.reply is None or live.reply.task is None:
            return False
        if live.reply.end_status is None:
            live.reply.end_status = "stopped"
            live.reply.task.cancel()
        return True

    async def shutdown(self) -> None:
        """Interrupt every running reply, saving what it has written so far."""
        tasks = []
        for live in self._live.values():
            if live.reply and live.reply.task:
                if live.reply.end_status is None:
                    live.reply.end_status = "interrupted"
                    live.reply.task.cancel()
                tasks.append(live.reply.task)
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _run_reply(self, state: _Reply, history: list[Turn]) -> None:
        runner = _ReplyRunner(self, state)
        try:
            await runner.run(history)
        finally:
            live = self._live.get(state.message.conversation_id)
            if live is not None and live.reply is state:
                live.reply = None
                self._forget_if_idle(state.message.conversation_id)


class _ReplyRunner:
    """Streams one reply: coalesces pieces into deltas, checkpoints, saves the end state."""

    def __init__(self, service: ChatService, state: _Reply) -> None:
        self.service = service
        self.state = state
        self.pending_text: list[str] = []
        self.pending_reasoning: list[str] = []
        self.last_flush = float("-inf")
        self.flush_timer: asyncio.TimerHandle | None = None
        self.started = service._clock()
        self.first_piece_ms: float | None = None
        self.pieces = 0

    async def run(self, history: list[Turn]) -> None:
        service, state = self.service, self.state
        status: Status = "complete"
        error: str | None = None
        last_checkpoint = self.started
        try:
            async for piece in service.bot.stream(history, model=state.message.model):
                if not piece.text and not piece.reasoning:
                    continue
                now = service._clock()
                if self.first_piece_ms is None:
                    self.first_piece_ms = (now - self.started) * 1000
                self.pieces += 1
                self._add(piece.text, piece.reasoning, now)
                if now - last_checkpoint >= service.checkpoint_interval:
                    last_checkpoint = now
                    await self._save("streaming", None)
        except asyncio.CancelledError:
            status = state.end_status or "interrupted"
            await self._finish(status, None)
            raise
        except BotError as exc:
            status, error = "error", str(exc)
        except Exception:
            log.exception("bot %s failed", service.bot.label)
            status = "error"
            error = "The bot failed unexpectedly; the server log has the details."
        await self._finish(status, error)

    def _add(self, text: str, reasoning: str, now: float) -> None:
        self.pending_text.append(text)
        self.pending_reasoning.append(reasoning)
        # Coalescing: the first piece goes out at once, later ones at most once per window.
        if now - self.last_flush >= self.service.coalesce_window:
            self._flush()
        elif self.flush_timer is None:
            delay = self.last_flush + self.service.coalesce_window - now
            self.flush_timer = asyncio.get_running_loop().call_later(delay, self._flush)

    def _flush(self) -> None:
        if self.flush_timer is not None:
            self.flush_timer.cancel()
            self.flush_timer = None
        self.last_flush = self.service._clock()
        text, reasoning = "".join(self.pending_text), "".join(self.pending_reasoning)
        self.pending_text.clear()
        self.pending_reasoning.clear()
        if not text and not reasoning:
            return
        self.state.text.append(text)
        self.state.reasoning.append(reasoning)
        self.service._publish(
            self.state.message.conversation_id,
            ReplyDelta(self.state.message.id, text=text, reasoning=reasoning),
        )

    def _current(self, status: Status, error: str | None) -> Message:
        finished = time.time() if status != "streaming" else None
        return replace(
            self.state.snapshot(),
            status=status,
            error=error,
            finished_at=finished,
            first_piece_ms=self.first_piece_ms,
            piece_count=self.pieces,
        )

    async def _save(self, status: Status, error: str | None) -> Message:
        message = self._current(status, error)
        await self.service.store.update_reply(message)
        return message

    async def _finish(self, status: Status, error: str | None) -> None:
        self._flush()
        try:
            final = await self._save(status, error)
        except StoreError as exc:
            final = self._current(status, f"{error + ' ' if error else ''}{exc}")
        self.service._publish(self.state.message.conversation_id, ReplyFinished(final))
