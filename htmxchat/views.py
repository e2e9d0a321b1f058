"""HTTP handlers: the chat page, a health probe, and friendly error pages."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import aiohttp_jinja2
from aiohttp import web

from htmxchat import __version__
from htmxchat.chat import PAGE_MESSAGES
from htmxchat.ids import is_valid_id, new_id
from htmxchat.keys import (
    answering_key,
    chat_key,
    instance_key,
    store_key,
)
from htmxchat.markdown.offload import prerender_messages
from htmxchat.models import Message
from htmxchat.sidebar import sidebar_context
from htmxchat.store import StoreError

log = logging.getLogger(__name__)

FOCUS_CONTEXT = 10  # messages shown above one opened from a search result

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def index(request: web.Request) -> web.StreamResponse:
    """Open the most recent conversation, or a fresh one when there is none."""
    conversations = await request.app[store_key].conversations()
    target = conversations[0].id if conversations else new_id()
    raise web.HTTPFound(request.app.router["conversation"].url_for(conversation_id=target))


async def new_conversation(request: web.Request) -> web.StreamResponse:
    """A new, empty conversation at an address of its own. The New chat link comes here
    rather than naming an address itself: an address fixed when the page was drawn would be
    the open conversation's once that link has been followed and written in."""
    raise web.HTTPSeeOther(request.app.router["conversation"].url_for(conversation_id=new_id()))


async def conversation_page(request: web.Request) -> web.StreamResponse:
    """The chat page for one conversation (which may not exist yet: it starts when used)."""
    conversation_id = request.match_info["conversation_id"]
    if not is_valid_id(conversation_id):
        raise web.HTTPNotFound(text="There is no conversation at this address.")
    # ?at=<message id> opens the conversation at that message (search results).
    focus = request.query.get("at")
    focus = focus if is_valid_id(focus) else None
    chat, store = request.app[chat_key], request.app[store_key]
    since = focus
    if focus:
        # A hit on another version of a message: show its branch (docs/design.md,
        # "Message tree"), then a few messages of context above it, so it can be
        # scrolled to the middle.
        await chat.reveal(conversation_id, focus)
        earlier, _ = await store.messages_before(conversation_id, focus, FOCUS_CONTEXT)
        since = earlier[0].id if earlier else focus
    # The page is the conversation as of one event; its socket resumes from that event.
    snapshot = await chat.snapshot(conversation_id, since=since)
    messages = snapshot.messages
    await prerender_messages(messages, snapshot.streams)
    answering = request.app[answering_key]
    # The choice this conversation uses, selected by the server (docs/design.md, "Who
    # answers"): its own while offered, else its last answer's model, else the default.
    selected = answering.selected(await chat.remembered_choice(conversation_id), messages)
    context = {
        **await sidebar_context(request, conversation_id),
        "conversation_id": conversation_id,
        "conversation": snapshot.conversation,
        "messages": messages,
        "older": snapshot.older,
        "focus": focus if any(m.id == focus for m in messages) else None,
        "busy": snapshot.busy,
        "epoch": snapshot.epoch,
        "seq": snapshot.seq,
        "streams": snapshot.streams,
        "bot_label": answering.label_for(selected),
        "picker": answering.picker(selected),
        "oob": None,
        "notice": None,
        "replace_url": False,
    }
    return aiohttp_jinja2.render_template("chat.html", request, context)


async def older_messages(request: web.Request) -> web.StreamResponse:
    """The page of messages before `?before=<message id>`, topped by the next loader."""
    conversation_id = request.match_info["conversation_id"]
    before = request.query.get("before")
    if not is_valid_id(conversation_id) or not is_valid_id(before):
        raise web.HTTPNotFound(text="There are no such messages.")
    store = request.app[store_key]
    messages, more = await store.messages_before(conversation_id, str(before), PAGE_MESSAGES)
    await prerender_messages(messages)
    context = {"conversation_id": conversation_id, "messages": messages, "more": more}
    return aiohttp_jinja2.render_template("_older_page.html", request, context)


async def _message_of(request: web.Request) -> Message:
    """The message the URL names, of the conversation it names (404 otherwise)."""
    conversation_id = request.match_info["conversation_id"]
    message_id = request.match_info["message_id"]
    found = (
        await request.app[store_key].message(message_id)
        if is_valid_id(conversation_id) and is_valid_id(message_id)
        else None
    )
    if found is None or found.conversation_id != conversation_id:
        raise web.HTTPNotFound(text="That message does not exist (any more).")
    return found


async def message_source(request: web.Request) -> web.StreamResponse:
    """A message's Markdown as plain text (Copy on an answer too big to carry it inline)."""
    found = await _message_of(request)
    return web.Response(
        text=found.content,
        content_type="text/plain",
        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"},
    )


async def edit_form(request: web.Request) -> web.StreamResponse:
    """The form that edits one of your messages in place (Edit), with its text; saving sends
    it over the socket as a new version (docs/design.md, "Message tree")."""
    found = await _message_of(request)
    if found.role != "user":
        raise web.HTTPNotFound(text="Only your own messages can be edited.")
    rows = min(12, max(2, found.content.count("\n") + 1))
    context = {"m": found, "rows": rows}
    return aiohttp_jinja2.render_template("_edit_form.html", request, context)


async def healthz(request: web.Request) -> web.StreamResponse:
    """Tells a second `htmxchat` start that this server is the running instance."""
    return web.json_response(
        {"app": "htmxchat", "version": __version__, "instance": request.app[instance_key]}
    )


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Render HTTP errors as a small page instead of aiohttp's bare text."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400 or not _wants_html(request):
            raise
        return _error_page(request, exc.status, exc.reason, exc.text or "")
    except StoreError as exc:
        # The chat log is busy or failing: say so (htmx shows plain text in the notice).
        if _wants_html(request):
            return _error_page(request, 503, "Service Unavailable", str(exc))
        raise web.HTTPServiceUnavailable(text=str(exc)) from exc
    except Exception:
        log.exception("unhandled error in %s %s", request.method, request.path)
        return _error_page(
            request, 500, "Internal Server Error", "Something went wrong; the log has details."
        )


def _wants_html(request: web.Request) -> bool:
    return "text/html" in request.headers.get("Accept", "")


def _error_page(request: web.Request, status: int, reason: str, message: str) -> web.Response:
    # aiohttp prefixes its default texts with the status ("404: Not Found"); keep ours plain.
    if message.startswith(f"{status}:"):
        message = "That page does not exist." if status == 404 else reason
    context = {"status": status, "reason": reason, "message": message}
    return aiohttp_jinja2.render_template("error.html", request, context, status=status)
