"""The request guard (token, Host and Origin checks) and the security headers.

Listening on 127.0.0.1 is not a boundary: web pages the user visits can
reach it (cross-site WebSocket hijacking, DNS rebinding, simple cross-site POSTs) and so can
every other account on the machine. Three layers, each stopping a different attack:

* a random token, kept 0600 in the data dir and exchanged for an HttpOnly cookie, required on
  every request (stops other local users and anything without the token);
* a Host allow-list with the exact port (stops DNS rebinding: the rebound name is not ours);
* an exact Origin allow-list on the WebSocket handshake and on every state-changing request
  (stops CSWSH, including from another server on 127.0.0.1 whose pages get our cookie).
"""

from __future__ import annotations

import hashlib
import hmac
import html
import ipaddress
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import hdrs, web
from aiohttp.abc import AbstractAccessLogger
from yarl import URL

from htmxchat.access import TOKEN_PARAM
from htmxchat.keys import settings_key, token_key

log = logging.getLogger(__name__)

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
# Methods that change nothing; every other method must carry our own Origin.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# Strict SameSite: other sites cannot even navigate the user to a logged-in page. The first
# load through the launcher's file:// page still works (checked in Chromium by
# tests/test_browser_security.py) because that case gets a same-origin meta refresh instead
# of an HTTP redirect (see _login).
COOKIE_SAMESITE = "Strict"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def cookie_name(port: int) -> str:
    """Per-port name: browsers share cookies across ports, two servers must not collide."""
    return f"htmxchat-{port}"


def cookie_value(token: str) -> str:
    """What the cookie holds: derived from the token, so the cookie jar never holds it."""
    return hmac.new(token.encode(), b"htmxchat session v1", hashlib.sha256).hexdigest()


def same_secret(given: str, expected: str) -> bool:
    """Constant-time comparison (Jupyter uses ==; loopback timing has little jitter)."""
    return hmac.compare_digest(
        given.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass")
    )


# -- the request guard -----------------------------------------------------------------------


