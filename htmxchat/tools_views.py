"""The Tools page: every MCP server of mcp.json, running or failed (with why), its tools
and their descriptions, and a switch per server (docs/tools.md).

Guarded like every route (guard.py); changes go through htmx (a plain form would send
"Origin: null"). No route here takes a command line: those come only from mcp.json.
"""

from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web

from htmxchat.keys import tools_key
from htmxchat.tools.client import NEEDS_SDK, ToolServerError
from htmxchat.tools.config import ToolConfigError

EXAMPLE = """{
  "mcpServers": {
    "files": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "/tmp"]},
    "web": {"url": "https://example.org/mcp", "headers": {"Authorization": "Bearer ..."}}
  }
}"""


def add_routes(router: web.UrlDispatcher) -> None:
    """Register the Tools page's routes."""
    router.add_get("/tools", tools_page, name="tools")
    router.add_post("/tools/{server}/switch", switch_server, name="switch_tool_server")
    router.add_post("/tools/{server}/start", start_server, name="start_tool_server")


def _page(request: web.Request, *, status: str | None = None) -> web.Response:
    toolbox = request.app[tools_key]
    toolbox.reload()  # the user may just have edited mcp.json
    context = {
        "servers": toolbox.status(),
        "config_path": str(toolbox.config_path),
        "config_exists": toolbox.config.exists,
        "config_error": toolbox.config_error,
        "needs_sdk": None if toolbox.sdk else NEEDS_SDK,
        "example": EXAMPLE,
        "status": status,
    }
    return aiohttp_jinja2.render_template("tools.html", request, context)


async def tools_page(request: web.Request) -> web.StreamResponse:
    """The servers and their tools."""
    return _page(request)


def _server(request: web.Request) -> str:
    name = request.match_info["server"]
    if request.app[tools_key].entry(name) is None:
        raise web.HTTPNotFound(text="There is no such tool server (any more). Reload the page.")
    return name


async def switch_server(request: web.Request) -> web.StreamResponse:
    """Turn a server on or off for every conversation (off also stops it)."""
    name = _server(request)
    on = (await request.post()).get("on") == "1"
    try:
        await request.app[tools_key].switch(name, on)
    except ToolConfigError as exc:
        return _page(request, status=str(exc))
    return _page(request, status=f"{name} is {'on' if on else 'off'}.")


async def start_server(request: web.Request) -> web.StreamResponse:
    """Start a server now (or again), to see its tools or why it fails."""
    name = _server(request)
    try:
        await request.app[tools_key].start(name)
    except ToolServerError:
        return _page(request, status=f"{name} could not be started; the reason is below.")
    return _page(request, status=f"{name} is running.")
