"""When the server stops by itself: the app window's grace period, idle exit, the Quit control.

Every way of stopping sets the same `stop` event that SIGINT and SIGTERM set, so all of them
take the same path: sockets closed with 1012, replies in flight saved, exit 0.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp_jinja2
from aiohttp import hdrs, web

from htmxchat import __version__
from htmxchat.keys import chat_key, settings_key, sockets_key
from htmxchat.logfile import LOG_FILENAME

log = logging.getLogger(__name__)

# Set to stop the server (serve() puts its own event here before the app starts).
stop_key = web.AppKey("stop_key", asyncio.Event)
# A browser may take a while to start (first run, slow disk): wait this long for the first
# page before the grace period applies.
FIRST_PAGE_WAIT = 60.0

QUIT_PAGE = (
    '<main class="quit-page" role="status"><h1>htmxchat has quit</h1>'
    "<p>Your chats are saved. You can close this window; start htmxchat again to go on.</p>"
    "</main>"
)
CONFIRM_FRAGMENT = (
    '<div id="quit" class="quit-confirm" role="alert">'
    "<p>A reply is still being written. Quit anyway? What it has written so far is saved.</p>"
    '<button type="button" hx-post="/quit" hx-vals=\'{"confirm": "1"}\' '
    'hx-target="#quit" hx-swap="outerHTML">Quit anyway</button></div>'
)


@dataclass(frozen=True, slots=True)
class ExitRule:
    """Stop after `limit` seconds without an open page (None: never by itself)."""

    limit: float | None
    reason: str = ""
    first_page_wait: float = 0.0  # a longer limit until the first page has connected


def exit_rule(app_mode: bool, app_grace: float, idle_exit_minutes: float | None) -> ExitRule:
    """App mode: the window's grace period; otherwise the optional idle exit."""
    if app_mode:
        return ExitRule(app_grace, "the app window was closed", max(app_grace, FIRST_PAGE_WAIT))
    if idle_exit_minutes is not None:
        return ExitRule(idle_exit_minutes * 60, "no page was open for the idle-exit time")
    return ExitRule(None)


async def watch_pages(
    app: web.Application,
    stop: asyncio.Event,
    rule: ExitRule,
    *,
    interval: float = 1.0,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Poll the open page sockets; set `stop` once none has been open for the rule's limit.

    Any connection restarts the count, so a reload, a navigation or a laptop waking up
    (the page reconnects) never trips it.
    """
    sockets = app[sockets_key]
    seen_page = False
    empty_since: float | None = clock()
    last_count = 0
    while not stop.is_set():
        count = len(sockets)
        if count != last_count:
            log.info("%d page%s connected", count, "" if count == 1 else "s")
            last_count = count
        if count:
            seen_page, empty_since = True, None
        elif empty_since is None:
            empty_since = clock()
            if rule.limit is not None:
                log.info("no page is open; stopping in %g s unless one connects", rule.limit)
        if rule.limit is not None and empty_since is not None:
            limit = rule.limit if seen_page else max(rule.limit, rule.first_page_wait)
            if clock() - empty_since >= limit:
                log.warning("stopping: %s", rule.reason)
                stop.set()
                return
        await asyncio.sleep(interval)


async def replies_in_flight(app: web.Application) -> int:
    """How many replies are being written right now (in any conversation)."""
    return app[chat_key].replies_in_flight


async def quit_handler(request: web.Request) -> web.StreamResponse:
    """POST /quit: stop the server; first ask when a reply is being written.

    The page gets HTML fragments; `htmxchat stop` asks for JSON.
    """
    stop = request.app.get(stop_key)
    if stop is None:
        raise web.HTTPServiceUnavailable(text="This server cannot be stopped from the page.")
    form = await request.post()
    confirmed = form.get("confirm") == "1"
    wants_json = "application/json" in request.headers.get(hdrs.ACCEPT, "")
    replies = await replies_in_flight(request.app)
    if replies and not confirmed:
        if wants_json:
            return web.json_response({"status": "confirm", "replies": replies})
        return web.Response(text=CONFIRM_FRAGMENT, content_type="text/html")
    who = "htmxchat stop was run" if form.get("by") == "command" else "Quit was pressed in the page"
    log.warning("stopping: %s (%d repl%s in flight)", who, replies, _ies(replies))
    # Answer first: the stop event closes the listener and every socket.
    asyncio.get_running_loop().call_later(0.1, stop.set)
    if wants_json:
        return web.json_response({"status": "quitting", "replies": replies})
    # Replace the whole page: the WebSocket element goes away, so nothing tries to reconnect.
    return web.Response(
        text=QUIT_PAGE,
        content_type="text/html",
        headers={"HX-Retarget": "body", "HX-Reswap": "innerHTML"},
    )


def _ies(count: int) -> str:
    return "y" if count == 1 else "ies"


def about(data_dir: Path, log_dir: Path) -> dict[str, str]:
    """What the page's About text shows."""
    return {
        "version": __version__,
        "data_dir": str(data_dir),
        "log_file": str(log_dir / LOG_FILENAME),
    }


def setup(app: web.Application) -> None:
    """Register POST /quit and the About text (call after the Jinja environment exists)."""
    settings = app[settings_key]
    aiohttp_jinja2.get_env(app).globals["about"] = about(settings.data_dir, settings.log_dir)
    app.router.add_post("/quit", quit_handler, name="quit")


def quit_request_body(confirm: bool) -> bytes:
    """The form body `htmxchat stop` posts."""
    return b"confirm=1" if confirm else b""


def parse_quit_answer(body: bytes) -> tuple[str, int]:
    """(status, replies in flight) from a JSON answer of POST /quit."""
    data = json.loads(body)
    return str(data["status"]), int(data["replies"])
