"""Shared fixtures: an isolated data dir for every test, the app with a scripted bot, a browser."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from htmxchat.access import load_or_create_token
from htmxchat.app import create_app
from htmxchat.config import Settings
from htmxchat.store import DB_FILENAME, ChatStore
from tests.browser_errors import BrowserErrors
from tests.fake_openai import FakeOpenAI
from tests.helpers import (
    EchoBot,
    FakeModelServer,
    ScriptedBot,
    ServerProcess,
    TwoModels,
    logged_in_client,
    served_in_thread,
)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run browser tests last: while Playwright's sync API is open it keeps an event loop
    running in the main thread, and asyncio tests cannot start theirs meanwhile."""
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own data dir; nothing touches the real home directory."""
    path = tmp_path / "data"
    path.mkdir()
    for name in list(os.environ):
        if name.startswith("HTMXCHAT_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HTMXCHAT_DATA_DIR", str(path))
    monkeypatch.setenv("HTMXCHAT_LOG_DIR", str(tmp_path / "log"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))  # mcp.json
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # compiled templates
    return path


@pytest.fixture(autouse=True)
def no_server_left_behind() -> Iterator[None]:
    """Kill any htmxchat process a test started and did not stop (e.g. when it failed)."""
    yield
    while ServerProcess.started:
        ServerProcess.started.pop().kill()


@pytest.fixture
def settings(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir, open_browser=False, word_delay=0)


@pytest.fixture
async def store(data_dir: Path) -> AsyncIterator[ChatStore]:
    chat_store = await ChatStore.open(data_dir / DB_FILENAME)
    yield chat_store
    await chat_store.close()


@pytest.fixture
def bot() -> ScriptedBot:
    return ScriptedBot()


@pytest.fixture
def token(data_dir: Path) -> str:
    """The data dir's access token (what the launcher puts in the URL)."""
    return load_or_create_token(data_dir)


@pytest.fixture
def app_client(
    store: ChatStore, settings: Settings, aiohttp_client, aiohttp_server
) -> Callable[..., Awaitable[TestClient]]:
    """A factory: the app with the given bot (and `create_app` options), served, logged in
    with the token (cookie) and sending the page's own Origin. `prepare(app)` runs first."""

    # `store` comes first so it is set up before, and closed after, the app that uses it.
    async def make(
        bot: object, *, prepare: Callable[[web.Application], None] | None = None, **options
    ) -> TestClient:
        app = create_app(settings, bot=bot, store=store, **options)  # type: ignore[arg-type]
        if prepare is not None:
            prepare(app)
        return await logged_in_client(aiohttp_client, aiohttp_server, app, settings.data_dir)

    return make


@pytest.fixture
async def client(app_client, bot: ScriptedBot) -> TestClient:
    """The app with the scripted bot, logged in; replies are not coalesced."""
    return await app_client(bot, coalesce_window=0.0)


@pytest.fixture
def server(data_dir: Path) -> Iterator[ServerProcess]:
    """htmxchat as a real process on a free port (demo bot, small word delay)."""
    process = ServerProcess(data_dir, "--port", "0", "--word-delay", "0.05")
    yield process
    process.kill()


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium driven by Playwright. In CI a missing browser fails, never skips.

    Module scope, not session: Playwright's sync API keeps an event loop running in the
    main thread while it is open, which asyncio tests in other modules cannot share.
    """
    if not shutil.which(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package")
        pytest.skip(f"{CHROMIUM} is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(autouse=True)
def browser_errors(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[BrowserErrors]:
    """Fail a browser test on any console error or uncaught page error it did not expect
    (`browser_errors.expect(pattern)`): every context and page a browser test opens is
    watched, from the `browser` fixture or from a Chromium a benchmark starts itself."""
    errors = BrowserErrors()
    if request.node.get_closest_marker("browser") is None:
        yield errors
        return
    from playwright.sync_api import Browser

    new_context, new_page = Browser.new_context, Browser.new_page
    monkeypatch.setattr(
        Browser, "new_context", lambda self, *a, **k: errors.watch(new_context(self, *a, **k))
    )
    monkeypatch.setattr(
        Browser, "new_page", lambda self, *a, **k: errors.watch(new_page(self, *a, **k))
    )
    yield errors
    unexpected = errors.unexpected()
    if unexpected:
        pytest.fail("the page logged errors:\n" + "\n".join(unexpected), pytrace=False)


@pytest.fixture
def page(browser):
    """A fresh browser context and page; records every request URL it makes."""
    context = browser.new_context(viewport={"width": 1100, "height": 760})
    new_page = context.new_page()
    new_page.requested_urls = []  # type: ignore[attr-defined]
    new_page.on("request", lambda request: new_page.requested_urls.append(request.url))
    yield new_page
    context.close()


@pytest.fixture
async def fake(aiohttp_server) -> AsyncIterator[tuple[FakeOpenAI, str]]:
    """A scripted OpenAI-compatible server on 127.0.0.1 (two models) and its base URL."""
    server = FakeOpenAI(models=("fake-model", "other-model"))
    base_url = await server.serve_with(aiohttp_server)
    yield server, base_url


@pytest.fixture
def model_server() -> Iterator[str]:
    """tests/fake_openai.py in its own process on 127.0.0.1; yields its base URL."""
    with FakeModelServer() as server:
        yield server.base_url


@pytest.fixture
def second_server() -> Iterator[str]:
    """A second fake model server process."""
    with FakeModelServer() as server:
        yield server.base_url


@pytest.fixture
def echo(data_dir: Path) -> Iterator[str]:
    """A page served in a thread whose bot answers with the user's own text."""
    with served_in_thread(data_dir, EchoBot()) as url:
        yield url


@pytest.fixture
def two_models(data_dir: Path) -> Iterator[str]:
    """As `echo`, with two models to choose from (the top bar shows a picker)."""
    with served_in_thread(data_dir, TwoModels()) as url:
        yield url


@pytest.fixture
def parse_threads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The threads of this process that parsed a Markdown text holding MARKER (a text
    parsed in the render process, or not at all, leaves it empty)."""
    from htmxchat.markdown import render as render_module

    threads: list[str] = []
    parse = render_module.MD.parse

    def recording(source: str, env: object = None) -> object:
        if "MARKER" in source:
            threads.append(threading.current_thread().name)
        return parse(source, env)  # type: ignore[arg-type]

    monkeypatch.setattr(render_module.MD, "parse", recording)
    return threads
