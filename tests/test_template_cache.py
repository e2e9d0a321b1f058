"""Compiled templates are kept between starts; a cache that fails never breaks a page."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import jinja2
import pytest

from htmxchat.app import create_app
from htmxchat.config import Settings
from htmxchat.store import ChatStore
from tests.helpers import ScriptedBot, logged_in_client


async def chat_page(aiohttp_client, aiohttp_server, settings: Settings, store: ChatStore) -> str:
    """A new chat's page, from a freshly built app (as after a start)."""
    app = create_app(settings, bot=ScriptedBot(), store=store)
    client = await logged_in_client(aiohttp_client, aiohttp_server, app, settings.data_dir)
    response = await client.get("/new")
    assert response.status == 200
    return await response.text()


async def test_a_second_start_compiles_no_template(
    aiohttp_client, aiohttp_server, settings: Settings, store: ChatStore, monkeypatch
) -> None:
    first = await chat_page(aiohttp_client, aiohttp_server, settings, store)
    assert list((settings.cache_dir / "templates").iterdir())
    compiled: list[str | None] = []
    compile_template = jinja2.Environment.compile

    def counting(self: jinja2.Environment, source: str, name: str | None = None, *args, **kw):
        compiled.append(name)
        return compile_template(self, source, name, *args, **kw)

    monkeypatch.setattr(jinja2.Environment, "compile", counting)
    second = await chat_page(aiohttp_client, aiohttp_server, settings, store)
    assert compiled == []
    assert 'id="composer"' in first and 'id="composer"' in second


async def test_a_damaged_cache_is_compiled_again(
    aiohttp_client, aiohttp_server, settings: Settings, store: ChatStore
) -> None:
    await chat_page(aiohttp_client, aiohttp_server, settings, store)
    for cached in (settings.cache_dir / "templates").iterdir():
        cached.write_bytes(b"\x00not a template" * 10)
    assert 'id="composer"' in await chat_page(aiohttp_client, aiohttp_server, settings, store)


async def test_a_cache_that_cannot_be_written_costs_only_time(
    aiohttp_client,
    aiohttp_server,
    settings: Settings,
    store: ChatStore,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("a file where the cache dir should be")
    settings = dataclasses.replace(settings, cache_dir=blocked)
    with caplog.at_level(logging.WARNING):
        page = await chat_page(aiohttp_client, aiohttp_server, settings, store)
    assert 'id="composer"' in page
    assert "pages still work" in caplog.text
