"""Run the app on the announced socket, handle signals, and shut down cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import secrets
import signal
import sys
import webbrowser
from pathlib import Path

from aiohttp import web

from htmxchat import logfile
from htmxchat.app import create_app
from htmxchat.app_window import AppWindow, open_app_window, remove_redirect
from htmxchat.config import Settings
from htmxchat.guard import ScrubbedAccessLogger
from htmxchat.instance import RunningServer, remove_runtime_file, write_runtime_file
from htmxchat.keys import chat_key, choice_key
from htmxchat.launch import BrowserOpener, Listener, announce, open_login_in_background
from htmxchat.lifecycle import exit_rule, stop_key, watch_pages
from htmxchat.limits import HEADER_TIMEOUT
from htmxchat.store import StoreError

log = logging.getLogger(__name__)

# Ctrl+C must end the process within a few seconds even with replies in flight.
SHUTDOWN_TIMEOUT = 2.0


class NotSavedError(Exception):
    """The server stopped, but the chat log could not be saved completely (e.g. full disk)."""


def make_runner(
    app: web.Application,
    access_log: logging.Logger | None,
    *,
    header_timeout: float = HEADER_TIMEOUT,
) -> web.AppRunner:
    """The app's runner. aiohttp's keep-alive timer also runs while a connection sends its
    first request's headers, so it is what cuts off a client that sends them slowly (or
    never), before any token is checked (docs/limits.md)."""
    return web.AppRunner(
        app,
        access_log=access_log,
        access_log_class=ScrubbedAccessLogger,
        shutdown_timeout=SHUTDOWN_TIMEOUT,
        keepalive_timeout=header_timeout,
    )


def stopping_text(replies: int, *, again: bool = False) -> str:
    """What the terminal says when stopping begins, and on another Ctrl+C meanwhile: saving
    replies only when some are being written, since that is what can take a moment."""
    saving = f"saving {replies} repl{'y' if replies == 1 else 'ies'} being written"
    if not again:
        return f"Stopping htmxchat: {saving}…" if replies else "Stopping htmxchat…"
    if replies:
        return f"Still stopping: {saving}…"
    return "Still stopping: closing the open pages and the chat log…"


def _say_stopping(app: web.Application, *, again: bool = False) -> None:
    replies = app[chat_key].replies_in_flight
    print(stopping_text(replies, again=again), file=sys.stderr, flush=True)


async def serve(
    settings: Settings,
    *,
    listener: Listener | None = None,
    opener: BrowserOpener = webbrowser.open,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve on `listener` (announced by the caller; by default bound and announced here)
    until `stop` is set (SIGINT/SIGTERM, Quit, the app window's grace period), then close
    sockets and save replies. Raises NotSavedError when saving failed."""
    stop = stop or asyncio.Event()
    listener = listener or announce(settings, opener)
    sock, url, token = listener.sock, listener.url, listener.token
    instance = secrets.token_hex(16)
    loop = asyncio.get_running_loop()
    window: AppWindow | None = None
    watcher: asyncio.Task[None] | None = None
    runner: web.AppRunner | None = None
    try:
        app = create_app(settings, instance_id=instance, token=token)
        app[stop_key] = stop  # POST /quit sets it
        # Requests are logged only with -v, never with their query (it may hold the token).
        debug = log.isEnabledFor(logging.DEBUG)
        runner = make_runner(app, logging.getLogger("aiohttp.access") if debug else None)
        await runner.setup()
        await web.SockSite(runner, sock).start()
        port = listener.port
        write_runtime_file(settings.data_dir, RunningServer(url, port, os.getpid(), instance))
        log.info("serving %s on %s (pid %d)", settings.data_dir, url, os.getpid())
        choice = app[choice_key]
        print(choice.description, flush=True)
        if choice.problem:
            print(f"Warning: {choice.problem}", file=sys.stderr, flush=True)
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):  # not on Windows: Ctrl+C still works
                loop.add_signal_handler(signum, stop.set)
        if settings.open_browser and settings.app:
            window = open_window(settings.data_dir, listener.login_url, opener)
        rule = exit_rule(settings.app, settings.app_grace, settings.idle_exit)
        if rule.limit is not None:
            watcher = asyncio.create_task(watch_pages(app, stop, rule))
        await stop.wait()
        # Problems while saving go to the log file; the launcher sums them up in one line.
        logfile.quiet_terminal(True)
        _say_stopping(app)
        for signum in (signal.SIGINT, signal.SIGTERM):
            # A second Ctrl+C while replies are being saved must not interrupt the saving.
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signum, functools.partial(_say_stopping, app, again=True))
    finally:
        problem = await _clean_up(runner, watcher) if runner is not None else None
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(signum)
        sock.close()
        remove_runtime_file(settings.data_dir, instance)
        remove_redirect(settings.data_dir)
        if window is not None:
            await asyncio.to_thread(window.close)
        log.info("stopped")
    if problem:
        raise NotSavedError(problem)


async def _clean_up(runner: web.AppRunner, watcher: asyncio.Task[None] | None) -> str | None:
    """Stop the watcher and the app (which saves replies); what could not be saved, if any."""
    if watcher is not None:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
    try:
        await runner.cleanup()
    except (StoreError, OSError) as exc:  # e.g. a full disk: the chat log could not be saved
        log.exception("saving the chat log failed while stopping")
        return str(exc)
    return None


def open_window(data_dir: Path, url: str, opener: BrowserOpener) -> AppWindow | None:
    """An app window on `url`; without a suitable browser, the default browser instead."""
    window = open_app_window(data_dir, url)
    if window is None:
        print(
            "htmxchat: no Chrome, Chromium, Edge or Brave found for the app window (set "
            "HTMXCHAT_BROWSER to one); opening your default browser instead.",
            file=sys.stderr,
            flush=True,
        )
        open_login_in_background(data_dir, url, opener)
    return window
