"""What an OpenAI-compatible server offers: its models and their context sizes.

`GET {base}/models`, read with a size limit and parsed defensively (any JSON shape, any
depth), shared by the bot, auto-detection and the Servers page.
"""

from __future__ import annotations

import aiohttp
from yarl import URL

from htmxchat.answering.bots import BotError, ServerInfo, ServerLoading
from htmxchat.answering.bots import openai_errors as msg
from htmxchat.answering.bots.sse import NestingError, loads_json

CONNECT_TIMEOUT = 10.0
LIST_MODELS_TIMEOUT = 30.0


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
            headers=auth_headers(api_key),
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


def auth_headers(api_key: str | None) -> dict[str, str]:
    """The request headers that carry `api_key`, if there is one."""
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}
