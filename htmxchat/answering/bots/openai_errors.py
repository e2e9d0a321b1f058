"""User-facing messages for what goes wrong when talking to an OpenAI-compatible server.

Every message is a plain sentence saying what happened and what to do next. None of them
contains the API key: server text is redacted, and 401/403 bodies are never quoted because
OpenAI echoes part of the key there.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

import aiohttp
from yarl import URL

from htmxchat.answering.bots import BotError
from htmxchat.answering.bots.sse import loads_json

log = logging.getLogger(__name__)

MAX_BODY = 8 * 1024 * 1024  # a /models list or an error body; anything bigger is not ours
_SNIPPET_CHARS = 200


@dataclass(frozen=True, slots=True)
class Fix:
    """Where this server's settings are changed, as the messages name it: every error
    points at the place that fixes *that* server (docs/design.md, "Who answers")."""

    address: str  # where its address is set, e.g. "its Edit button on the Servers page"
    key: str  # the sentence saying how to give it the right API key


# The default server: chosen by the flags and HTMXCHAT_* variables.
DEFAULT_FIX = Fix(
    "--base-url or HTMXCHAT_BASE_URL, then restart htmxchat",
    "Set HTMXCHAT_API_KEY to a valid key and restart htmxchat.",
)
# A server added on the Servers page.
ADDED_FIX = Fix(
    "its Edit button on the Servers page",
    "Enter the right key with its Edit button on the Servers page.",
)
# A local server htmxchat looks for by itself (the usual ports or HTMXCHAT_LOCAL_SERVERS).
LOCAL_FIX = Fix(
    "HTMXCHAT_LOCAL_SERVERS, then restart htmxchat",
    "Add it on the Servers page with its API key.",
)


async def read_limited(resp: aiohttp.ClientResponse, limit: int = MAX_BODY) -> bytes:
    """Read at most `limit` bytes of a (non-streaming) response body."""
    buf = bytearray()
    while len(buf) < limit:
        part = await resp.content.read(limit - len(buf))
        if not part:
            break
        buf += part
    return bytes(buf)


def shown(base: str) -> str:
    """The base URL as shown to the user, without any user:password part."""
    return str(URL(base).with_user(None))


def error_message(obj: dict[Any, Any]) -> str:
    """The message of {"error": {"message"}}, {"error": "..."} or {"message": "..."}."""
    err = obj.get("error")
    message = err.get("message") if isinstance(err, dict) else err
    if not isinstance(message, str):
        message = obj.get("message")  # vLLM, LM Studio
    return message if isinstance(message, str) else ""


def clean(text: str, api_key: str | None) -> str:
    """One short line of server text, with the key (if it appears) masked."""
    if api_key:
        text = text.replace(api_key, "***")
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= _SNIPPET_CHARS else text[: _SNIPPET_CHARS - 1] + "…"


def snippet(body: bytes, api_key: str | None) -> str:
    """A short excerpt of an error body: its JSON error message, or its text if not HTML."""
    text = body[:65536].decode("utf-8", "replace").strip()
    try:
        parsed = loads_json(text)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        text = error_message(parsed)
    elif text.startswith("<"):
        text = ""  # an HTML error page says nothing useful in one line
    return clean(text, api_key)


def reported(message: str) -> str:
    """The server said something went wrong (mid-stream error object or `event: error`)."""
    detail = f": {message.rstrip('.')}." if message else "."
    return f"The model server reported an error{detail} Try again, or check the server's log."


def malformed(base: str, fix: Fix = DEFAULT_FIX) -> str:
    return (
        f"The model server at {shown(base)} sent a malformed stream, so the reply was "
        f"stopped. Check that its address ({fix.address}) points to an OpenAI-compatible "
        "server."
    )


def not_compatible(base: str, fix: Fix = DEFAULT_FIX) -> str:
    return (
        f"The address {shown(base)} did not answer like an OpenAI-compatible server. "
        f"Check its address ({fix.address}; it usually ends in /v1)."
    )


def interrupted(base: str) -> str:
    return (
        f"The model server at {shown(base)} ended the reply before it was finished. "
        "Try again, or check the server's log."
    )


def too_large(base: str, max_chars: int) -> str:
    return (
        f"The model server at {shown(base)} sent a single event larger than "
        f"{max_chars // 2**20} MiB, so the reply was stopped. Try again."
    )


def nested(base: str, fix: Fix = DEFAULT_FIX) -> str:
    return (
        f"The model server at {shown(base)} sent JSON nested thousands of levels deep, which "
        "no real answer is, so it was not read. Check that its address "
        f"({fix.address}) points to an OpenAI-compatible server."
    )


def idle_flood(base: str, limit: int) -> str:
    return (
        f"The model server at {shown(base)} sent more than {limit:,} empty lines or events "
        "without any text, so the reply was stopped. Try again, or check the server."
    )


def over_budget(base: str, reason: str, limit: float) -> str:
    """A streaming reply went past one of the limits of `bots/budget.py`."""
    where = shown(base)
    if reason == "no-text":
        return (
            f"The model server at {where} sent no text for {limit:g} seconds (only empty "
            "or keep-alive data), so the reply was stopped. Try again, or check the server."
        )
    if reason == "too-long":
        return (
            f"The reply from the model server at {where} was still streaming after "
            f"{limit / 60:g} minutes, the longest a reply may take, so it was stopped."
        )
    return (
        f"The model server at {where} sent more than {limit / 2**20:g} MiB for one reply, "
        "so it was stopped. Try again, or check the server."
    )


def no_models(base: str) -> str:
    return (
        f"The model server at {shown(base)} has no models. Download or load one "
        "(for example with: ollama pull llama3.2), or pass --model."
    )


def status_message(
    base: str, status: int, detail: str, model: str | None, fix: Fix = DEFAULT_FIX
) -> str:
    """The message for a non-200 answer; `detail` is the server's own short message."""
    where = shown(base)
    detail = f": {detail.rstrip('.')}" if detail else ""
    if status in (401, 403):
        return (
            f"The model server at {where} refused the request (HTTP {status}): the API key is "
            f"missing or wrong. {fix.key}"
        )
    if status == 404:
        what = f'the model "{model}"' if model else "this address"
        return (
            f"The model server at {where} does not know {what} (HTTP 404{detail}). Pick "
            f"another model, or check its address ({fix.address}; it usually ends in /v1)."
        )
    if status == 503:
        return (
            f"The model server at {where} is still loading its model (HTTP 503{detail}). "
            "Wait until it is ready, then press Retry."
        )
    if status == 429:
        return (
            f"The model server at {where} is rate limiting requests or your quota is used up "
            f"(HTTP 429{detail}). Wait a minute and try again, or check your plan."
        )
    if 300 <= status < 400:
        return (
            f"The model server at {where} redirected elsewhere (HTTP {status}). "
            f"Check its address ({fix.address})."
        )
    if status >= 500:
        return (
            f"The model server at {where} had an internal error (HTTP {status}{detail}). "
            "Try again; if it keeps happening, check the server's log."
        )
    return (
        f"The model server at {where} rejected the request (HTTP {status}{detail}). "
        "Check the model and settings, then try again."
    )


def transport_error(
    base: str,
    exc: BaseException,
    *,
    answered: bool,
    stall: float | None = None,
    fix: Fix = DEFAULT_FIX,
) -> BotError:
    """Map an aiohttp/timeout exception to a BotError; `answered`: the reply had started."""
    where = shown(base)
    log.debug("request to %s failed: %s", where, type(exc).__name__)
    if isinstance(exc, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError):
        return BotError(
            f"The model server at {where} is not answering: nothing listens at that address. "
            f"Start it (for example with ollama serve, or llama-server) or change its address "
            f"({fix.address}), then press Retry."
        )
    if isinstance(exc, TimeoutError):
        waited = f"for {stall:g} seconds" if stall is not None else "for too long"
        return BotError(
            f"The model server at {where} sent nothing {waited}, so the request was stopped. "
            "Check that the server is still running, then try again."
        )
    if answered:
        return BotError(
            f"The connection to the model server at {where} broke off in the middle of the "
            "reply. Check that the server is still running, then try again."
        )
    return BotError(
        f"The model server at {where} closed the connection without answering. "
        f"Check that the server is still running and that its address ({fix.address}) is right."
    )
