"""The settings page: the model servers htmxchat talks to, and adding one.

Guarded like every route (guard.py). API keys entered here go to a 0600 file and never come
back to the page: it shows `sk-…last4` only.
"""

from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web

from htmxchat.connections import ConnectionError_
from htmxchat.keys import choice_key, connections_key


def add_routes(router: web.UrlDispatcher) -> None:
    """Register the settings page's routes."""
    router.add_get("/settings", settings_page, name="settings")
    router.add_post("/settings/connections", add_connection, name="add_connection")


async def settings_page(request: web.Request) -> web.StreamResponse:
    """Every connection with its models, or why it is down; the form to add one."""
    return _page(request)


def _page(
    request: web.Request, *, error: str | None = None, form: dict[str, str] | None = None
) -> web.Response:
    choice = request.app[choice_key]
    context = {
        "default": choice,
        "connections": request.app[connections_key].all(),
        "error": error,
        "form": form or {},
    }
    # Errors too are 200: htmx swaps only successful answers, and the form shows the error.
    return aiohttp_jinja2.render_template("settings.html", request, context)


async def add_connection(request: web.Request) -> web.StreamResponse:
    """Add an OpenAI-compatible server (name, base URL, optional API key)."""
    data = await request.post()
    fields = {k: data.get(k) for k in ("name", "base_url", "api_key")}
    text = {k: v if isinstance(v, str) else "" for k, v in fields.items()}
    connections = request.app[connections_key]
    try:
        connection = connections.add(text["name"], text["base_url"], text["api_key"] or None)
    except ConnectionError_ as exc:
        # The key is never sent back, not even into the form it was typed in.
        return _page(request, error=str(exc), form={**text, "api_key": ""})
    await connections.refresh([connection])
    raise web.HTTPSeeOther(request.app.router["settings"].url_for())