def _is_unspecified(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_unspecified
    except ValueError:
        return False


def _host_form(host: str) -> str:
    name = host.strip("[]").lower()
    return f"[{name}]" if ":" in name else name


@dataclass(frozen=True, slots=True)
class Policy:
    """Which Host and Origin values a request on `port` may carry."""

    port: int
    configured_host: str

    def allowed_hosts(self) -> set[str]:
        names = {*LOOPBACK_NAMES, _host_form(self.configured_host)}
        hosts = {f"{name}:{self.port}" for name in names}
        if self.port == 80:  # browsers leave the default port out of Host and Origin
            hosts |= names
        return hosts

    def host_ok(self, host: str) -> bool:
        """Host header check (exact, case-insensitive); empty or 0.0.0.0 never passes."""
        host = host.lower()
        if host in self.allowed_hosts() and not _is_unspecified(host.rsplit(":", 1)[0]):
            return True
        if _is_unspecified(self.configured_host):
            # Bound to every interface (--allow-remote): any IP literal on our port. A DNS
            # rebinding attack needs a name, so IP literals are safe to accept.
            name, _, port = host.rpartition(":")
            try:
                address = ipaddress.ip_address(name.strip("[]"))
            except ValueError:
                return False
            return port == str(self.port) and not address.is_unspecified
        return False

    def origin_ok(self, origin: str, host: str) -> bool:
        """Exact origin: scheme, name and port (no prefix or suffix matching, no `null`)."""
        origin = origin.lower()
        if origin in {f"http://{h}" for h in self.allowed_hosts()}:
            return True
        return _is_unspecified(self.configured_host) and origin == f"http://{host.lower()}"


def _local_port(request: web.Request) -> int | None:
    # The port the connection really arrived on (not attacker-controlled, unlike Host).
    transport = request.transport
    if transport is None:
        return None
    sockname = transport.get_extra_info("sockname")
    if isinstance(sockname, tuple) and len(sockname) >= 2 and isinstance(sockname[1], int):
        return sockname[1]
    return None


def _forbidden(why: str) -> web.HTTPForbidden:
    return web.HTTPForbidden(text=why)


NO_TOKEN = (
    "This htmxchat needs its access link. Open the link htmxchat printed when it started "
    "(it contains ?token=…), or start htmxchat again to open it."
)


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Host, Origin and token checks for every request, before any handler runs."""
    settings = request.app[settings_key]
    port = _local_port(request)
    if port is None:
        raise _forbidden("Unknown connection.")
    policy = Policy(port, settings.host)
    # The raw header: request.host falls back to the socket address when Host is missing.
    host = request.headers.get(hdrs.HOST, "")
    if not policy.host_ok(host):
        log.warning("refused a request for host %r (DNS rebinding?)", host[:100])
        raise _forbidden("This server only answers on its own address.")
    origin = request.headers.get(hdrs.ORIGIN)
    is_websocket = request.headers.get(hdrs.UPGRADE, "").lower() == "websocket"
    if origin is None:
        if is_websocket or request.method not in SAFE_METHODS:
            # Browsers always send Origin on these; its absence is a non-browser or a trick.
            raise _forbidden("Requests that change something must come from htmxchat's page.")
    elif not policy.origin_ok(origin, host):
        log.warning("refused a request from origin %r (cross-site?)", origin[:100])
        raise _forbidden("Requests from other sites are not allowed.")
    fetch_site = request.headers.get("Sec-Fetch-Site", "")
    if fetch_site in ("cross-site", "same-site") and (
        request.headers.get("Sec-Fetch-Mode", "") != "navigate"
    ):
        # Another site (or another port: same-site) embedding or fetching our URLs.
        raise _forbidden("Requests from other sites are not allowed.")

    token = request.app[token_key]
    given = request.query.getall(TOKEN_PARAM, [])
    if given:
        if request.method not in ("GET", "HEAD") or not all(same_secret(t, token) for t in given):
            raise _forbidden("This access link is not valid (htmxchat may have a new one).")
        return _login(request, port, token)
    if _authorized(request, port, token):
        return await handler(request)
    raise _forbidden(NO_TOKEN)


def _authorized(request: web.Request, port: int, token: str) -> bool:
    scheme, _, credential = request.headers.get(hdrs.AUTHORIZATION, "").partition(" ")
    if scheme.lower() in ("bearer", "token") and credential:
        return same_secret(credential.strip(), token)
    cookie = request.cookies.get(cookie_name(port))
    return cookie is not None and same_secret(cookie, cookie_value(token))


def _login(request: web.Request, port: int, token: str) -> web.StreamResponse:
    """Swap the token for a cookie and redirect to the same URL without the token."""
    # Collapse leading slashes and backslashes: "//evil.example" would be an open redirect
    # (GHSA-r726-vmfq-j9j3 in Jupyter).
    path = "/" + request.rel_url.path.lstrip("/\\")
    query = [(k, v) for k, v in request.rel_url.query.items() if k != TOKEN_PARAM]
    target = str(URL.build(path=path, query=query))
    if request.headers.get("Sec-Fetch-Site") in ("cross-site", "same-site"):
        # Arriving from elsewhere (the launcher's file:// page counts as cross-site): a
        # browser would not send the Strict cookie on an HTTP redirect in that chain, but it
        # does on a navigation started by our own page.
        quoted = html.escape(target, quote=True)
        response = web.Response(
            text=f'<!doctype html><meta http-equiv="refresh" content="0;url={quoted}">'
            # Without an icon of its own the browser would ask for /favicon.ico (a 404).
            '<link rel="icon" href="/static/icon.svg" type="image/svg+xml">'
            f'<title>htmxchat</title><a href="{quoted}">Continue to htmxchat</a>',
            content_type="text/html",
        )
    else:
        response = web.Response(status=303, headers={hdrs.LOCATION: target})
    response.set_cookie(
        cookie_name(port),
        cookie_value(token),
        path="/",
        httponly=True,
        samesite=COOKIE_SAMESITE,
    )
    return response


def content_security_policy(host: str) -> str:
    """A strict policy: nothing inline, nothing from elsewhere, the WebSocket to us only.

    blob: images are the page's own previews of files about to be attached.
    """
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
        f"connect-src 'self' ws://{host}; font-src 'self'; object-src 'none'; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )


async def add_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Security headers on every response (error pages and redirects included)."""
    host = request.headers.get(hdrs.HOST, "")
    port = _local_port(request)
    if port is None or not Policy(port, request.app[settings_key].host).host_ok(host):
        host = f"127.0.0.1:{port or 0}"  # never echo a Host we refused
    headers = response.headers
    headers["Content-Security-Policy"] = content_security_policy(host.lower())
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Referrer-Policy"] = "no-referrer"
    headers["Cross-Origin-Opener-Policy"] = "same-origin"
    headers["Cross-Origin-Resource-Policy"] = "same-origin"
    if not request.path.startswith("/static/"):
        # Pages hold private chats, and the first URL carries the token.
        headers["Cache-Control"] = "no-store"


class ScrubbedAccessLogger(AbstractAccessLogger):
    """Access log without query strings or headers: the token must never be logged."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info(
            "%s %s %s %.1fms", request.method, request.path, response.status, time * 1000
        )


def setup(app: web.Application, token: str) -> None:
    """Install the guard (inside the error-page middleware) and the headers."""
    app[token_key] = token
    app.middlewares.append(guard)
    app.on_response_prepare.append(add_headers)
