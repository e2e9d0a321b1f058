"""The OpenAI wire format: a turn as the API's message, and what each streamed event brings."""

from __future__ import annotations

from typing import Any

from htmxchat.answering.bots import BotError, Piece, ReplyEnd, Turn
from htmxchat.answering.bots import openai_errors as msg
from htmxchat.answering.bots.sse import NestingError, SSEEvent, loads_json
from htmxchat.answering.bots.tool_stream import ToolCallAssembler, ToolCallsPiece


class StreamOutcome:
    """How the stream is going: whether it is done, its finish reason and usage."""

    __slots__ = ("calls", "completion_tokens", "done", "finish_reason", "prompt_tokens")

    def __init__(self) -> None:
        self.calls = ToolCallAssembler()  # the reply's tool calls, from their fragments
        self.finish_reason: str | None = None
        self.prompt_tokens: int | None = None
        self.completion_tokens: int | None = None
        self.done = False

    def end(self) -> ReplyEnd:
        return ReplyEnd(self.finish_reason, self.prompt_tokens, self.completion_tokens)


def read_usage(chunk: dict[str, Any], outcome: StreamOutcome) -> None:
    """Token counts from a chunk's `usage` (servers send it with the last chunk, if asked)."""
    usage = chunk.get("usage")
    if not isinstance(usage, dict):
        return
    for key in ("prompt_tokens", "completion_tokens"):
        value = usage.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            setattr(outcome, key, value)


def api_message(turn: Turn) -> dict[str, Any]:
    """One turn for the API: plain text, or content parts when it carries images; an
    answer's tool calls, and a tool's result for the call it answers."""
    if turn.role == "tool":
        return {"role": "tool", "tool_call_id": turn.tool_call_id or "", "content": turn.content}
    if turn.tool_calls:
        calls = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in turn.tool_calls
        ]
        return {"role": turn.role, "content": turn.content or None, "tool_calls": calls}
    if not turn.images:
        return {"role": turn.role, "content": turn.content}
    parts: list[dict[str, Any]] = [{"type": "text", "text": turn.content}] if turn.content else []
    parts += [{"type": "image_url", "image_url": {"url": url}} for url in turn.images]
    return {"role": turn.role, "content": parts}


def piece_from_event(
    event: SSEEvent, outcome: StreamOutcome, base: str, api_key: str | None, fix: msg.Fix
) -> Piece | ToolCallsPiece | None:
    """What one server-sent event brings: text and/or reasoning, grown tool calls, or
    nothing (usage, a finish reason, `[DONE]`, another choice); `BotError` saying why for
    an error event, a malformed or too deeply nested chunk."""
    if event.event == "error":
        raise BotError(msg.reported(msg.snippet(event.data.encode(), api_key)))
    if event.data.strip() == "[DONE]":
        outcome.done = True
        return None
    try:
        chunk = loads_json(event.data)
    except NestingError:
        raise BotError(msg.nested(base, fix)) from None
    except ValueError:
        chunk = None
    if not isinstance(chunk, dict):
        raise BotError(msg.malformed(base, fix))
    if chunk.get("error"):
        raise BotError(msg.reported(msg.clean(msg.error_message(chunk), api_key)))
    read_usage(chunk, outcome)
    choices = chunk.get("choices")
    # Empty choices: the usage chunk. Only choice 0 is ours (we never ask for n > 1).
    choice = choices[0] if isinstance(choices, list) and choices else None
    if not isinstance(choice, dict) or choice.get("index", 0) != 0:
        return None
    if isinstance(choice.get("finish_reason"), str):
        outcome.finish_reason = choice["finish_reason"]
    delta = choice.get("delta")
    if not isinstance(delta, dict):
        return None
    grew = bool(delta.get("tool_calls")) and outcome.calls.feed(delta["tool_calls"])
    if grew and not delta.get("content"):  # text of the same chunk still comes first
        return ToolCallsPiece(outcome.calls.calls)
    text = delta.get("content")
    # llama.cpp/DeepSeek say reasoning_content, Ollama and newer vLLM say reasoning;
    # some send both with the same text, so take one.
    reasoning = delta.get("reasoning_content") or delta.get("reasoning")
    text = text if isinstance(text, str) else ""
    reasoning = reasoning if isinstance(reasoning, str) else ""
    return Piece(text, reasoning) if text or reasoning else None
