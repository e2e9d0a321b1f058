"""Assembling the tool calls of an OpenAI-compatible stream from their fragments.

`delta.tool_calls` entries carry an `index`, the call's `id` and function `name` (usually
only in a call's first fragment) and a piece of its `arguments` (a JSON text arriving in
pieces). Fragments are joined by index, not by "the last call seen" (interleaved parallel
calls would get each other's arguments), with the repairs real servers need
(docs/tools.md, "Tool calls in the stream"):

- a new id on an index already in use is a new call (Ollama streams index 0 for every call
  of a parallel batch; older builds send no index at all);
- two entries with the same index in one chunk are merged (vLLM with speculative decoding);
- a fragment with neither id nor name on an index never seen continues the last call (some
  providers move later argument fragments to another index).
"""

from __future__ import annotations

from dataclasses import dataclass

from htmxchat.tools.results import MAX_ARGUMENT_CHARS, MAX_CALLS_PER_ROUND


@dataclass(frozen=True, slots=True)
class StreamedCall:
    """A tool call as the model has sent it so far."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class ToolCallsPiece:
    """The tool calls of the reply so far, sent by the bot each time one of them grew."""

    calls: tuple[StreamedCall, ...]


class _Slot:
    __slots__ = ("arguments", "id", "index", "name", "size")

    def __init__(self, index: int | None, call_id: str) -> None:
        self.index = index
        self.id = call_id
        self.name = ""
        self.arguments: list[str] = []
        self.size = 0


class ToolCallAssembler:
    """Joins `delta.tool_calls` fragments into calls, within MAX_CALLS_PER_ROUND calls of
    MAX_ARGUMENT_CHARS each (the rest is dropped: cut arguments are not valid JSON, and the
    model is told so when the call is answered)."""

    def __init__(self) -> None:
        self._slots: list[_Slot] = []

    def feed(self, entries: object) -> bool:
        """Take one chunk's `tool_calls` list; True when a call changed."""
        changed = False
        for entry in entries if isinstance(entries, list) else ():
            if isinstance(entry, dict):
                changed |= self._take(entry)
        return changed

    def _take(self, entry: dict[str, object]) -> bool:
        index = entry.get("index")
        index = index if isinstance(index, int) and not isinstance(index, bool) else None
        call_id = entry.get("id") if isinstance(entry.get("id"), str) else ""
        function = entry.get("function")
        function = function if isinstance(function, dict) else {}
        name = function.get("name") if isinstance(function.get("name"), str) else ""
        arguments = function.get("arguments")
        if isinstance(arguments, dict):  # a few servers send the object itself
            import json

            arguments = json.dumps(arguments, ensure_ascii=False)
        arguments = arguments if isinstance(arguments, str) else ""
        slot = self._slot(index, str(call_id), str(name))
        if slot is None:
            return False
        changed = False
        if call_id and not slot.id:
            slot.id, changed = str(call_id), True
        if name and not slot.name:
            slot.name, changed = str(name), True
        room = MAX_ARGUMENT_CHARS - slot.size
        if arguments and room > 0:
            slot.arguments.append(arguments[:room])
            slot.size += min(len(arguments), room)
            changed = True
        return changed

    def _slot(self, index: int | None, call_id: str, name: str) -> _Slot | None:
        if call_id:
            for slot in self._slots:
                if slot.id == call_id:
                    return slot
        same_index = [s for s in self._slots if s.index == index] if index is not None else []
        if same_index:
            last = same_index[-1]
            if not call_id or not last.id:
                return last
            # A new id on an index in use: a new call (see the module's docstring).
        elif self._slots and not call_id and not name:
            return self._slots[-1]  # a fragment without anything to place it by
        if len(self._slots) >= MAX_CALLS_PER_ROUND:
            return None
        slot = _Slot(index, call_id)
        self._slots.append(slot)
        return slot

    @property
    def calls(self) -> tuple[StreamedCall, ...]:
        """Every call so far, in the order they began."""
        return tuple(StreamedCall(s.id, s.name, "".join(s.arguments)) for s in self._slots)
