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
    ServerInfo,
    Turn,
)
from htmxchat.answering.bots import openai_errors as msg
from htmxchat.answering.bots.budget import OverBudget, ReadBudget
from htmxchat.answering.bots.openai_models import (
    CONNECT_TIMEOUT,
    auth_headers,
    list_models,
    normalize_base_url,
    server_info,
)
from htmxchat.answering.bots.openai_wire import StreamOutcome, api_message, piece_from_event
from htmxchat.answering.bots.sse import (
    MAX_EVENT_CHARS,
    SSEDecoder,
    SSEError,
)
from htmxchat.answering.bots.tool_stream import ToolCallsPiece
from htmxchat.answering.context import described_context
from htmxchat.limits import MAX_IDLE_LINES

log = logging.getLogger(__name__)

DEFAULT_STALL_TIMEOUT = 60.0
_ERROR_BODY_TIMEOUT = 5.0
# Idle lines an event that brings text gives back (its `id:`, `event:` lines and so on).
_LINES_PER_PIECE = 4


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
                self._client(), self._base, unknown, auth_headers(self._api_key), timeout
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
        outcome = StreamOutcome()
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
                        piece = piece_from_event(
                            event, outcome, self._base, self._api_key, self._fix
                        )
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
            headers=auth_headers(self._api_key),
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
            headers=auth_headers(self._api_key),
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
            "messages": [api_message(t) for t in (history if own_system else turns + history)],
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
