"""Access token, Host and Origin checks, security headers ."""

from __future__ import annotations

import asyncio
import logging
import os
import stat
from html.parser import HTMLParser
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from htmxchat.access import TOKEN_FILENAME, load_or_create_token, write_open_file
from htmxchat.app import create_app
from htmxchat.config import Settings
from htmxchat.guard import ScrubbedAccessLogger, cookie_name, cookie_value, same_secret
from htmxchat.ids import new_id
from htmxchat.keys import settings_key
from htmxchat.store import ChatStore
from tests.helpers import ScriptedBot

PROTECTED = ["/", "/healthz", "/static/app.css", "/static/vendor/htmx-2.0.11.min.js", "/nope"]


@pytest.fixture
async def app(settings: Settings, bot: ScriptedBot, store: ChatStore) -> web.Application:
    return create_app(settings, bot=bot, store=store, coalesce_window=0.0)


@pytest.fixture
async def anonymous(aiohttp_client, aiohttp_server, app: web.Application) -> TestClient:
    """A client without the cookie that still sends the page's own Origin."""
    server = await aiohttp_server(app)
    return await aiohttp_client(server, headers={"Origin": f"http://127.0.0.1:{server.port}"})


async def raw_request(port: int, head: str) -> tuple[int, str]:
    """Send a raw HTTP request (no client normalisation); the status and the whole answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head.encode("latin-1"))
    await writer.drain()
    data = await reader.read()
    writer.close()
    await writer.wait_closed()
    text = data.decode("latin-1")
    return int(text.split(" ", 2)[1]), text


async def stored_conversations(store: ChatStore) -> int:
    return len(await store.conversations())


# -- the token ---------------------------------------------------------------------------------


def test_token_file_is_private_stable_and_replaced_when_exposed(data_dir: Path) -> None:
    token = load_or_create_token(data_dir)
    path = data_dir / TOKEN_FILENAME
    assert len(token) >= 43  # 256 bits, URL-safe
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_token(data_dir) == token  # open tabs keep working after a restart
    os.chmod(path, 0o644)  # someone else may have read it: it is spent
    fresh = load_or_create_token(data_dir)
    assert fresh != token and stat.S_IMODE(path.stat().st_mode) == 0o600


def test_secrets_compare_in_constant_time_and_never_crash() -> None:
    assert same_secret("abc", "abc") and not same_secret("abd", "abc")
    assert not same_secret("ab\udcff", "abc")  # non-ASCII from an attacker: False, no TypeError


@pytest.mark.parametrize("path", [*PROTECTED, "/c/0000000000aaaaaaaaaaaa"])
async def test_every_route_needs_the_token(anonymous: TestClient, path: str) -> None:
    response = await anonymous.get(path, allow_redirects=False)
    assert response.status == 403
    assert "Set-Cookie" not in response.headers


async def test_websocket_needs_the_token_and_nothing_is_stored(
    anonymous: TestClient, bot: ScriptedBot, store: ChatStore
) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await anonymous.ws_connect("/ws")
    assert refused.value.status == 403
    assert bot.histories == [] and await stored_conversations(store) == 0


async def test_wrong_token_is_refused(anonymous: TestClient, token: str) -> None:
    for wrong in ("x", token[:-1], token + "x", token.upper()):
        response = await anonymous.get(f"/?token={wrong}", allow_redirects=False)
        assert response.status == 403
        assert "Set-Cookie" not in response.headers
    # one right and one wrong copy is still wrong
    response = await anonymous.get(f"/?token={token}&token=x", allow_redirects=False)
    assert response.status == 403


async def test_token_is_exchanged_for_a_cookie_and_dropped_from_the_url(
    anonymous: TestClient, token: str
) -> None:
    port = anonymous.port
    response = await anonymous.get(
        f"/c/0000000000aaaaaaaaaaaa?a=1&token={token}&b=2", allow_redirects=False
    )
    assert response.status == 303
    assert response.headers["Location"] == "/c/0000000000aaaaaaaaaaaa?a=1&b=2"
    assert response.headers["Cache-Control"] == "no-store"
    morsel = response.cookies[cookie_name(port)]
    assert str(port) in morsel.key
    assert morsel.value == cookie_value(token) and token not in morsel.value
    assert morsel["httponly"] and morsel["samesite"] == "Strict" and morsel["path"] == "/"
    page = await anonymous.get("/c/0000000000aaaaaaaaaaaa")
    assert page.status == 200 and 'id="app"' in await page.text()
    ws = await anonymous.ws_connect("/ws")  # the cookie opens the socket too
    await ws.close()


async def test_login_redirect_is_never_an_open_redirect(anonymous: TestClient, token: str) -> None:
    for path in ("//evil.example/", "/\\evil.example/", "///evil.example"):
        status, answer = await raw_request(
            anonymous.port,
            f"GET {path}?token={token} HTTP/1.1\r\nHost: 127.0.0.1:{anonymous.port}\r\n"
            "Connection: close\r\n\r\n",
        )
        location = next(
            line.split(":", 1)[1].strip()
            for line in answer.splitlines()
            if line.lower().startswith("location:")
        )
        assert status == 303 and location.startswith("/") and not location.startswith(("//", "/\\"))


async def test_bearer_token_works_for_scripts(anonymous: TestClient, token: str) -> None:
    ok = await anonymous.get("/healthz", headers={"Authorization": f"Bearer {token}"})
    assert ok.status == 200 and (await ok.json())["app"] == "htmxchat"
    wrong = await anonymous.get("/healthz", headers={"Authorization": "Bearer nope"})
    assert wrong.status == 403


async def test_cookie_of_another_instance_or_port_is_refused(
    tmp_path: Path, anonymous: TestClient, token: str
) -> None:
    other_dir = tmp_path / "other"
    other_dir.mkdir()
    other_token = load_or_create_token(other_dir)
    assert other_token != token
    name = cookie_name(anonymous.port)
    foreign = await anonymous.get("/healthz", headers={"Cookie": f"{name}={other_token}"})
    assert foreign.status == 403
    raw_token = await anonymous.get("/healthz", headers={"Cookie": f"{name}={token}"})
    assert raw_token.status == 403  # the cookie holds a derived value, not the token
    other_port = cookie_name(anonymous.port + 1)
    moved = await anonymous.get(
        "/healthz", headers={"Cookie": f"{other_port}={cookie_value(token)}"}
    )
    assert moved.status == 403
    right = await anonymous.get("/healthz", headers={"Cookie": f"{name}={cookie_value(token)}"})
    assert right.status == 200


async def test_token_never_reaches_the_logs(
    aiohttp_client,
    aiohttp_server,
    app: web.Application,
    data_dir: Path,
    token: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    server = await aiohttp_server(
        app, access_log_class=ScrubbedAccessLogger, access_log=logging.getLogger("aiohttp.access")
    )
    client = await aiohttp_client(server, headers={"Origin": f"http://127.0.0.1:{server.port}"})
    await client.get(f"/?token={token}")
    await client.get(f"/?token={token}x")
    await client.get(f"/c/{new_id()}?q=1&token={token}")
    ws = await client.ws_connect("/ws")
    await ws.close()
    access = [r for r in caplog.records if r.name == "aiohttp.access"]
    assert len(access) >= 4, "the access log must be on for this test to mean anything"
    assert token not in caplog.text
    assert cookie_value(token) not in caplog.text


# -- Host and Origin ---------------------------------------------------------------------------

BAD_HOSTS = [
    "attacker.example:{port}",
    ":{port}",
    "",
    "0.0.0.0:{port}",
    "127.0.0.1.nip.io:{port}",
    "localhost.:{port}",
    "localhost.attacker.example:{port}",
    "127.0.0.1:{other}",
    "127.0.0.1",
    "127.0.0.2:{port}",
    "[::1]:{port}0",
]


@pytest.mark.parametrize("host", BAD_HOSTS)
async def test_foreign_host_is_refused_even_with_the_cookie(client: TestClient, host: str) -> None:
    host = host.format(port=client.port, other=client.port + 1)
    for path in ("/", "/healthz", "/static/app.css"):
        response = await client.get(path, headers={"Host": host}, allow_redirects=False)
        assert response.status == 403, (host, path)
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect("/ws", headers={"Host": host})
    assert refused.value.status == 403


async def test_token_link_on_a_rebound_host_is_refused(anonymous: TestClient, token: str) -> None:
    response = await anonymous.get(
        f"/?token={token}", headers={"Host": f"attacker.example:{anonymous.port}"}
    )
    assert response.status == 403 and "Set-Cookie" not in response.headers


async def test_missing_host_is_refused(client: TestClient, token: str) -> None:
    status, _ = await raw_request(
        client.port, f"GET /healthz HTTP/1.0\r\nAuthorization: Bearer {token}\r\n\r\n"
    )
    assert status == 403
    status, _ = await raw_request(
        client.port,
        f"GET /healthz HTTP/1.0\r\nHost: 127.0.0.1:{client.port}\r\n"
        f"Authorization: Bearer {token}\r\n\r\n",
    )
    assert status == 200


@pytest.mark.parametrize("host", ["localhost:{port}", "LOCALHOST:{port}", "[::1]:{port}"])
async def test_loopback_names_are_accepted(client: TestClient, host: str) -> None:
    response = await client.get("/healthz", headers={"Host": host.format(port=client.port)})
    assert response.status == 200


BAD_ORIGINS = [
    "http://evil.example",
    "null",
    "",
    "http://127.0.0.1:{other}",
    "http://127.0.0.1",
    "http://127.0.0.1:{port}.evil.example",
    "http://127.0.0.1:{port}0",
    "http://localhost.evil.example:{port}",
    "https://127.0.0.1:{port}",
    "http://127.0.0.1:{port}/",
    "file://",
]


@pytest.mark.parametrize("origin", BAD_ORIGINS)
async def test_websocket_from_another_origin_is_refused(
    client: TestClient, bot: ScriptedBot, store: ChatStore, origin: str
) -> None:
    origin = origin.format(port=client.port, other=client.port + 1)
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect("/ws", headers={"Origin": origin})
    assert refused.value.status == 403
    assert bot.histories == [] and await stored_conversations(store) == 0


async def test_websocket_without_origin_is_refused(
    aiohttp_client, aiohttp_server, app: web.Application, token: str
) -> None:
    server = await aiohttp_server(app)
    cookie = {cookie_name(server.port): cookie_value(token)}
    client = await aiohttp_client(server, cookies=cookie)
    assert (await client.get("/healthz")).status == 200  # the cookie alone is fine for a GET
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect("/ws")
    assert refused.value.status == 403


@pytest.mark.parametrize("origin", ["http://localhost:{port}", "http://[::1]:{port}"])
async def test_websocket_from_a_loopback_alias_is_accepted(client: TestClient, origin: str) -> None:
    ws = await client.ws_connect("/ws", headers={"Origin": origin.format(port=client.port)})
    await ws.close()


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
async def test_state_changing_requests_need_our_origin(client: TestClient, method: str) -> None:
    path = "/healthz"  # GET only: with our origin these reach the router and get 405
    foreign = await client.request(
        method, path, headers={"Origin": "http://evil.example"}, data=b"message=hi"
    )
    assert foreign.status == 403
    no_origin = await client.request(
        method, path, headers={"Origin": ""}, skip_auto_headers=["Origin"], data=b"x"
    )
    assert no_origin.status == 403
    # with our own origin the request gets past the guard to the router (no such route)
    ours = await client.request(method, path, data=b"message=hi")
    assert ours.status == 405


async def test_requests_without_any_origin_header_are_refused_when_they_change_things(
    aiohttp_client, aiohttp_server, app: web.Application, token: str
) -> None:
    server = await aiohttp_server(app)
    client = await aiohttp_client(server, cookies={cookie_name(server.port): cookie_value(token)})
    response = await client.post("/", data="message=hi", headers={"Content-Type": "text/plain"})
    assert response.status == 403


async def test_cross_site_fetch_metadata_is_refused(client: TestClient) -> None:
    for site in ("cross-site", "same-site"):
        embedded = await client.get(
            "/static/app.js", headers={"Sec-Fetch-Site": site, "Sec-Fetch-Mode": "no-cors"}
        )
        assert embedded.status == 403
    navigation = await client.get(
        "/healthz", headers={"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"}
    )
    assert navigation.status == 200
    same = await client.get(
        "/static/app.js", headers={"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "no-cors"}
    )
    assert same.status == 200


# -- headers -----------------------------------------------------------------------------------


def check_security_headers(response: aiohttp.ClientResponse, port: int, *, page: bool) -> None:
    csp = response.headers["Content-Security-Policy"]
    directives = {d.split()[0]: d.split()[1:] for d in csp.split("; ")}
    assert directives["default-src"] == ["'self'"]
    assert directives["script-src"] == ["'self'"]
    assert directives["style-src"] == ["'self'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert directives["connect-src"] == ["'self'", f"ws://127.0.0.1:{port}"]
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    if page:
        assert response.headers["Cache-Control"] == "no-store"


async def test_security_headers_on_pages_errors_and_static(
    client: TestClient, anonymous: TestClient
) -> None:
    html = {"Accept": "text/html"}
    page = await client.get(f"/c/{new_id()}", headers=html)
    assert page.status == 200
    check_security_headers(page, client.port, page=True)
    missing = await client.get("/c/not-an-id", headers=html)
    assert missing.status == 404
    check_security_headers(missing, client.port, page=True)
    refused = await anonymous.get("/", headers=html)
    assert refused.status == 403 and "?token=" in await refused.text()
    check_security_headers(refused, anonymous.port, page=True)
    static = await client.get("/static/app.js")
    assert static.status == 200
    check_security_headers(static, client.port, page=False)
    rebound = await client.get("/", headers={"Host": f"evil.example:{client.port}"})
    assert "evil.example" not in rebound.headers["Content-Security-Policy"]


class _Hygiene(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []
        self.in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {name for name, _ in attrs}
        if tag == "script" and "src" not in names:
            self.problems.append("inline <script>")
        if tag == "style":
            self.problems.append("<style>")
        for name in names:
            if name == "style" or name.startswith(("on", "hx-on", "data-hx-on")):
                self.problems.append(f"{tag} {name}=")


async def test_page_needs_nothing_inline(client: TestClient) -> None:
    text = await (await client.get(f"/c/{new_id()}")).text()
    parser = _Hygiene()
    parser.feed(text)
    assert parser.problems == []
    assert '"allowEval":false' in text and '"allowScriptTags":false' in text


def test_open_file_redirects_without_a_command_line_token(data_dir: Path, token: str) -> None:
    url = f"http://127.0.0.1:1234/?token={token}"
    path = write_open_file(data_dir, url)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert f'content="0;url={url}"' in path.read_text()


async def test_login_arriving_from_another_site_refreshes_from_our_own_page(
    anonymous: TestClient, token: str
) -> None:
    # The launcher's file:// page is another site: a Strict cookie would not survive an HTTP
    # redirect in that navigation, so the answer is a page of ours that moves on by itself.
    response = await anonymous.get(
        f"/?token={token}&x=<b>",
        headers={"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"},
        allow_redirects=False,
    )
    assert response.status == 200 and "Location" not in response.headers
    assert response.cookies[cookie_name(anonymous.port)].value == cookie_value(token)
    text = await response.text()
    assert '<meta http-equiv="refresh" content="0;url=/?x=%3Cb%3E">' in text
    assert token not in text
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    "path",
    ["/static/../pyproject.toml", "/static/%2e%2e/pyproject.toml", "/static/..%5cpyproject.toml"],
)
async def test_static_files_never_escape_their_folder(client: TestClient, path: str) -> None:
    cookie = f"{cookie_name(client.port)}={cookie_value(load_or_create_token(client_dir(client)))}"
    status, answer = await raw_request(
        client.port,
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{client.port}\r\nCookie: {cookie}\r\n"
        "Connection: close\r\n\r\n",
    )
    assert status in (403, 404) and "[project]" not in answer


def client_dir(client: TestClient) -> Path:
    app = client.app
    assert app is not None
    return app[settings_key].data_dir
