"""OpenAI-compatible chat backend (Ollama, llama.cpp, LM Studio, vLLM, OpenAI) on aiohttp."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Mapping, Sequence
from typing import Any

import aiohttp
from yarl import URL

from htmxchat.answering.bots import (
    BotError,
    Capabilities,
    Item,
    Piece,
    ReplyEnd,
    ServerInfo,
    ServerLoading,
    Turn,
)
from htmxchat.answering.bots import openai_errors as msg
from htmxchat.answering.bots.budget import OverBudget, ReadBudget
from htmxchat.answering.bots.sse import (
    MAX_EVENT_CHARS,
    NestingError,
    SSEDecoder,
    SSEError,
    SSEEvent,
    loads_json,
)
from htmxchat.answering.bots.tool_stream import ToolCallAssembler, ToolCallsPiece
from htmxchat.answering.context import described_context
from htmxchat.limits import MAX_IDLE_LINES

log = logging.getLogger(__name__)

DEFAULT_STALL_TIMEOUT = 60.0
CONNECT_TIMEOUT = 10.0
LIST_MODELS_TIMEOUT = 30.0
_ERROR_BODY_TIMEOUT = 5.0
# Idle lines an event that brings text gives back (its `id:`, `event:` lines and so on).
_LINES_PER_PIECE = 4


def normalize_base_url(base_url: str) -> str:
    """Strip trailing slashes and add "/v1" when the URL has no path ("host:11434" works)."""
    url = base_url.strip().rstrip("/")
    return url if URL(url).path.strip("/") else url + "/v1"


async def list_models(
    base_url: str,
    *,
    api_key: str | None = None,
    session: aiohttp.ClientSession | None = None,
    timeout: float = LIST_MODELS_TIMEOUT,  # noqa: ASYNC109 (aiohttp's per-request timeout)
    fix: msg.Fix = msg.DEFAULT_FIX,
) -> list[str]:
    """Return the model ids the server at `base_url` offers (GET {base}/models)."""
    info = await server_info(base_url, api_key=api_key, session=session, timeout=timeout, fix=fix)
    return list(info.models)


async def server_info(
    base_url: str,
    *,
    api_key: str | None = None,
    session: aiohttp.ClientSession | None = None,
    timeout: float = LIST_MODELS_TIMEOUT,  # noqa: ASYNC109 (aiohttp's per-request timeout)
    fix: msg.Fix = msg.DEFAULT_FIX,
) -> ServerInfo:
    """What the server at `base_url` offers (GET {base}/models): `ServerLoading` while it
    loads its model (HTTP 503), `BotError` saying why when it does not answer."""
    base = normalize_base_url(base_url)
    client = session or aiohttp.ClientSession()
    try:
        async with client.get(
            f"{base}/models",
            headers=_auth_headers(api_key),
            timeout=aiohttp.ClientTimeout(total=timeout, sock_connect=CONNECT_TIMEOUT),
            allow_redirects=False,
        ) as resp:
            body = await msg.read_limited(resp)
            if resp.status != 200:
                detail = msg.snippet(body, api_key)
                error = ServerLoading if resp.status == 503 else BotError
                raise error(msg.status_message(base, resp.status, detail, None, fix))
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise msg.transport_error(base, exc, answered=False, fix=fix) from exc
    finally:
        if session is None:
            await client.close()
    try:
        payload = loads_json(body.decode("utf-8", "replace"))
    except NestingError:
        raise BotError(msg.nested(base, fix)) from None
    except ValueError:
        raise BotError(msg.not_compatible(base, fix)) from None
    return ServerInfo(tuple(parse_model_ids(payload)), parse_context(payload))


def parse_model_ids(payload: object) -> list[str]:
    """Model ids from OpenAI's {"data": [{"id"}]} or Ollama/llama.cpp's {"models": [...]}."""
    ids: list[str] = []
    if isinstance(payload, dict):
        for key, fields in (("data", ("id",)), ("models", ("id", "model", "name"))):
            items = payload.get(key)
            for item in items if isinstance(items, list) else ():
                names = [item] if isinstance(item, str) else []
                if isinstance(item, dict):
                    names = [item[f] for f in fields if isinstance(item.get(f), str) and item[f]]
                ids.extend(names[:1])
    return list(dict.fromkeys(ids))


def parse_context(payload: object) -> dict[str, int]:
    """Context sizes the model list states: vLLM's `max_model_len`, llama.cpp's
    `meta.n_ctx_train`, LM Studio's `max_context_length`, by model id."""
    sizes: dict[str, int] = {}
    items = payload.get("data") if isinstance(payload, dict) else None
    for item in items if isinstance(items, list) else ():
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            continue
        meta = item.get("meta")
        found = [
            item.get("max_model_len"),
            item.get("loaded_context_length"),
            item.get("max_context_length"),
            meta.get("n_ctx_train") if isinstance(meta, dict) else None,
        ]
        size = next((n for n in found if isinstance(n, int) and n > 0), None)
        if size is not None:
            sizes[item["id"]] = size
    return sizes


