"""HTTP handlers around the conversation list: list, rename, delete, search and export.

They answer htmx requests with partials. Changes go through the chat core, whose feed
tells every open page about them over its WebSocket (docs/design.md, "The feed").
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import urlsplit

import aiohttp_jinja2
from aiohttp import web

from htmxchat.export import filename, to_json, to_markdown
from htmxchat.ids import is_valid_id, new_id
from htmxchat.keys import chat_key, store_key
from htmxchat.models import Conversation

MAX_TITLE = 200
MAX_QUERY = 200
SEARCH_RESULTS = 30


def add_routes(router: web.UrlDispatcher) -> None:
    """Register the sidebar's routes."""
    router.add_get("/search", search, name="search")
    router.add_get("/c/{conversation_id}/item", item, name="conversation_item")
    router.add_get("/c/{conversation_id}/rename", rename_form, name="rename_form")
    router.add_post("/c/{conversation_id}/title", rename, name="rename")
    router.add_delete("/c/{conversation_id}", delete, name="delete")
    router.add_get(r"/c/{conversation_id}/export.{fmt:md|json}", export, name="export")


async def sidebar_context(request: web.Request, current: str | None) -> dict[str, Any]:
    """What `_conversation_list.html` needs: the feed as of now, for the page to resume."""
    feed = await request.app[chat_key].feed_snapshot()
    return {"feed": feed, "current": current}


def current_conversation(request: web.Request) -> str | None:
    """The conversation the requesting page shows (htmx sends its URL), if any."""
    path = urlsplit(request.headers.get("HX-Current-URL", "")).path
    parts = path.strip("/").split("/")
    if len(parts) == 2 and parts[0] == "c" and is_valid_id(parts[1]):
        return parts[1]
    return None


def _conversation_id(request: web.Request) -> str:
    conversation_id = request.match_info["conversation_id"]
    if not is_valid_id(conversation_id):
        raise web.HTTPNotFound(text="There is no conversation at this address.")
    return conversation_id


async def _existing(request: web.Request) -> Conversation:
    conversation = await request.app[store_key].conversation(_conversation_id(request))
    if conversation is None:
        raise web.HTTPNotFound(text="That conversation does not exist (any more).")
    return conversation


def _render(template: str, request: web.Request, context: dict[str, Any]) -> web.Response:
    return aiohttp_jinja2.render_template(template, request, context)


async def item(request: web.Request) -> web.StreamResponse:
    """One list entry (ends a rename without saving)."""
    conversation = await _existing(request)
    context = {"c": conversation, "current": current_conversation(request)}
    return _render("_conversation_item.html", request, context)


async def rename_form(request: web.Request) -> web.StreamResponse:
    """The list entry as a small form for a new title."""
    conversation = await _existing(request)
    return _render(
        "_conversation_rename.html", request, {"c": conversation, "max_title": MAX_TITLE}
    )


async def rename(request: web.Request) -> web.StreamResponse:
    """Save a new title; answers with the list entry (and the page title when shown)."""
    conversation = await _existing(request)
    form = await request.post()
    raw = form.get("title")
    title = " ".join(raw.split())[:MAX_TITLE] if isinstance(raw, str) else ""
    if title:  # an empty title keeps the old one
        renamed = await request.app[chat_key].rename(conversation.id, title)
        conversation = renamed or conversation
    current = current_conversation(request)
    context = {"c": conversation, "current": current, "conversation": conversation, "oob": True}
    response = _render("_conversation_item.html", request, context)
    if current == conversation.id:
        title_html = aiohttp_jinja2.render_string("_conversation_title.html", request, context)
        response.text = (response.text or "") + title_html
    return response


async def delete(request: web.Request) -> web.StreamResponse:
    """Erase a conversation (after stopping its reply). Every page's list learns it from the
    feed; the page that was showing it is sent on to the most recent remaining one."""
    conversation_id = _conversation_id(request)
    chat = request.app[chat_key]
    await chat.delete(conversation_id)
    response = web.Response(status=200, text="", content_type="text/html")
    if current_conversation(request) == conversation_id:
        remaining = await request.app[store_key].conversations(limit=1)
        target = remaining[0].id if remaining else new_id()
        path = str(request.app.router["conversation"].url_for(conversation_id=target))
        response.headers["HX-Location"] = json.dumps(
            {"path": path, "target": "#pane", "select": "#pane", "swap": "outerHTML"}
        )
    return response


async def search(request: web.Request) -> web.StreamResponse:
    """Messages matching the query across all conversations (empty query: nothing)."""
    query = request.query.get("q", "").strip()[:MAX_QUERY]
    if not query:
        return web.Response(text="", content_type="text/html")
    hits = await request.app[store_key].search(query, limit=SEARCH_RESULTS)
    context = {"hits": hits, "query": query, "limit": SEARCH_RESULTS}
    return _render("_search_results.html", request, context)


async def export(request: web.Request) -> web.StreamResponse:
    """Download a conversation as Markdown or JSON (the same text the CLI writes)."""
    conversation = await _existing(request)
    as_json = request.match_info["fmt"] == "json"
    # JSON keeps the whole tree; Markdown is the branch shown (docs/design.md, "Message tree").
    store = request.app[store_key]
    messages = await (store.export_messages if as_json else store.branch)(conversation.id)
    # Off the event loop: a long conversation takes seconds to format, and replies in
    # every tab would stall meanwhile.
    if as_json:
        own = await request.app[store_key].chat_settings(conversation.id)
        body = await asyncio.to_thread(to_json, conversation, messages, own)
    else:
        body = await asyncio.to_thread(to_markdown, conversation, messages)
    name = filename(conversation, "json" if as_json else "md")
    return web.Response(
        text=body,
        content_type="application/json" if as_json else "text/markdown",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
