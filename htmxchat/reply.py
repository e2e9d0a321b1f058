"""One reply being written: coalesces the bot's pieces into deltas, checkpoints, saves the end.

A `Reply` runs as a task owned by its conversation's room (`room.py`). Whatever ends it (the
bot finishing or failing, Stop, server shutdown, a failing save) goes through one path,
`_end`, which saves the final state and publishes `ReplyFinished` exactly once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Literal

from htmxchat.answering.bots import BotError, Piece, ReplyEnd, Turn
from htmxchat.answering.bots.tool_stream import ToolCallsPiece
from htmxchat.answering.plan import ReplyPlan, tool_turns
from htmxchat.attachments import CANNOT_SEE, cannot_see
from htmxchat.events import ReplyDelta, ReplyFinished, RoomEvent, StreamState, ToolCallsChanged
from htmxchat.limits import CHECKPOINT_BYTES_PER_SECOND, MAX_ANSWER_CHARS
from htmxchat.models import Message, Status
from htmxchat.store import ChatStore, StoreError
from htmxchat.tool_run import ToolRun
from htmxchat.tools import chat_tools

log = logging.getLogger(__name__)

TRUNCATED = (
    "The model stopped at its length limit, so this reply may be cut short. "
    "Ask it to continue, or raise the limit in the model server's settings."
)

TOO_LONG = (
    f"This answer reached {MAX_ANSWER_CHARS:,} characters, the most one answer may hold, "
    "so it was ended here. Ask the model to continue if you need more."
)

ROUND_LIMIT = (
    "The model asked for more tools after {rounds} rounds, the most this chat allows for one "
    "answer, so its last calls were not run. Regenerate, or raise Tool rounds in Chat settings."
)

NO_TOOLS = (
    "The model asked to use {names}, but this chat offers it no tools, so nothing was run. "
    "To let it, turn a tool server on in Chat settings (in the menu; one switched off on "
    "the Tools page is offered to no chat), then regenerate."
)

# waiting: the task has not begun streaming; streaming: reading the bot (a stop cancels
# it); ending: saving the final state (nothing may interrupt that); ended: published.
Phase = Literal["waiting", "streaming", "ending", "ended"]


class Reply:
    """The reply being written in a conversation, with what has been published of it."""

    def __init__(
        self,
        message: Message,
        *,
        plan: ReplyPlan,
        store: ChatStore,
        publish: Callable[[RoomEvent], object],
        clock: Callable[[], float],
        coalesce_window: float,
        checkpoint_interval: float,
    ) -> None:
        self.message = message
        self.plan = plan  # who writes it, with what (answering/plan.py)
        self._end_item = ReplyEnd()  # how the bot said the reply ended (usage, finish)
        self.store = store
        self.publish = publish
        self.clock = clock
        self.coalesce_window = coalesce_window
        self.checkpoint_interval = checkpoint_interval
        self.phase: Phase = "waiting"
        self.stop_status: Status | None = None  # why it was asked to stop, if it was
        self.task: asyncio.Task[Message] | None = None
        self._text: list[str] = []  # published text, delta by delta
        self._reasoning: list[str] = []
        self._pending_text: list[str] = []  # arrived, not yet published (coalescing)
        self._pending_reasoning: list[str] = []
        # The Markdown of the answer and of the reasoning, split into finished blocks as
        # they arrive, so each block is rendered once (docs/markdown.md).
        from htmxchat.markdown.stream import MarkdownStream  # loaded by the first answer

        self._markdown = MarkdownStream()
        self._reasoning_markdown = MarkdownStream()
        self._last_flush = float("-inf")
        self._flush_timer: asyncio.TimerHandle | None = None
        self._started = clock()
        self._first_piece_ms: float | None = None
        self._pieces = 0
        self._size = 0  # characters of answer and reasoning received (MAX_ANSWER_CHARS)
        # Tools the model called in a chat that offers none (never run; the answer says so).
        self._unoffered: tuple[str, ...] = ()
        # The tool calls across the reply's model requests (tool_run.py); None: no tools.
        self.tools = (
            ToolRun(plan.tools, changed=self._tools_changed, remember=self._always_allow)
            if plan.tools is not None
            else None
        )

    def snapshot(self) -> Message:
        """The reply as far as it has been published (with the notes on its tools as its
        error while it streams)."""
        run = self.tools
        return replace(
            self.message,
            content="".join(self._text),
            reasoning="".join(self._reasoning),
            tool_calls=tuple(run.calls) if run else (),
            error=" ".join(run.notes) or None if run else None,
        )

    def _tools_changed(self) -> None:
        """Publish the calls' state, after the text that came before it."""
        if self.tools is not None:
            self._flush()
            calls, notes = tuple(self.tools.calls), tuple(self.tools.notes)
            message = self.message
            self.publish(ToolCallsChanged(message.id, message.conversation_id, calls, notes))

    async def _always_allow(self, name: str) -> None:
        """Keep "always allow `name`" in the chat's settings, for its later replies too."""
        cid = self.message.conversation_id
        stored = await self.store.chat_settings(cid)
        own = chat_tools.from_stored(stored)
        if name not in own.always:
            own = replace(own, always=(*own.always, name))
            await self.store.save_chat_settings(cid, {**stored, **own.to_stored()})

    def decide(self, index: int, decision: str) -> bool:
        """The user's decision on tool call `index` (False: it is not waiting for one)."""
        return self.tools is not None and self.tools.decide(index, decision)

    def stream_state(self) -> StreamState:
        """The Markdown published so far, as operations building it from an empty body."""
        return StreamState(
            tuple(self._markdown.snapshot()), tuple(self._reasoning_markdown.snapshot())
        )

    def start(self, on_end: Callable[[Reply], None]) -> None:
        """Run the reply as a task; `on_end` is called once it has been saved and published."""

        async def run() -> Message:
            try:
                return await self._run(self.plan.turns)
            finally:
                on_end(self)

        self.task = asyncio.create_task(run(), name=f"reply-{self.message.id}")

    def request_stop(self, status: Status) -> bool:
        """Ask the reply to end with `status`, keeping its text. False once it is ending."""
        if self.phase in ("ending", "ended") or self.stop_status is not None:
            return self.phase not in ("ending", "ended")
        self.stop_status = status
        if self.phase == "streaming" and self.task is not None:
            self.task.cancel()
        return True

    async def _run(self, history: Sequence[Turn]) -> Message:
        status: Status = "complete"
        error: str | None = None
        if self.stop_status is None:  # a Stop may have come before the task ran
            status, error = await self._stream(history)
        return await self._end(self.stop_status or status, error)

    async def _stream(self, history: Sequence[Turn]) -> tuple[Status, str | None]:
        self.phase = "streaming"
        end = ReplyEnd()
        run = self.tools
        try:
            params = dict(self.plan.params)
            if run is not None and (specs := await run.prepare()):
                params["tools"] = specs
            number = 0
            while True:
                end, calls, too_long = await self._request(history, params, number)
                if too_long:
                    return "complete", TOO_LONG
                if run is None or not calls:
                    if run is not None:
                        run.answered("".join(self._text))
                    break
                if number >= run.offer.rounds:
                    run.stop()
                    return "complete", ROUND_LIMIT.format(rounds=run.offer.rounds)
                await run.settle(number)
                number += 1
                if "".join(self._text).strip():  # the next round's text starts a new block
                    self._add(Piece("\n\n"))
                # Sent again: the question, then this answer's rounds so far.
                history = [*self.plan.turns, *tool_turns(self._current("streaming", None))]
        except asyncio.CancelledError:
            if self.stop_status is None:
                raise  # not our own stop: someone is cancelling the whole task
            current = asyncio.current_task()
            if current is not None:
                current.uncancel()
            return self.stop_status, None
        except BotError as exc:
            if any(turn.images for turn in history) and cannot_see(str(exc)):
                return "error", CANNOT_SEE  # plain words instead of the server's error
            return "error", run.refused(str(exc)) if run is not None else str(exc)
        except Exception:
            log.exception("bot %s failed", self.plan.label)
            return "error", "The bot failed unexpectedly; the server log has the details."
        finally:
            self.phase = "ending"
        if self._unoffered:
            return "complete", _no_tools(self._unoffered)
        return "complete", TRUNCATED if end.truncated else None

    async def _request(
        self, history: Sequence[Turn], params: dict[str, object], number: int
    ) -> tuple[ReplyEnd, bool, bool]:
        """One model request of the reply: its text streamed and checkpointed, its tool
        calls shown as they grow. (How it ended, whether it called tools, whether the
        answer reached its size limit.)"""
        end = ReplyEnd()
        calls = False
        last_checkpoint = self.clock()
        items = self.plan.bot.stream(history, model=self.message.model, params=params)
        async for item in items:
            if isinstance(item, ReplyEnd):
                end = self._end_item = item
                continue
            if isinstance(item, ToolCallsPiece):
                if self.tools is not None and item.calls:
                    self._flush()
                    self.tools.streamed(number, len("".join(self._text)), item.calls)
                    calls = True
                elif item.calls:  # a chat without tools: nothing runs, the answer says why
                    named = dict.fromkeys(c.name for c in item.calls if c.name)
                    self._unoffered = tuple(named) or ("a tool",)
                continue
            if not self._add(item):
                continue
            if not self._pending_text and not self._pending_reasoning:
                # It was flushed: the flush parsed the open Markdown block (up to ~16 ms),
                # so let the loop run before the next piece. A server's pieces come many
                # to one read; taken back to back, their flushes would add up.
                await asyncio.sleep(0)
            if self._size >= MAX_ANSWER_CHARS:
                await items.aclose()  # at once: drops the connection, the server stops
                return end, calls, True
            if self.clock() - last_checkpoint >= self._checkpoint_every():
                last_checkpoint = self.clock()
                await self._checkpoint()
        return end, calls, False

    def _checkpoint_every(self) -> float:
        """Seconds between checkpoints: the interval, or longer once the reply is big, so
        rewriting it (and its search index) stays under CHECKPOINT_BYTES_PER_SECOND."""
        return max(self.checkpoint_interval, self._size / CHECKPOINT_BYTES_PER_SECOND)

    def _add(self, piece: Piece) -> bool:
        if not piece.text and not piece.reasoning:
            return False
        room = MAX_ANSWER_CHARS - self._size
        if len(piece.text) + len(piece.reasoning) > room:  # keep what fits, end there
            piece = Piece(piece.text[:room], piece.reasoning[: max(0, room - len(piece.text))])
        self._size += len(piece.text) + len(piece.reasoning)
        now = self.clock()
        if self._first_piece_ms is None:
            self._first_piece_ms = (now - self._started) * 1000
        self._pieces += 1
        self._pending_text.append(piece.text)
        self._pending_reasoning.append(piece.reasoning)
        # Coalescing: the first piece goes out at once, later ones at most once per window.
        if now - self._last_flush >= self.coalesce_window:
            self._flush()
        elif self._flush_timer is None:
            delay = self._last_flush + self.coalesce_window - now
            self._flush_timer = asyncio.get_running_loop().call_later(delay, self._flush)
        return True

    def _flush(self) -> None:
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        self._last_flush = self.clock()
        text, reasoning = "".join(self._pending_text), "".join(self._pending_reasoning)
        self._pending_text.clear()
        self._pending_reasoning.clear()
        if not text and not reasoning:
            return
        self._text.append(text)
        self._reasoning.append(reasoning)
        ops = self._markdown.feed(text) if text else []
        reasoning_ops = self._reasoning_markdown.feed(reasoning) if reasoning else []
        self.publish(ReplyDelta(self.message.id, text, reasoning, tuple(ops), tuple(reasoning_ops)))

    async def _checkpoint(self) -> None:
        try:
            await self.store.update_reply(self._current("streaming", None))
        except StoreError as exc:
            # Keep streaming: the next checkpoint or the final save tries again, and a
            # failed final save is reported in the message itself.
            log.warning("checkpoint of reply %s failed: %s", self.message.id, exc)

    def _current(self, status: Status, error: str | None) -> Message:
        notes = self.tools.notes if self.tools is not None else []
        return replace(
            self.snapshot(),
            status=status,
            error=" ".join([*notes, error] if error else notes) or None,
            finished_at=time.time() if status != "streaming" else None,
            first_piece_ms=self._first_piece_ms,
            piece_count=self._pieces,
            prompt_tokens=self._end_item.prompt_tokens,
            completion_tokens=self._end_item.completion_tokens,
        )

    async def _end(self, status: Status, error: str | None) -> Message:
        """The one way a reply ends: publish what is pending, save, tell subscribers."""
        self.phase = "ending"
        if self.tools is not None:
            self.tools.stop()  # calls that had not returned (a Stop, a failure) stay so
        self._flush()
        # Commit what is left of the Markdown, so the page already shows the final render
        # when the finished message replaces it: nothing moves as it lands.
        ops, reasoning_ops = self._markdown.finish(), self._reasoning_markdown.finish()
        self.publish(ReplyDelta(self.message.id, "", "", tuple(ops), tuple(reasoning_ops)))
        final = self._current(status, error)
        try:
            await self.store.update_reply(final)
        except StoreError as exc:
            final = replace(final, error=f"{error + ' ' if error else ''}{exc}")
        self.phase = "ended"
        self.publish(ReplyFinished(final))
        return final


def _no_tools(names: Sequence[str]) -> str:
    """NO_TOOLS naming what the model called (a few names, each cut short: they are the
    model's words)."""
    shown = [name if len(name) <= 60 else name[:59] + "…" for name in names[:3]]
    more = f" and {len(names) - 3} more" if len(names) > 3 else ""
    return NO_TOOLS.format(names=", ".join(shown) + more)
