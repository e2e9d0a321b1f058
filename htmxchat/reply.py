"""One reply being written: coalesces the bot's pieces into deltas, checkpoints, saves the end.

The chat core (`chat.py`) owns the task that runs a `ReplyRunner`; the runner reports what
happens through `publish` and never touches sockets or HTML.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from htmxchat.bots import Bot, BotError, Turn
from htmxchat.events import Event, ReplyDelta, ReplyFinished
from htmxchat.models import Message, Status
from htmxchat.store import ChatStore, StoreError

log = logging.getLogger(__name__)


@dataclass(slots=True)
class ReplyState:
    """The reply being written in a conversation, with what has been published of it."""

    message: Message
    text: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    task: asyncio.Task[None] | None = None
    end_status: Status | None = None  # set by stop()/shutdown() before cancelling
    saving: bool = False  # the stream is over and the final state is being saved: no cancel
    finished: bool = False  # ReplyFinished has been published

    def snapshot(self) -> Message:
        return replace(self.message, content="".join(self.text), reasoning="".join(self.reasoning))


class ReplyRunner:
    """Streams one reply: coalesces pieces into deltas, checkpoints, saves the end state."""

    def __init__(
        self,
        state: ReplyState,
        *,
        bot: Bot,
        store: ChatStore,
        publish: Callable[[Event], None],
        clock: Callable[[], float],
        coalesce_window: float,
        checkpoint_interval: float,
    ) -> None:
        self.state = state
        self.bot = bot
        self.store = store
        self.publish = publish
        self.clock = clock
        self.coalesce_window = coalesce_window
        self.checkpoint_interval = checkpoint_interval
        self.pending_text: list[str] = []
        self.pending_reasoning: list[str] = []
        self.last_flush = float("-inf")
        self.flush_timer: asyncio.TimerHandle | None = None
        self.started = clock()
        self.first_piece_ms: float | None = None
        self.pieces = 0

    async def run(self, history: list[Turn]) -> None:
        state = self.state
        status: Status = "complete"
        error: str | None = None
        last_checkpoint = self.started
        stream: object = None
        try:
            stream = self.bot.stream(history, model=state.message.model)
            async for piece in stream:
                if not piece.text and not piece.reasoning:
                    continue
                now = self.clock()
                if self.first_piece_ms is None:
                    self.first_piece_ms = (now - self.started) * 1000
                self.pieces += 1
                self._add(piece.text, piece.reasoning, now)
                if now - last_checkpoint >= self.checkpoint_interval:
                    last_checkpoint = now
                    try:
                        await self._save("streaming", None)
                    except StoreError as exc:
                        # Keep streaming: the next checkpoint or the final save tries again,
                        # and a failed final save is reported in the message itself.
                        log.warning("checkpoint of reply %s failed: %s", state.message.id, exc)
        except asyncio.CancelledError:
            status = state.end_status or "interrupted"
            await self._finish(status, None)
            raise
        except BotError as exc:
            status, error = "error", str(exc)
        except Exception:
            log.exception("bot %s failed", self.bot.label)
            status = "error"
            error = "The bot failed unexpectedly; the server log has the details."
        if status == "complete" and getattr(stream, "truncated", False):
            error = (
                "The model stopped at its length limit, so this reply may be cut short. "
                "Ask it to continue, or raise the limit in the model server's settings."
            )
        await self._finish(status, error)

    def _add(self, text: str, reasoning: str, now: float) -> None:
        self.pending_text.append(text)
        self.pending_reasoning.append(reasoning)
        # Coalescing: the first piece goes out at once, later ones at most once per window.
        if now - self.last_flush >= self.coalesce_window:
            self._flush()
        elif self.flush_timer is None:
            delay = self.last_flush + self.coalesce_window - now
            self.flush_timer = asyncio.get_running_loop().call_later(delay, self._flush)

    def _flush(self) -> None:
        if self.flush_timer is not None:
            self.flush_timer.cancel()
            self.flush_timer = None
        self.last_flush = self.clock()
        text, reasoning = "".join(self.pending_text), "".join(self.pending_reasoning)
        self.pending_text.clear()
        self.pending_reasoning.clear()
        if not text and not reasoning:
            return
        self.state.text.append(text)
        self.state.reasoning.append(reasoning)
        self.publish(ReplyDelta(self.state.message.id, text=text, reasoning=reasoning))

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
        await self.store.update_reply(message)
        return message

    async def _finish(self, status: Status, error: str | None) -> None:
        self.state.saving = True
        self._flush()
        try:
            final = await self._save(status, error)
        except StoreError as exc:
            final = self._current(status, f"{error + ' ' if error else ''}{exc}")
        self.state.finished = True
        self.publish(ReplyFinished(final))


def to_turns(messages: list[Message]) -> list[Turn]:
    """The conversation as a bot sees it.

    Empty replies (failed before any text) are left out, and of several answers to the same
    question (regenerated) only the latest is kept, so roles keep alternating as chat
    templates of local models require.
    """
    turns: list[Turn] = []
    for m in messages:
        if m.role == "assistant" and not m.content:
            continue
        if m.role == "assistant" and turns and turns[-1].role == "assistant":
            turns[-1] = Turn(m.role, m.content)
        else:
            turns.append(Turn(m.role, m.content))
    return turns
