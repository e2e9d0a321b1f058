"""The launcher and the token: printed URL, redirect file, restarts, remote binding, logs."""

from __future__ import annotations

import asyncio
import re
import socket
import stat
import urllib.error
import urllib.request
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from htmxchat import cli
from htmxchat.access import OPEN_FILENAME, TOKEN_FILENAME
from htmxchat.app import create_app
from htmxchat.config import Settings
from htmxchat.guard import Policy, cookie_name, cookie_value
from htmxchat.launch import Listener, bind_socket, url_for
from htmxchat.server import serve
from htmxchat.store import ChatStore
from tests.helpers import ScriptedBot, ServerProcess, run_cli


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def http_status(url: str, headers: dict[str, str] | None = None) -> int:
    """The status of one GET, redirects not followed."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.build_opener(_NoRedirect).open(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_printed_url_carries_the_token_and_the_files_are_private(tmp_path: Path) -> None:
    data_dir = tmp_path / "new-data-dir"
    server = ServerProcess(data_dir, "--port", "0")
    try:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/\?token=[\w-]{43,}", server.url)
        assert server.token == (data_dir / TOKEN_FILENAME).read_text().strip()
        assert stat.S_IMODE((data_dir / TOKEN_FILENAME).stat().st_mode) == 0o600
        assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
        assert stat.S_IMODE((data_dir / "chats.sqlite3").stat().st_mode) == 0o600
        assert http_status(server.base_url) == 403
        assert http_status(server.base_url + "healthz") == 403
        assert http_status(server.base_url + "healthz", server.headers) == 200
    finally:
        server.kill()


async def test_open_tabs_keep_working_after_a_restart(data_dir: Path) -> None:
    port = str(free_port())
    first = ServerProcess(data_dir, "--port", port)
    jar = aiohttp.CookieJar(unsafe=True)  # cookies for 127.0.0.1, as a browser keeps them
    try:
        async with (
            aiohttp.ClientSession(cookie_jar=jar) as session,
            session.get(first.url) as response,
        ):
            assert response.status == 200 and str(response.url).startswith(first.base_url)
            assert "token" not in str(response.url)
    finally:
        first.stop()
    second = ServerProcess(data_dir, "--port", port)
    try:
        assert second.token == first.token
        async with aiohttp.ClientSession(cookie_jar=jar) as session:
            async with session.get(second.base_url + "healthz") as response:
                assert response.status == 200
            origin = second.base_url.rstrip("/")
            async with session.ws_connect(second.base_url + "ws", origin=origin) as ws:
                await ws.close()
    finally:
        second.kill()


def test_second_start_finds_the_running_server_with_the_token(data_dir: Path) -> None:
    server = ServerProcess(data_dir, "--port", "0")
    try:
        result = run_cli("--data-dir", str(data_dir))
        assert result.returncode == 0, result.stderr
        assert "already running" in result.stdout
        assert server.url in result.stdout.splitlines()
    finally:
        server.kill()


def test_verbose_access_log_never_shows_the_token(data_dir: Path) -> None:
    server = ServerProcess(data_dir, "--port", "0", "-v")
    try:
        assert http_status(server.url) == 303
        assert http_status(server.base_url + f"?token={server.token}x") == 403
        code, _, err = server.stop()
    finally:
        server.kill()
    assert code == 0
    assert re.search(r"aiohttp\.access: GET / 303", err), err
    assert server.token not in err


async def test_browser_is_opened_on_a_private_redirect_file(data_dir: Path) -> None:
    opened: list[str] = []
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def opener(url: str) -> bool:  # runs in the launcher's browser thread
        opened.append(url)
        loop.call_soon_threadsafe(stop.set)
        return True

    settings = Settings(data_dir=data_dir, port=0, open_browser=True, word_delay=0)
    await asyncio.wait_for(serve(settings, opener=opener, stop=stop), 15)
    (target,) = opened
    token = (data_dir / TOKEN_FILENAME).read_text().strip()
    assert target.startswith("file://") and token not in target  # not on a command line
    assert target.endswith(OPEN_FILENAME)


async def test_redirect_file_is_0600_and_points_at_the_login_url(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, object] = {}
    stop = asyncio.Event()

    loop = asyncio.get_running_loop()

    def opener(url: str) -> bool:  # runs in the launcher's browser thread
        path = Path(url.removeprefix("file://"))
        seen["mode"] = stat.S_IMODE(path.stat().st_mode)
        seen["text"] = path.read_text()
        loop.call_soon_threadsafe(stop.set)
        return True

    settings = Settings(data_dir=data_dir, port=0, open_browser=True, word_delay=0)
    await asyncio.wait_for(serve(settings, opener=opener, stop=stop), 15)
    token = (data_dir / TOKEN_FILENAME).read_text().strip()
    assert seen["mode"] == 0o600
    assert re.search(rf'content="0;url=http://127\.0\.0\.1:\d+/\?token={token}"', str(seen["text"]))
    assert not (data_dir / OPEN_FILENAME).exists()  # removed at shutdown


# -- remote binding ----------------------------------------------------------------------------


def serve_on_loopback(monkeypatch: pytest.MonkeyPatch) -> list[Settings]:
    """Make `htmxchat` bind 127.0.0.1 whatever --host says (tests stay on loopback) and
    return at once; the list collects the settings it was started with."""
    served: list[Settings] = []

    def announce(settings: Settings) -> Listener:
        return Listener(bind_socket("127.0.0.1", 0), "http://127.0.0.1/", "token")

    async def serve(settings: Settings, listener: Listener) -> None:
        served.append(settings)
        listener.sock.close()

    monkeypatch.setattr(cli, "announce", announce)
    monkeypatch.setattr(cli, "serve", serve)
    return served


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "::", "example.org"])
def test_non_loopback_host_is_refused_without_allow_remote(data_dir: Path, host: str) -> None:
    result = run_cli("--data-dir", str(data_dir), "--host", host, "--port", "0")
    assert result.returncode == 2
    assert "--allow-remote" in result.stderr and "Traceback" not in result.stderr


def test_allow_remote_prints_a_warning(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    served = serve_on_loopback(monkeypatch)
    code = cli.main(["--no-browser", "--host", "0.0.0.0", "--allow-remote", "--port", "0"])
    assert code == 0 and served[0].allow_remote and served[0].host == "0.0.0.0"
    assert "warning" in capsys.readouterr().err.lower()


def test_loopback_hosts_need_no_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    served = serve_on_loopback(monkeypatch)
    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        assert cli.main(["--no-browser", "--host", host]) == 0
    assert not any(s.allow_remote for s in served)


def test_remote_policy_accepts_only_the_configured_host_or_ip_literals() -> None:
    specific = Policy(8000, "192.0.2.10")
    assert specific.host_ok("192.0.2.10:8000") and specific.host_ok("127.0.0.1:8000")
    assert not specific.host_ok("192.0.2.11:8000") and not specific.host_ok("evil.example:8000")
    assert specific.origin_ok("http://192.0.2.10:8000", "192.0.2.10:8000")
    wildcard = Policy(8000, "0.0.0.0")
    assert wildcard.host_ok("192.0.2.99:8000") and wildcard.host_ok("[2001:db8::1]:8000")
    # names can be rebound to our address; IP literals cannot
    assert not wildcard.host_ok("evil.example:8000") and not wildcard.host_ok("0.0.0.0:8000")
    assert not wildcard.host_ok("192.0.2.99:8001")
    assert wildcard.origin_ok("http://192.0.2.99:8000", "192.0.2.99:8000")
    assert not wildcard.origin_ok("http://192.0.2.98:8000", "192.0.2.99:8000")


async def test_remote_server_still_requires_the_token(
    aiohttp_client, aiohttp_server, data_dir: Path, bot: ScriptedBot, store: ChatStore
) -> None:
    # Served on loopback (tests never bind elsewhere), addressed as the configured host.
    settings = Settings(data_dir=data_dir, host="192.0.2.10", allow_remote=True, word_delay=0)
    app: web.Application = create_app(settings, bot=bot, store=store)
    server = await aiohttp_server(app)
    host = f"192.0.2.10:{server.port}"
    client = await aiohttp_client(server, headers={"Host": host})
    assert (await client.get("/healthz")).status == 403
    token = (data_dir / TOKEN_FILENAME).read_text().strip()
    cookie = {"Cookie": f"{cookie_name(server.port)}={cookie_value(token)}"}
    assert (await client.get("/healthz", headers=cookie)).status == 200
    other = {"Host": f"192.0.2.11:{server.port}", **cookie}
    assert (await client.get("/healthz", headers=other)).status == 403


def test_an_address_that_cannot_be_used_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def cannot_bind(settings: Settings) -> Listener:  # tests never bind another address
        raise OSError(99, "Cannot assign requested address")

    monkeypatch.setattr(cli, "announce", cannot_bind)
    assert cli.main(["--no-browser", "--host", "192.0.2.10", "--allow-remote"]) == 1
    err = capsys.readouterr().err
    assert "cannot start: Cannot assign requested address" in err and "Traceback" not in err


def test_every_interface_bind_announces_a_loopback_url() -> None:
    assert url_for("0.0.0.0", 8000) == "http://127.0.0.1:8000/"
    assert url_for("::", 8000) == "http://[::1]:8000/"
    assert url_for("192.0.2.10", 8000) == "http://192.0.2.10:8000/"
    # and that URL passes the Host check of such a server
    assert Policy(8000, "0.0.0.0").host_ok("127.0.0.1:8000")
