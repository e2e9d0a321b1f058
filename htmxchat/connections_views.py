"""The settings page: every model server htmxchat talks to; adding, editing, removing one
and asking a down one again.

Guarded like every route (guard.py: token, Host, and Origin on every change; the page uses
htmx because a plain form would send "Origin: null"). API keys entered here go to a 0600 file
and never come back to the page: it shows `sk-…last4` only. Every change is announced to the
open pages through the chat core's feed, so their model pickers follow.
"""

from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web

from htmxchat.answering.connections import DEFAULT_ID, ConnectionError_
from htmxchat.answering.server_view import ServerView
from htmxchat.keys import answering_key, chat_key, connections_key
from htmxchat.provenance import without_password


def add_routes(router: web.UrlDispatcher) -> None:
    """Register the settings page's routes."""
    router.add_get("/settings", settings_page, name="settings")
    router.add_post("/settings/connections", add_connection, name="add_connection")
    router.add_post(
        "/settings/connections/{connection_id}", edit_connection, name="edit_connection"
    )
    router.add_delete(
        "/settings/connections/{connection_id}", remove_connection, name="remove_connection"
    )
    router.add_post(
        "/settings/connections/{connection_id}/retry", retry_connection, name="retry_connection"
    )


async def settings_page(request: web.Request) -> web.StreamResponse:
    """Every connection with its models, or why it is down; the form to add one.
    `?edit=<id>` shows an added server as a form."""
    editing = request.query.get("edit")
    found = request.app[connections_key].get(editing or "")
    return _page(request, editing=found.id if found is not None and found.editable else None)


def _page(
    request: web.Request,
    *,
    error: str | None = None,
    form: dict[str, str] | None = None,
    status: str | None = None,
    editing: str | None = None,
    edit_error: str | None = None,
    edit_values: dict[str, str] | None = None,
) -> web.Response:
    connections = request.app[connections_key]
    context = {
        # Plain snapshots: the template never holds the live servers.
        "connections": [ServerView.of(c) for c in connections.all()],
        "error": error,
        "form": form or {},
        "status": status,
        "editing": editing,
        "edit_error": edit_error,
        "edit_values": edit_values,
    }
    # Errors too are 200: htmx swaps only successful answers, and the form shows the error.
    return aiohttp_jinja2.render_template("settings.html", request, context)


async def _fields(request: web.Request) -> dict[str, str]:
    data = await request.post()
    fields = {k: data.get(k) for k in ("name", "base_url", "api_key", "forget_key")}
    return {k: v if isinstance(v, str) else "" for k, v in fields.items()}


async def add_connection(request: web.Request) -> web.StreamResponse:
    """Add an OpenAI-compatible server (name, base URL, optional API key)."""
    text = await _fields(request)
    connections = request.app[connections_key]
    try:
        connection = connections.add(text["name"], text["base_url"], text["api_key"] or None)
    except ConnectionError_ as exc:
        # The key is never sent back, not even into the form it was typed in.
        return _page(request, error=str(exc), form={**text, "api_key": ""})
    await connections.refresh([connection])
    request.app[chat_key].models_changed()
    raise web.HTTPSeeOther(request.app.router["settings"].url_for())


def _connection_id(request: web.Request) -> str:
    connection_id = request.match_info["connection_id"]
    if request.app[connections_key].get(connection_id) is None:
        raise web.HTTPNotFound(text="There is no such server (any more). Reload the page.")
    return connection_id


async def edit_connection(request: web.Request) -> web.StreamResponse:
    """Save an added server's new name, URL or key (blank key: keep the saved one)."""
    connection_id = _connection_id(request)
    text = await _fields(request)
    connections = request.app[connections_key]
    old = connections.get(connection_id)
    if old is not None and old.base_url and text["base_url"] == without_password(old.base_url):
        text["base_url"] = old.base_url  # the form shows it without its password: keep that
    try:
        connection = connections.edit(
            connection_id,
            text["name"],
            text["base_url"],
            text["api_key"] or None,
            forget_key=bool(text["forget_key"]),
        )
    except ConnectionError_ as exc:
        return _page(
            request, editing=connection_id, edit_error=str(exc), edit_values={**text, "api_key": ""}
        )
    await connections.refresh([connection])
    request.app[chat_key].models_changed()
    return _page(request, status=f"Saved {connection.name}.")


async def remove_connection(request: web.Request) -> web.StreamResponse:
    """Forget an added server and its key (conversations using it go back to the default)."""
    connections = request.app[connections_key]
    try:
        removed = connections.remove(_connection_id(request))
    except ConnectionError_ as exc:
        return _page(request, error=str(exc))
    request.app[chat_key].models_changed()
    return _page(request, status=f"Removed {removed.name}.")


async def retry_connection(request: web.Request) -> web.StreamResponse:
    """Ask a server for its models again (after starting it, or fixing its address)."""
    connection_id = _connection_id(request)
    connections = request.app[connections_key]
    connection = connections.get(connection_id)
    assert connection is not None  # _connection_id checked it
    await connections.refresh([connection])
    if connection_id == DEFAULT_ID:
        # The chat core checks picker values against the default's models.
        request.app[answering_key].models = connection.models
    request.app[chat_key].models_changed()
    state = "still down" if connection.down else "it answers"
    return _page(request, status=f"Asked {connection.name} again: {state}.")
