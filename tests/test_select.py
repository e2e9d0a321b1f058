"""Which bot answers: --bot demo/openai/auto, detection of a local server, the model picker."""

from __future__ import annotations

import socket
import urllib.request
from pathlib import Path

import pytest

from htmxchat.answering.bots.demo import DemoBot
from htmxchat.answering.bots.detect import Candidate
from htmxchat.answering.bots.openai import OpenAICompatBot
from htmxchat.answering.bots.select import choose_bot
from htmxchat.cli import build_parser
from htmxchat.config import OPENAI_BASE_URL, Settings, SettingsError, resolve_settings
from htmxchat.ids import new_id
from tests.fake_openai import FakeOpenAI
from tests.helpers import FakeModelServer, ScriptedBot, ServerProcess, receive_until


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def settings_for(data_dir: Path, *flags: str, environ: dict[str, str] | None = None) -> Settings:
    args = build_parser().parse_args(["--data-dir", str(data_dir), *flags])
    return resolve_settings(args, environ or {})


async def test_demo_when_asked(data_dir: Path) -> None:
    choice = await choose_bot(settings_for(data_dir, "--bot", "demo"))
    assert isinstance(choice.bot, DemoBot) and choice.models == ()
    assert "demo bot" in choice.description


async def test_auto_without_a_local_server_falls_back_to_demo(data_dir: Path) -> None:
    nobody = [Candidate(f"http://127.0.0.1:{closed_port()}/v1", "Nobody")]
    choice = await choose_bot(settings_for(data_dir), candidates=nobody)
    assert isinstance(choice.bot, DemoBot)
    assert "no local model server found" in choice.description


async def test_auto_uses_a_detected_local_server(data_dir: Path, aiohttp_server) -> None:
    fake = FakeOpenAI(models=("llama3.2", "qwen3"))
    base_url = await fake.serve_with(aiohttp_server)
    candidates = [
        Candidate(f"http://127.0.0.1:{closed_port()}/v1", "Ollama"),
        Candidate(base_url, "llama.cpp"),
    ]
    choice = await choose_bot(settings_for(data_dir), candidates=candidates)
    assert isinstance(choice.bot, OpenAICompatBot)
    assert choice.bot.label == "llama.cpp" and choice.bot.model == "llama3.2"
    assert choice.models == ("llama3.2", "qwen3")
    assert "llama.cpp" in choice.description and "llama3.2" in choice.description
    await choice.bot.close()


async def test_openai_with_a_base_url_lists_its_models(data_dir: Path, aiohttp_server) -> None:
    fake = FakeOpenAI(models=("m1", "m2"))
    base_url = await fake.serve_with(aiohttp_server)
    choice = await choose_bot(
        settings_for(data_dir, "--bot", "openai", "--base-url", base_url, "--model", "m2")
    )
    assert isinstance(choice.bot, OpenAICompatBot) and choice.bot.model == "m2"
    assert choice.models == ("m1", "m2") and choice.problem is None
    await choice.bot.close()


async def test_unreachable_server_is_reported_but_chosen(data_dir: Path) -> None:
    base_url = f"http://127.0.0.1:{closed_port()}/v1"
    choice = await choose_bot(settings_for(data_dir, "--base-url", base_url))
    assert isinstance(choice.bot, OpenAICompatBot)
    assert choice.problem and "not answering" in choice.problem.lower()
    await choice.bot.close()


def test_bot_settings_from_flags_and_environment(data_dir: Path) -> None:
    settings = settings_for(
        data_dir,
        "--bot", "openai", "--temperature", "0.5", "--system-prompt", "Be brief.",
        environ={"HTMXCHAT_MODEL": "gpt-x", "OPENAI_API_KEY": "sk-openai"},
    )  # fmt: skip
    assert settings.base_url == OPENAI_BASE_URL and settings.model == "gpt-x"
    assert settings.temperature == 0.5 and settings.system_prompt == "Be brief."
    assert settings.api_key == "sk-openai"
    assert "sk-openai" not in repr(settings)
    local = settings_for(
        data_dir, "--base-url", "http://127.0.0.1:11434/v1", environ={"OPENAI_API_KEY": "sk-x"}
    )
    assert local.api_key is None, "an OpenAI key is never sent to another server"
    with pytest.raises(SettingsError):
        settings_for(data_dir, "--temperature", "5")


def test_there_is_no_api_key_flag() -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--api-key", "sk-secret"])


async def test_the_picked_model_goes_with_the_reply(app_client) -> None:
    bot = ScriptedBot(model="qwen3")  # an injected bot offers just its own model
    client = await app_client(bot, coalesce_window=0.0)
    conversation = new_id()
    ws = await client.ws_connect("/ws")
    await ws.send_json(
        {"action": "send", "conversation": conversation, "message": "hi", "model": "gpt-9"}
    )
    refused = await receive_until(ws, lambda f: 'id="notice"' in f)
    assert "not offered" in refused[-1] and bot.models_used == []
    await ws.send_json(
        {"action": "send", "conversation": conversation, "message": "hi", "model": "qwen3"}
    )
    async for message in ws:
        if "msg-assistant" in message.data and 'data-status="complete"' in message.data:
            break
    assert bot.models_used == ["qwen3"]
    assert "qwen3" in message.data  # the stats line names the model
    await ws.close()


def test_the_page_offers_the_servers_models(data_dir: Path) -> None:
    with FakeModelServer() as fake:
        env = {"HTMXCHAT_BOT": "auto", "HTMXCHAT_BASE_URL": fake.base_url,
               "HTMXCHAT_API_KEY": "sk-secret-1"}  # fmt: skip
        server = ServerProcess(data_dir, "--port", "0", "-v", env=env)
        try:
            request = urllib.request.Request(server.base_url, headers=server.headers)
            with urllib.request.urlopen(request, timeout=10) as response:
                page = response.read().decode()
            assert '<select id="model"' in page and "fake-model" in page
        finally:
            code, out, err = server.stop()
        assert code == 0
        host = fake.base_url.split("/")[2]
        assert f"Replies come from {host} at {fake.base_url} using fake-model." in out
        assert "sk-secret-1" not in out + err
