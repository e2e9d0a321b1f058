"""HTTP side of per-chat settings: the panel's form, saving it, applying a preset.

Guarded like every route (guard.py: token, Host, Origin on changes). Errors come back in
the form itself (status 200, so htmx swaps them in) with the values the user typed kept.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from htmxchat.answering.chat_settings import (
    PRESETS,
    ChatSettings,
    SettingsError,
    from_stored,
    parse_form,
    preset,
)
from htmxchat.answering.naming import NamingError, suggest_title
from htmxchat.chat import ChatInputError
from htmxchat.ids import is_valid_id
from htmxchat.keys import answering_key, chat_key, store_key, tools_key
from htmxchat.tools import chat_tools
from htmxchat.tools.chat_tools import ChatTools
from htmxchat.tools.servers import ServerStatus


def add_routes(router: web.UrlDispatcher) -> None:
    """Register the chat settings routes."""
    router.add_get("/c/{conversation_id}/settings", settings_form, name="chat_settings")
    router.add_post("/c/{conversation_id}/settings", save_settings, name="save_chat_settings")
    router.add_post("/c/{conversation_id}/name", name_chat, name="name_chat")
    router.add_post("/c/{conversation_id}/model", choose_model, name="choose_model")


def _conversation_id(request: web.Request) -> str:
    conversation_id = request.match_info["conversation_id"]
    if not is_valid_id(conversation_id):
        raise web.HTTPNotFound(text="There is no conversation at this address.")
    return conversation_id


def _render(
    request: web.Request,
    conversation_id: str,
    values: dict[str, Any],
    *,
    saved: str | None = None,
    error: str | None = None,
    named: str | None = None,
    naming_error: str | None = None,
    tools: ChatTools | None = None,
) -> web.Response:
    answering = request.app[answering_key]
    context = {
        "conversation_id": conversation_id,
        "values": values,
        "default_model": answering.bot.model,
        "defaults": answering.defaults,
        "presets": PRESETS,
        "saved": saved,
        "error": error,
        "named": named,
        "naming_error": naming_error,
        # The tool servers of mcp.json, and which of them this chat may use (tools_views.py).
        "tool_servers": _tool_servers(request),
        "chat_tools": tools or ChatTools(),
    }
    return aiohttp_jinja2.render_template("_chat_settings.html", request, context)


def _tool_servers(request: web.Request) -> list[ServerStatus]:
    toolbox = request.app[tools_key]
    toolbox.reload()  # mcp.json may have changed since
    return toolbox.status()


def _as_form(settings: ChatSettings) -> dict[str, Any]:
    return {k: "" if v is None else str(v) for k, v in settings.to_dict().items()}


async def settings_form(request: web.Request) -> web.StreamResponse:
    """The panel's form with the conversation's own settings (defaults as placeholders)."""
    conversation_id = _conversation_id(request)
    own = await request.app[chat_key].own_settings(conversation_id)
    stored = await request.app[store_key].chat_settings(conversation_id)
    tools = chat_tools.from_stored(stored)
    return _render(request, conversation_id, _as_form(own), tools=tools)


async def choose_model(request: web.Request) -> web.StreamResponse:
    """The top bar's picker changed: remember the conversation's choice through the chat
    core, which tells every tab on it (nothing to swap in this tab: 204)."""
    conversation_id = _conversation_id(request)
    form = await request.post()
    choice = form.get("model")
    chat = request.app[chat_key]
    try:
        await chat.choose(conversation_id, choice if isinstance(choice, str) else None)
    except ChatInputError as exc:
        raise web.HTTPUnprocessableEntity(text=str(exc)) from None
    return web.Response(status=204)


async def save_settings(request: web.Request) -> web.StreamResponse:
    """Save the form, or apply a preset (`preset` button) over it; answers with the form."""
    conversation_id = _conversation_id(request)
    form = await request.post()
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    chosen = form.get("preset")
    stored = await request.app[store_key].chat_settings(conversation_id)
    servers = [s for s in form.getall("tool_server", []) if isinstance(s, str)]
    rounds = values.get("tool_rounds", "")
    always = () if values.get("forget_always") else chat_tools.from_stored(stored).always
    tools = chat_tools.ChatTools(tuple(servers), always=always)
    try:
        tools = chat_tools.parse_form(servers, rounds, tools)
        settings = parse_form(values)
    except (SettingsError, chat_tools.ToolSettingsError) as exc:
        return _render(request, conversation_id, values, error=str(exc), tools=tools)
    if isinstance(chosen, str) and chosen:
        found = preset(chosen)
        if found is None:
            return _render(
                request, conversation_id, values, error="There is no such preset.", tools=tools
            )
        # The preset's values replace the form's; the model stays the chat's.
        settings = replace(found.settings, model=settings.model)
        saved = f"Applied the {found.name} preset."
    else:
        saved = "Saved. The next answer uses these settings."
    try:
        # Through the chat core: every tab on the conversation learns the choice.
        await request.app[chat_key].save_settings(conversation_id, settings, tools)
    except ChatInputError as exc:  # a model that is not offered
        return _render(request, conversation_id, values, error=str(exc), tools=tools)
    return _render(request, conversation_id, _as_form(settings), saved=saved, tools=tools)


async def name_chat(request: web.Request) -> web.StreamResponse:
    """Ask the conversation's model for a title, because the user pressed "Name with
    model"; the only request to a model besides the replies the user asks for."""
    conversation_id = _conversation_id(request)
    store, chat = request.app[store_key], request.app[chat_key]
    stored = await store.chat_settings(conversation_id)
    values = _as_form(from_stored(stored))
    tools = chat_tools.from_stored(stored)
    try:
        route = request.app[answering_key].route(from_stored(stored).model)
        if await store.conversation(conversation_id) is None:
            raise NamingError("There is nothing to name yet: send a message first.")
        title = await suggest_title(route, await store.branch(conversation_id))
    except (ChatInputError, NamingError) as exc:
        return _render(request, conversation_id, values, naming_error=str(exc), tools=tools)
    # Through the chat core: every tab's list and title learn it (docs/design.md, "The feed").
    await chat.rename(conversation_id, title)
    named = f"Named “{title}” by {route.bot.label}."
    return _render(request, conversation_id, values, named=named, tools=tools)
