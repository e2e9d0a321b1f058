"""Typed keys for everything the aiohttp application shares (a leaf module: no cycles)."""

from __future__ import annotations

from aiohttp import web

from htmxchat.answering.bots.select import ChosenBot
from htmxchat.answering.connections import Connections
from htmxchat.answering.service import Answering
from htmxchat.chat import ChatService
from htmxchat.config import Settings
from htmxchat.store import ChatStore
from htmxchat.tools.servers import ToolServers

settings_key = web.AppKey("settings_key", Settings)
store_key = web.AppKey("store_key", ChatStore)
chat_key = web.AppKey("chat_key", ChatService)
# Open sockets, closed with 1012 at shutdown; handlers remove theirs when they end.
sockets_key = web.AppKey("sockets_key", set[web.WebSocketResponse[bool]])
instance_key = web.AppKey("instance_key", str)  # identifies this server in /healthz
choice_key = web.AppKey("choice_key", ChosenBot)  # the bot in use, its models, why it
# The user's own model servers besides the default one (connections.py).
connections_key = web.AppKey("connections_key", Connections)
# Who answers, and with what (answering/service.py).
answering_key = web.AppKey("answering_key", Answering)
# The MCP servers the model may call (tools/servers.py).
tools_key = web.AppKey("tools_key", ToolServers)
token_key = web.AppKey("token_key", str)  # the access token (access.py, checked by guard.py)
