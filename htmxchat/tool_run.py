"""The tool calls of one reply: shown as they stream, asked of the user, run, answered.

Part of the chat core (no HTTP or HTML): the reply (`reply.py`) hands each model request's
calls here, and goes on with the model once every call has its answer. A call runs only
after the user allowed it (or allowed that tool "always" in this conversation); an invalid
call is answered with what went wrong, without asking (docs/tools.md, "Asking").
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Coroutine
from dataclasses import replace
from typing import Any

from htmxchat.answering.bots.tool_stream import StreamedCall
from htmxchat.tools.offer import ToolOffer, functions, offered_names
from htmxchat.tools.results import Approval, ToolCall, ToolResult, failed

log = logging.getLogger(__name__)

DECISIONS: dict[str, Approval] = {"allow": "allowed", "always": "always", "deny": "denied"}
REFUSED = (
    "If this model server does not take tool calls, turn this chat's tools off in Chat "
    "settings, or pick a server that does."
)
AS_TEXT = (
    "The model wrote a tool call as text instead of making it, so nothing ran: its server may "
    "not have tool calls turned on (llama.cpp needs --jinja and a chat template with tools)."
)


class ToolRun:
    """The calls of one reply, across its rounds, and the user's decisions on them."""

    def __init__(
        self,
        offer: ToolOffer,
        *,
        changed: Callable[[], None],
        remember: Callable[[str], Coroutine[Any, Any, None]],
    ) -> None:
        self.offer = offer
        self.calls: list[ToolCall] = []
        self.notes: list[str] = list(offer.notes)
        self.specs: list[dict[str, Any]] = []
        self._changed = changed  # publish the calls' new state
        self._remember = remember  # keep an "always allow" in the chat's settings
        self._always = set(offer.always)
        self._waiting: dict[int, asyncio.Future[Approval]] = {}
        self._saving: set[asyncio.Task[None]] = set()  # "always allow"s being kept

    async def prepare(self) -> list[dict[str, Any]]:
        """The `tools` to send (servers started as needed); a note for each that cannot."""
        if not self.offer.servers:
            return []
        toolbox = self.offer.toolbox
        starting = [name for name in self.offer.servers if not toolbox.running(name)]
        note = f"Starting {', '.join(starting)}…"  # shown while it takes (npx may download)
        if starting:
            self.notes.append(note)
            self._changed()
        try:
            found, problems = await toolbox.tools(self.offer.servers)
        finally:
            if starting:
                self.notes.remove(note)
        for name, why in problems.items():
            self.notes.append(f'The tool server "{name}" cannot run: {why}')
        self.specs, left_out = functions(found)
        self.notes.extend(left_out)
        if problems or starting:
            self._changed()
        return self.specs

    def streamed(self, number: int, at: int, calls: tuple[StreamedCall, ...]) -> None:
        """Show round `number`'s calls as far as the model has sent them."""
        earlier = [c for c in self.calls if c.round != number]
        used = {c.id for c in earlier}
        current = []
        for i, call in enumerate(calls):
            call_id = call.id or f"call_{number}_{i}"
            if call_id in used:  # ids must be unique in the conversation sent back
                call_id = f"{call_id}_{number}_{i}"
            used.add(call_id)
            current.append(ToolCall(call_id, call.name, call.arguments, number, at))
        self.calls = earlier + current
        self._changed()

    async def settle(self, number: int) -> None:
        """Give every call of round `number` its answer: refused if invalid, else asked
        (unless always allowed), then run when allowed. Cancelled by Stop."""
        indices = [i for i, c in enumerate(self.calls) if c.round == number]
        await asyncio.gather(*(self._settle(i) for i in indices))

    async def _settle(self, index: int) -> None:
        call = self.calls[index]
        problem = self._problem(call)
        if problem is not None:
            self._set(index, state="done", result=failed(problem))
            return
        if call.name in self._always:
            approval: Approval = "auto"
        else:
            future: asyncio.Future[Approval] = asyncio.get_running_loop().create_future()
            self._waiting[index] = future
            self._set(index, state="asking")
            try:
                approval = await future
            finally:
                self._waiting.pop(index, None)
        if approval == "denied":
            self._set(index, state="denied", approval=approval)
            return
        self._set(index, state="running", approval=approval)
        self._set(index, state="done", result=await self._execute(self.calls[index]))

    def _problem(self, call: ToolCall) -> str | None:
        """Why a call cannot run as sent, in words the model can act on."""
        if call.name not in offered_names(self.specs):
            return f'There is no tool called "{call.name}". Use one of the tools offered.'
        try:
            arguments = json.loads(call.arguments or "{}")
        except (ValueError, RecursionError):
            return "The arguments were not valid JSON; send them as one JSON object."
        if not isinstance(arguments, dict):
            return "The arguments must be a JSON object."
        return None

    async def _execute(self, call: ToolCall) -> ToolResult:
        arguments = json.loads(call.arguments or "{}")
        try:
            async with asyncio.timeout(self.offer.timeout):
                return await self.offer.toolbox.call(call.server, call.tool, arguments)
        except TimeoutError:
            return failed(
                f"The tool did not finish within {self.offer.timeout:g} seconds, so it was "
                "given up."
            )

    def decide(self, index: int, decision: str) -> bool:
        """The user's Allow / Deny / Always allow for call `index`; False when it is not
        waiting for one (decided already, in another tab)."""
        approval = DECISIONS.get(decision)
        future = self._waiting.get(index)
        if approval is None or future is None or future.done():
            return False
        future.set_result(approval)
        if approval == "always":
            name = self.calls[index].name
            self._always.add(name)
            for other, waiting in list(self._waiting.items()):
                if self.calls[other].name == name and not waiting.done():
                    waiting.set_result("auto")
            task = asyncio.get_running_loop().create_task(self._remember(name))
            self._saving.add(task)  # held until done: the loop keeps only weak references
            task.add_done_callback(self._saving.discard)
            task.add_done_callback(_log_failure)
        return True

    def answered(self, text: str) -> None:
        """The reply ended without calling a tool: if its text names an offered tool, the
        model probably wrote the call as text (a server without tool support); say so."""
        names = offered_names(self.specs)
        if not self.calls and any(name in text for name in names):
            self.notes.append(AS_TEXT)

    def refused(self, error: str) -> str:
        """A model request with tools failed before anything came: the error, and what to
        do if the server does not take tools."""
        return f"{error} {REFUSED}" if self.specs and not self.calls else error

    def stop(self) -> None:
        """Mark every call that had not returned as stopped (Stop, shutdown, failure)."""
        for i, call in enumerate(self.calls):
            if call.state in ("streaming", "asking", "running"):
                self.calls[i] = replace(call, state="stopped")

    def _set(self, index: int, **changes: Any) -> None:
        self.calls[index] = replace(self.calls[index], **changes)
        self._changed()


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("could not keep an 'always allow': %s", task.exception())