class _Outcome:
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


class OpenAICompatBot:
    """A `Bot` that streams from any server speaking OpenAI's /chat/completions SSE protocol."""

    def __init__(
        self,
        base_url: str,
        model: str | None = None,
        *,
        api_key: str | None = None,
        system_prompt: str | None = None,
        temperature: float | None = None,
        stall_timeout: float = DEFAULT_STALL_TIMEOUT,
        label: str | None = None,
        fix: msg.Fix = msg.DEFAULT_FIX,
    ) -> None:
        self._base = normalize_base_url(base_url)
        self._fix = fix  # where its settings are changed, named in every error
        # Context sizes from the server's own description, by model (None: it gave none).
        self._described: dict[str, int | None] = {}
        self._model = model
        self._api_key = api_key
        self._system_prompt = system_prompt
        self._temperature = temperature
        self._stall_timeout = stall_timeout
        self._label = label or (URL(self._base).host_port_subcomponent or self._base)
        self._session: aiohttp.ClientSession | None = None
        # Asking for usage in the stream is refused (HTTP 400) by some servers; once one
        # has, it is asked without (docs/design.md, "Who answers").
        self._usage_in_stream = True

    def __repr__(self) -> str:
        key = "<set>" if self._api_key else None
        return f"OpenAICompatBot(base_url={self._base!r}, model={self._model!r}, api_key={key})"

    @property
    def label(self) -> str:
        """Short human name, e.g. "Ollama"; defaults to the server's host:port."""
        return self._label

    @property
    def model(self) -> str | None:
        """The default model (the server's first one once a reply needed it)."""
        return self._model

    @property
    def base_url(self) -> str:
        """The normalized base URL, e.g. "http://127.0.0.1:11434/v1"."""
        return self._base

    @property
    def capabilities(self) -> Capabilities:
        """A server at `base_url`; images, reasoning and usage as OpenAI's API has them."""
        return Capabilities(self._base, images=True, reasoning=True, usage=True, tools=True)

    async def probe(self, timeout: float) -> ServerInfo:  # noqa: ASYNC109 (aiohttp's timeout)
        """Ask the server for its models and the context sizes it states (llama.cpp's and
        Ollama's own descriptions are asked once per model, then remembered)."""
        info = await server_info(
            self._base,
            api_key=self._api_key,
            session=self._client(),
            timeout=timeout,
            fix=self._fix,
        )
        unknown = [m for m in info.models if m not in info.context and m not in self._described]
        if unknown:
            found = await described_context(
                self._client(), self._base, unknown, _auth_headers(self._api_key), timeout
            )
            self._described.update({m: found.get(m) for m in unknown})
        known = {m: n for m, n in self._described.items() if n is not None}
        return ServerInfo(info.models, {**known, **info.context})

    def _client(self) -> aiohttp.ClientSession:
        # Created on first use, inside the running loop; no total timeout because long
        # generations on slow local models take minutes. sock_read is the stall timeout.
        if self._session is None or self._session.closed:
            timeout = aiohttp.ClientTimeout(
                total=None, sock_connect=CONNECT_TIMEOUT, sock_read=self._stall_timeout
            )
            self._session = aiohttp.ClientSession(timeout=timeout)
        return self._session

    async def close(self) -> None:
        """Close the HTTP session (call at app shutdown)."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def list_models(self) -> list[str]:
        """The model ids the server offers."""
        return await list_models(
            self._base, api_key=self._api_key, session=self._client(), fix=self._fix
        )

    async def stream(
        self,
        history: Sequence[Turn],
        *,
        model: str | None = None,
        params: Mapping[str, object] | None = None,
    ) -> AsyncGenerator[Item, None]:
        """Stream the reply to `history` (the system prompt is sent first), then its end.

        `params` (temperature, top_p, max_tokens, seed) go into the request body. Closing the
        generator (or cancelling its consumer) closes the HTTP response at once.
        """
        outcome = _Outcome()
        model = model or self._model or await self._first_model()
        stall = self._stall_timeout
        log.debug(
            "chat request to %s: model=%s, %d turns", msg.shown(self._base), model, len(history)
        )
        try:
            resp = await self._post(list(history), model, params or {})
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise msg.transport_error(
                self._base, exc, answered=False, stall=stall, fix=self._fix
            ) from exc
        finished = False
        try:
            if resp.status != 200 or resp.content_type in ("application/json", "text/html"):
                raise await self._response_error(resp, model)
            decoder = SSEDecoder(max_event_chars=MAX_EVENT_CHARS)
            budget = ReadBudget(stall)
            while not outcome.done:
                data = await budget.read(resp.content)
                # A big read is decoded a slice at a time, letting the loop run in between.
                for part in budget.slices(data) if data else (b"",):
                    for event in decoder.feed(part) if part else decoder.close():
                        piece = self._on_event(event, outcome)
                        if piece is not None:
                            budget.progress()
                            decoder.idle(-_LINES_PER_PIECE)
                            yield piece
                        else:
                            decoder.idle(1)  # an event with no text counts as an idle line
                        if outcome.done:
                            break
                    if outcome.done:
                        break
                    await asyncio.sleep(0)
                if not data and not outcome.done:
                    if outcome.finish_reason is None:
                        raise BotError(msg.interrupted(self._base))
                    outcome.done = True  # no [DONE] after a finish_reason is fine
            finished = True
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise msg.transport_error(
                self._base, exc, answered=True, stall=stall, fix=self._fix
            ) from exc
        except OverBudget as exc:
            raise BotError(msg.over_budget(self._base, exc.reason, exc.limit)) from exc
        except SSEError as exc:
            if decoder.idle_lines > MAX_IDLE_LINES:
                raise BotError(msg.idle_flood(self._base, MAX_IDLE_LINES)) from exc
            raise BotError(msg.too_large(self._base, MAX_EVENT_CHARS)) from exc
        finally:
            # close() drops the connection at once so the server stops generating (also on
            # cancel); release() keeps it for reuse after a complete reply.
            if finished:
                resp.release()
            else:
                resp.close()
        if outcome.finish_reason == "length":
            log.info("reply from %s stopped at the model's token limit", msg.shown(self._base))
        if outcome.calls.calls:  # all of them, complete (a chunk with text may have grown one)
            yield ToolCallsPiece(outcome.calls.calls)
        yield outcome.end()

    async def _first_model(self) -> str:
        models = await self.list_models()
        if not models:
            raise BotError(msg.no_models(self._base))
        self._model = models[0]
        return self._model

    async def _post(
        self, history: list[Turn], model: str, params: Mapping[str, object]
    ) -> aiohttp.ClientResponse:
        """POST the chat request. A server that refuses `stream_options` (HTTP 400 naming
        it) is asked once more without it, and never asked for it again."""
        asked_usage = self._usage_in_stream
        resp = await self._client().post(
            f"{self._base}/chat/completions",
            json=self._request_body(history, model, params),
            headers=_auth_headers(self._api_key),
            allow_redirects=False,  # a redirect must not carry the key to another host
        )
        if resp.status != 400 or not asked_usage:
            return resp
        try:
            async with asyncio.timeout(_ERROR_BODY_TIMEOUT):
                body = await msg.read_limited(resp)
        except (aiohttp.ClientError, TimeoutError):
            body = b""
        finally:
            resp.close()
        if b"stream_options" not in body and b"include_usage" not in body:
            detail = msg.snippet(body, self._api_key)
            raise BotError(msg.status_message(self._base, resp.status, detail, model, self._fix))
        self._usage_in_stream = False
        log.info("%s refused stream_options; asking without it", msg.shown(self._base))
        return await self._client().post(
            f"{self._base}/chat/completions",
            json=self._request_body(history, model, params),
            headers=_auth_headers(self._api_key),
            allow_redirects=False,
        )

    def _request_body(
        self, history: list[Turn], model: str, params: Mapping[str, object] | None = None
    ) -> dict[str, Any]:
        # A history that starts with its own system turn (a chat's settings) replaces ours.
        own_system = bool(history) and history[0].role == "system"
        turns = [Turn("system", self._system_prompt)] if self._system_prompt else []
        body: dict[str, Any] = {
            "model": model,
            "messages": [_message(t) for t in (history if own_system else turns + history)],
            "stream": True,
        }
        if self._usage_in_stream:
            body["stream_options"] = {"include_usage": True}
        if self._temperature is not None:
            body["temperature"] = self._temperature
        body.update(params or {})
        return body

    async def _response_error(self, resp: aiohttp.ClientResponse, model: str) -> BotError:
        try:
            async with asyncio.timeout(_ERROR_BODY_TIMEOUT):
                body = await msg.read_limited(resp)
        except (aiohttp.ClientError, TimeoutError):
            body = b""  # the status alone still tells the user what happened
        detail = msg.snippet(body, self._api_key)
        if resp.status == 200 and resp.content_type == "application/json" and detail:
            return BotError(msg.reported(detail))  # e.g. Ollama's {"error": "..."}
        if resp.status == 200:
            return BotError(msg.not_compatible(self._base, self._fix))
        return BotError(msg.status_message(self._base, resp.status, detail, model, self._fix))

    def _on_event(self, event: SSEEvent, outcome: _Outcome) -> Piece | ToolCallsPiece | None:
        if event.event == "error":
            raise BotError(msg.reported(msg.snippet(event.data.encode(), self._api_key)))
        if event.data.strip() == "[DONE]":
            outcome.done = True
            return None
        try:
            chunk = loads_json(event.data)
        except NestingError:
            raise BotError(msg.nested(self._base, self._fix)) from None
        except ValueError:
            chunk = None
        if not isinstance(chunk, dict):
            raise BotError(msg.malformed(self._base, self._fix))
        if chunk.get("error"):
            raise BotError(msg.reported(msg.clean(msg.error_message(chunk), self._api_key)))
        _read_usage(chunk, outcome)
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


def _read_usage(chunk: dict[str, Any], outcome: _Outcome) -> None:
    """Token counts from a chunk's `usage` (servers send it with the last chunk, if asked)."""
    usage = chunk.get("usage")
    if not isinstance(usage, dict):
        return
    for key in ("prompt_tokens", "completion_tokens"):
        value = usage.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            setattr(outcome, key, value)


def _message(turn: Turn) -> dict[str, Any]:
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


def _auth_headers(api_key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}
