"""Run the app: bind, announce the URL, open the browser, shut down cleanly on a signal."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import logging
import os
import secrets
import signal
import socket
import sys
import threading
import webbrowser
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from htmxchat import logfile
from htmxchat.access import load_or_create_token, login_url, write_open_file
from htmxchat.app import create_app
from htmxchat.app_window import AppWindow, open_app_window, remove_redirect
from htmxchat.config import PREFERRED_PORT, Settings
from htmxchat.guard import ScrubbedAccessLogger
from htmxchat.instance import RunningServer, remove_runtime_file, write_runtime_file
from htmxchat.keys import chat_key, choice_key
from htmxchat.lifecycle import exit_rule, stop_key, watch_pages
from htmxchat.limits import HEADER_TIMEOUT
from htmxchat.store import StoreError

log = logging.getLogger(__name__)

# Ctrl+C must end the process within a few seconds even with replies in flight.
SHUTDOWN_TIMEOUT = 2.0

BrowserOpener = Callable[[str], bool]


class PortInUseError(Exception):
    """The port asked for with --port is taken."""


class NotSavedError(Exception):
    """The server stopped, but the chat log could not be saved completely (e.g. full disk)."""


def bind_socket(host: str, port: int | None) -> socket.socket:
    """Bind a listening socket. `port=None`: the preferred port, else any free one."""
    if port is not None:
        return _bind(host, port)
    try:
        return _bind(host, PREFERRED_PORT)
    except PortInUseError:
        sock = _bind(host, 0)
        print(
            f"Port {PREFERRED_PORT} is busy; using port {sock.getsockname()[1]} instead.",
            file=sys.stderr,
            flush=True,
        )
        return sock


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host.strip("[]"), port))
        sock.listen(1024)  # a burst of tabs (or a load test) must not see refused SYNs
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortInUseError(
                f"Port {port} is already in use. Choose another with --port, "
                "or use --port 0 to let the system pick a free one."
            ) from None
        raise
    return sock


def url_for(host: str, port: int) -> str:
    """The URL people open (IPv6 hosts in brackets; loopback for an every-interface bind,
    since browsers block 0.0.0.0 and the Host check refuses it)."""
    if host.strip("[]") in ("0.0.0.0", "::"):
        host = "127.0.0.1" if host == "0.0.0.0" else "::1"
    shown = f"[{host.strip('[]')}]" if ":" in host else host
    return f"http://{shown}:{port}/"


def open_in_browser(
    url: str, opener: BrowserOpener = webbrowser.open, *, shown: str | None = None
) -> None:
    """Open `url`; when no browser can be opened, say so, naming `shown` (or `url`)."""
    try:
        opened = opener(url)
    except Exception as exc:  # any browser launcher failure is only worth a message
        log.debug("browser launch failed: %r", exc)
        opened = False
    if not opened:
        print(
            f"Could not open a browser; open {shown or url} yourself.", file=sys.stderr, flush=True
        )


def open_login(data_dir: Path, url: str, opener: BrowserOpener = webbrowser.open) -> None:
    """Open the tokenized `url` through a 0600 redirect file, never on a command line
    (browser launchers pass the URL as an argument, which `ps` shows to every user)."""
    target = write_open_file(data_dir, url).as_uri()
    open_in_browser(target, opener, shown=url)


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
    opener: BrowserOpener = webbrowser.open,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve until `stop` is set (SIGINT/SIGTERM, Quit, the app window's grace period),
    then close sockets and save replies. Raises NotSavedError when saving failed."""
    stop = stop or asyncio.Event()
    sock = bind_socket(settings.host, settings.port)
    instance = secrets.token_hex(16)
    token = load_or_create_token(settings.data_dir)
    app = create_app(settings, instance_id=instance, token=token)
    app[stop_key] = stop  # POST /quit sets it
    # Requests are logged only with -v, and never with their query (it may hold the token).
    access_log = logging.getLogger("aiohttp.access") if log.isEnabledFor(logging.DEBUG) else None
    runner = make_runner(app, access_log)
    loop = asyncio.get_running_loop()
    window: AppWindow | None = None
    watcher: asyncio.Task[None] | None = None
    try:
        await runner.setup()
        await web.SockSite(runner, sock).start()
        port = sock.getsockname()[1]
        url = url_for(settings.host, port)
        write_runtime_file(settings.data_dir, RunningServer(url, port, os.getpid(), instance))
        log.info("serving %s on %s (pid %d)", settings.data_dir, url, os.getpid())
        choice = app[choice_key]
        print(choice.description, flush=True)
        if choice.problem:
            print(f"Warning: {choice.problem}", file=sys.stderr, flush=True)
        print(login_url(url, token), flush=True)
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):  # not on Windows: Ctrl+C still works
                loop.add_signal_handler(signum, stop.set)
        if settings.open_browser and settings.app:
            window = open_window(settings.data_dir, login_url(url, token), opener)
        elif settings.open_browser:
            _open_login_in_background(settings.data_dir, login_url(url, token), opener)
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
        problem = await _clean_up(runner, watcher)
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


def _open_login_in_background(data_dir: Path, url: str, opener: BrowserOpener) -> None:
    # A daemon thread, never awaited: a terminal browser (w3m over ssh) or a slow launcher
    # must not hold up serving or shutting down.
    threading.Thread(
        target=open_login, args=(data_dir, url, opener), name="open-browser", daemon=True
    ).start()


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
        _open_login_in_background(data_dir, url, opener)
    return window
