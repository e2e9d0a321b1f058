"""Bind the port, print the URL and open the browser: what happens before the server exists.

Nothing here imports aiohttp or the chat code, so the URL is printed, and the browser starts,
within a few tens of milliseconds of the command. The listening socket queues connections
until the server is ready to accept them, so the URL works as soon as it is printed: the
browser's first request simply waits the few hundred milliseconds the server still needs
(docs/design.md, "Start-up").
"""

from __future__ import annotations

import errno
import logging
import socket
import sys
import threading
import webbrowser
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from htmxchat.access import load_or_create_token, login_url, write_open_file
from htmxchat.config import PREFERRED_PORT, Settings

log = logging.getLogger(__name__)

BrowserOpener = Callable[[str], bool]


class PortInUseError(Exception):
    """The port asked for with --port is taken."""


@dataclass(frozen=True)
class Listener:
    """A bound, listening socket, its URL and the data dir's access token."""

    sock: socket.socket
    url: str
    token: str

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    @property
    def login_url(self) -> str:
        return login_url(self.url, self.token)


def announce(settings: Settings, opener: BrowserOpener = webbrowser.open) -> Listener:
    """Bind, print the login URL, and start the default browser on it (unless --no-browser
    or --app: an app window is opened by the server once it serves, since it is closed
    with the server). Raises PortInUseError or OSError when the address cannot be bound."""
    sock = bind_socket(settings.host, settings.port)
    try:
        token = load_or_create_token(settings.data_dir)
    except BaseException:
        sock.close()
        raise
    listener = Listener(sock, url_for(settings.host, sock.getsockname()[1]), token)
    print(listener.login_url, flush=True)
    if settings.open_browser and not settings.app:
        open_login_in_background(settings.data_dir, listener.login_url, opener)
    return listener


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


def open_login_in_background(data_dir: Path, url: str, opener: BrowserOpener) -> None:
    """`open_login` in a daemon thread, never awaited: a terminal browser (w3m over ssh) or
    a slow launcher must not hold up serving or shutting down."""
    threading.Thread(
        target=open_login, args=(data_dir, url, opener), name="open-browser", daemon=True
    ).start()
