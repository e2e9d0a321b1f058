"""Context windows: how many tokens a model can hold, where its server says (llama.cpp's
`/props`, Ollama's `/api/show`, vLLM's `max_model_len` and LM Studio's context length in the
model list), and whether the next prompt will fit (docs/design.md, "Context window").

Nothing here talks to a model: these are the servers' own descriptions, asked once per model.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import aiohttp
from yarl import URL

from htmxchat.answering.bots import Turn
from htmxchat.models import Message

log = logging.getLogger(__name__)

MAX_DESCRIBED = 8  # models asked about per server (a list of hundreds is an API, not a box)
# Characters per token when the server has not counted: a cautious guess for English text.
CHARS_PER_TOKEN = 3.5
# Room kept for the answer when the next prompt is judged.
ANSWER_ROOM = 256


class ContextFull(Exception):
    """The next prompt will not fit the model's context; the message says what to do."""


def server_root(base_url: str) -> str:
    """The server's own root, where llama.cpp and Ollama describe themselves (no /v1)."""
    url = URL(base_url)
    path = url.path.rstrip("/")
    if path.endswith("/v1"):
        path = path[: -len("/v1")]
    return str(url.with_path(path or "/")).rstrip("/")


async def described_context(
    session: aiohttp.ClientSession,
    base_url: str,
    models: Sequence[str],
    headers: dict[str, str],
    limit: float,
) -> dict[str, int]:
    """Context sizes from llama.cpp's /props (one model, the one loaded) or Ollama's
    /api/show (per model); {} where the server has neither. Failures are not errors: the
    window is then simply not shown."""
    root = server_root(base_url)
    timeout = aiohttp.ClientTimeout(total=limit)
    sizes: dict[str, int] = {}
    try:
        async with session.get(
            f"{root}/props", headers=headers, timeout=timeout, allow_redirects=False
        ) as resp:
            props = await resp.json(content_type=None) if resp.status == 200 else None
        settings = props.get("default_generation_settings") if isinstance(props, dict) else None
        n_ctx = settings.get("n_ctx") if isinstance(settings, dict) else None
        if isinstance(n_ctx, int) and n_ctx > 0 and models:
            return {model: n_ctx for model in models[:1]}  # llama.cpp serves one model
        for model in models[:MAX_DESCRIBED]:
            async with session.post(
                f"{root}/api/show",
                json={"model": model},
                headers=headers,
                timeout=timeout,
                allow_redirects=False,
            ) as resp:
                shown = await resp.json(content_type=None) if resp.status == 200 else None
            size = _ollama_context(shown)
            if size is None:
                break  # not Ollama: asking about the other models would say no more
            sizes[model] = size
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        log.debug("no context size from %s: %s", root, type(exc).__name__)
    return sizes


def _ollama_context(shown: object) -> int | None:
    """`num_ctx` from a model's parameters when set, else its `*.context_length`."""
    if not isinstance(shown, dict):
        return None
    parameters = shown.get("parameters")
    for line in parameters.splitlines() if isinstance(parameters, str) else ():
        name, _, value = line.partition(" ")
        if name == "num_ctx" and value.strip().isdigit():
            return int(value.strip())
    info = shown.get("model_info")
    if isinstance(info, dict):
        for key, value in info.items():
            if key.endswith(".context_length") and isinstance(value, int) and value > 0:
                return value
    return None


def estimate_tokens(turns: Sequence[Turn], history: Sequence[Message]) -> int:
    """The next prompt's size in tokens: the server's own count for the conversation so far
    (the last answer's prompt and completion), plus a guess for what came after it."""
    counted_upto = -1
    counted = 0
    for index, message in enumerate(history):
        if message.prompt_tokens is not None and message.completion_tokens is not None:
            counted_upto, counted = index, message.prompt_tokens + message.completion_tokens
    after = history[counted_upto + 1 :] if counted_upto >= 0 else None
    if after is None:
        chars = sum(len(t.content) for t in turns)
    else:
        chars = sum(len(m.content) for m in after)
    return counted + int(chars / CHARS_PER_TOKEN) + 1


def check_fits(size: int | None, turns: Sequence[Turn], history: Sequence[Message]) -> None:
    """ContextFull (in words) when the next prompt will not fit a window of `size` tokens."""
    if size is None:
        return
    needed = estimate_tokens(turns, history)
    if needed + ANSWER_ROOM > size:
        raise ContextFull(
            f"This message will not fit: the conversation needs about {needed:,} tokens and "
            f"the model holds {size:,}. Start a new chat, shorten the message, or pick a "
            "model with a larger context."
        )
