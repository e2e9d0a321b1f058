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

from htmxchat.bots import Bot, Turn
from htmxchat.events import (
    Event,
    MessageAdded,
    QueueItem,
    ReplyDelta,
    ReplyFinished,
    ReplyNotStarted,
    Resync,
)
from htmxchat.ids import new_id
from htmxchat.models import Message, Status
from htmxchat.reply import ReplyRunner, ReplyState, to_turns
from htmxchat.store import ChatStore

# Re-exported: the events are part of the chat core's interface.
__all__ = [
    "ChatInputError",
    "ChatService",
    "Event",
    "MessageAdded",
    "QueueItem",
    "ReplyDelta",
    "ReplyFinished",
    "ReplyNotStarted",
    "Resync",
    "Subscription",
    "to_turns",
]

log = logging.getLogger(__name__)

MAX_MESSAGE_CHARS = 100_000
SUBSCRIPTION_QUEUE_SIZE = 256


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
class _Live:
    """In-memory state of a conversation that has subscribers or a running reply."""

    subscribers: set[Subscription] = field(default_factory=set)
    reply: ReplyState | None = None
    starting: bool = False  # a send is between its first await and the reply task
    stop_pending: bool = False  # Stop arrived while starting: stop the reply once it exists


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
        self._saves: set[asyncio.Task[None]] = set()  # final saves of replies that never ran

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

    async def send(
        self, conversation_id: str, text: str, *, model: str | None = None
    ) -> Message | None:
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
        live = self._reserve(conversation_id)
        try:
            user = await self.store.add_message(
                Message(id=new_id(), conversation_id=conversation_id, role="user", content=text)
            )
            self._publish(conversation_id, MessageAdded(user))
            history = await self.store.messages(conversation_id)
            await self._start_reply(live, conversation_id, history, model)
        finally:
            self._release(live, conversation_id)
        return user

    async def regenerate(self, conversation_id: str, *, model: str | None = None) -> None:
        """Write a new answer to the last user message (the earlier answer stays visible)."""
        live = self._reserve(conversation_id)
        try:
            history = await self.store.messages(conversation_id)
            if not any(m.role == "user" for m in history):
                raise ChatInputError("There is nothing to regenerate yet: send a message first.")
            while history[-1].role != "user":
                history.pop()
            await self._start_reply(live, conversation_id, history, model)
        finally:
            self._release(live, conversation_id)

    def _reserve(self, conversation_id: str) -> _Live:
        live = self._live.setdefault(conversation_id, _Live())
        if live.reply is not None or live.starting:
            raise ChatInputError(
                "A reply is still being written. Wait for it to finish or press Stop."
            )
        live.starting = True  # refuse concurrent sends while we await the store
        return live

    def _release(self, live: _Live, conversation_id: str) -> None:
        live.starting = False
        live.stop_pending = False
        if live.reply is None:
            # Tabs that showed "busy" while this start was pending must learn it is off.
            self._publish(conversation_id, ReplyNotStarted())
        self._forget_if_idle(conversation_id)

    async def _start_reply(
        self, live: _Live, conversation_id: str, history: list[Message], model: str | None
    ) -> None:
        reply = await self.store.add_message(
            Message(
                id=new_id(),
                conversation_id=conversation_id,
                role="assistant",
                content="",
                status="streaming",
                bot=self.bot.label,
                model=model or self.bot.model,
            )
        )
        state = ReplyState(reply)
        live.reply = state
        self._publish(conversation_id, MessageAdded(reply))
        state.task = asyncio.create_task(
            self._run_reply(state, to_turns(history)), name=f"reply-{reply.id}"
        )
        state.task.add_done_callback(lambda _: self._reply_task_done(state))
        if live.stop_pending:
            self.stop(conversation_id)

    def stop(self, conversation_id: str) -> bool:
        """Stop the conversation's running reply, keeping its text. False if none runs."""
        live = self._live.get(conversation_id)
        if live is None:
            return False
        if live.reply is None:
            live.stop_pending = live.starting
            return live.starting
        self._cancel(live.reply, "stopped")
        return True

    def _cancel(self, reply: ReplyState, status: Status) -> None:
        # Only once, and never during the final save: that would lose the reply's end.
        if reply.task is not None and reply.end_status is None and not reply.saving:
            reply.end_status = status
            reply.task.cancel()

    async def shutdown(self) -> None:
        """Interrupt every running reply, saving what it has written so far."""
        tasks = []
        for live in self._live.values():
            if live.reply and live.reply.task:
                self._cancel(live.reply, "interrupted")
                tasks.append(live.reply.task)
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._saves:
            await asyncio.gather(*self._saves, return_exceptions=True)

    def _reply_task_done(self, state: ReplyState) -> None:
        """Runs however the reply task ended, even if it was cancelled before it started."""
        conversation_id = state.message.conversation_id
        if not state.finished:
            final = replace(
                state.snapshot(),
                status=state.end_status or "interrupted",
                finished_at=time.time(),
            )
            state.finished = True
            self._publish(conversation_id, ReplyFinished(final))
            save = asyncio.create_task(self.store.update_reply(final), name="save-unstarted")
            self._saves.add(save)
            save.add_done_callback(self._save_done)
        live = self._live.get(conversation_id)
        if live is not None and live.reply is state:
            live.reply = None
            self._forget_if_idle(conversation_id)

    def _save_done(self, task: asyncio.Task[None]) -> None:
        self._saves.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("could not save a stopped reply: %s", task.exception())

    async def _run_reply(self, state: ReplyState, history: list[Turn]) -> None:
        conversation_id = state.message.conversation_id
        runner = ReplyRunner(
            state,
            bot=self.bot,
            store=self.store,
            publish=lambda event: self._publish(conversation_id, event),
            clock=self._clock,
            coalesce_window=self.coalesce_window,
            checkpoint_interval=self.checkpoint_interval,
        )
        await runner.run(history)
