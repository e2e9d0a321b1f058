"""The aiohttp application factory: wires settings, store, bot, chat core and routes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import WSCloseCode, web

from htmxchat import (
    attachment_views,
    chat_settings_views,
    connections_views,
    guard,
    lifecycle,
    sidebar,
    tools_views,
    views,
    ws,
)
from htmxchat.access import load_or_create_token
from htmxchat.answering.bots import Bot
from htmxchat.answering.bots.detect import Candidate
from htmxchat.answering.bots.select import ChosenBot, choose_bot
from htmxchat.answering.chat_settings import ChatSettings
from htmxchat.answering.connections import Connections, local_candidates
from htmxchat.answering.service import Answering
from htmxchat.answering.watch import ServerWatch
from htmxchat.chat import ChatService
from htmxchat.config import Settings
from htmxchat.keys import (
    answering_key,
    chat_key,
    choice_key,
    connections_key,
    instance_key,
    settings_key,
    sockets_key,
    store_key,
    tools_key,
)
from htmxchat.store import DB_FILENAME, ChatStore
from htmxchat.template_cache import TemplateCache
from htmxchat.template_helpers import setup_environment
from htmxchat.tools.config import default_config_path
from htmxchat.tools.servers import ToolServers

log = logging.getLogger(__name__)
STATIC_DIR = Path(__file__).parent / "static"


def create_app(
    settings: Settings,
    *,
    bot: Bot | ChosenBot | None = None,
    store: ChatStore | None = None,
    coalesce_window: float = 0.1,
    checkpoint_interval: float = 1.0,
    instance_id: str = "",
    token: str | None = None,
    local_servers: Sequence[Candidate] | None = None,
    watch_servers: bool | None = None,
) -> web.Application:
    """Build the web application. Tests inject a bot and a store; by default the demo bot
    and the SQLite store in `settings.data_dir` are used, and the data dir's access token.
    `local_servers`: where to look for local model servers (by default the usual ports, or
    none when a bot is injected, so a server running on this machine cannot change tests).
    `watch_servers`: ask the servers again while a page is open (by default unless a bot is
    injected, so tests see exactly the requests they make)."""
    if local_servers is None:
        local_servers = local_candidates(settings.local_servers) if bot is None else ()
    if watch_servers is None:
        watch_servers = bot is None
    app = web.Application(middlewares=[views.error_middleware])
    guard.setup(app, token or load_or_create_token(settings.data_dir))
    app[settings_key] = settings
    app[sockets_key] = set()
    app[instance_key] = instance_id
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.PackageLoader("htmxchat", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        bytecode_cache=TemplateCache(settings.cache_dir / "templates"),
    )
    setup_environment(env)
    lifecycle.setup(app)  # POST /quit and the About text
    app.cleanup_ctx.append(
        _chat_context(
            bot,
            store,
            local_servers,
            watch_servers=watch_servers,
            coalesce_window=coalesce_window,
            checkpoint_interval=checkpoint_interval,
        )
    )
    app.on_shutdown.append(_close_sockets)
    app.on_cleanup.append(_stop_render_process)
    app.router.add_get("/", views.index, name="index")
    app.router.add_get("/new", views.new_conversation, name="new_conversation")
    app.router.add_get("/c/{conversation_id}", views.conversation_page, name="conversation")
    app.router.add_get("/c/{conversation_id}/messages", views.older_messages, name="older")
    app.router.add_get(
        "/c/{conversation_id}/m/{message_id}/source", views.message_source, name="message_source"
    )
    app.router.add_get(
        "/c/{conversation_id}/m/{message_id}/edit", views.edit_form, name="edit_form"
    )
    sidebar.add_routes(app.router)
    attachment_views.add_routes(app.router)
    chat_settings_views.add_routes(app.router)
    connections_views.add_routes(app.router)
    tools_views.add_routes(app.router)
    app.router.add_get("/healthz", views.healthz, name="healthz")
    app.router.add_get("/ws", ws.chat_ws, name="chat_ws")
    app.router.add_static("/static/", STATIC_DIR, name="static", append_version=False)
    return app


def _chat_context(
    injected_bot: Bot | ChosenBot | None,
    injected_store: ChatStore | None,
    local_servers: Sequence[Candidate],
    *,
    watch_servers: bool,
    coalesce_window: float,
    checkpoint_interval: float,
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def context(app: web.Application) -> AsyncIterator[None]:
        settings = app[settings_key]
        if injected_bot is None:
            # The same places the Servers page lists: what the terminal says and what the
            # page shows agree (HTMXCHAT_LOCAL_SERVERS included).
            choice = await choose_bot(settings, candidates=local_servers)
        elif isinstance(injected_bot, ChosenBot):
            choice = injected_bot
        else:
            models = (injected_bot.model,) if injected_bot.model else ()
            choice = ChosenBot(injected_bot, models, f"Replies come from {injected_bot.label}.")
        app[choice_key] = choice
        store = injected_store
        if store is None:
            store = await ChatStore.open(settings.data_dir / DB_FILENAME)
        app[store_key] = store
        # Every server: listed at once, so one that is down shows why (not fatal).
        connections = Connections(
            settings.data_dir, default=choice, settings=settings, candidates=local_servers
        )
        connections.load()
        await connections.refresh()
        app[connections_key] = connections
        answering = Answering(
            choice.bot,
            models=choice.models,
            defaults=ChatSettings(
                system_prompt=settings.system_prompt, temperature=settings.temperature
            ),
            servers=connections,
        )
        app[answering_key] = answering
        chat = ChatService(
            store,
            answering,
            coalesce_window=coalesce_window,
            checkpoint_interval=checkpoint_interval,
        )
        app[chat_key] = chat
        # MCP servers from mcp.json: none runs until a reply needs its tools.
        tools = ToolServers(
            settings.mcp_config or default_config_path(), settings.data_dir / "tools.json"
        )
        app[tools_key] = tools
        answering.toolbox = tools
        watching = None
        if watch_servers:
            watch = ServerWatch(
                connections,
                pages_open=lambda: bool(app[sockets_key]),
                changed=lambda: _servers_changed(app),
            )
            watching = asyncio.create_task(watch.run(), name="server-watch")
        try:
            yield
        finally:
            if watching is not None:
                watching.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watching
            # Runs after on_shutdown closed the sockets: save in-flight replies, then close.
            await chat.shutdown()
            await tools.close()  # after the replies: a call in flight ends with its reply
            if injected_store is None:
                await store.close()
            await choice.bot.close()
            await connections.close()

    return context


def _servers_changed(app: web.Application) -> None:
    """A server came, went or lists other models: the core checks picker values against
    the default's list, and every open page gets a new picker."""
    default = app[connections_key].default
    if default is not None:
        app[answering_key].models = default.models
    app[chat_key].models_changed()


async def _stop_render_process(_app: web.Application) -> None:
    """Stop the Markdown render process, if a large render ever started it (looked up
    rather than imported: stopping an app that rendered nothing imports nothing)."""
    worker = sys.modules.get("htmxchat.markdown.worker")
    if worker is not None:
        await worker.WORKER.stop()


async def _close_sockets(app: web.Application) -> None:
    # 1012 (service restart) makes the htmx ws extension reconnect by itself.
    for socket in app[sockets_key].copy():
        await socket.close(code=WSCloseCode.SERVICE_RESTART, message=b"server restarting")
