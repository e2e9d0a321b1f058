"""Speakers are named by their model (and their server's name where it has one), never by
an address such as 127.0.0.1:48310: in the answer's header, the message box and exports."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from htmxchat.speakers import is_address, picker_model, speaker, speaker_server
from tests.helpers import EchoBot, served_in_thread

TIMEOUT = 15_000
ADDRESS = "127.0.0.1:48310"


def test_addresses_are_not_names() -> None:
    for address in (
        ADDRESS,
        "localhost:8080",
        "[::1]:1234",
        "http://127.0.0.1:8080/v1",
        "10.0.0.2",
    ):
        assert is_address(address), address
    for name in ("Ollama", "llama.cpp", "LM Studio", "Demo bot", "api.openai.com", "My GPU box"):
        assert not is_address(name), name


def test_the_model_names_the_speaker_and_a_named_server_joins_it() -> None:
    assert speaker("llama3.2", ADDRESS) == "llama3.2"
    assert speaker_server("llama3.2", ADDRESS) is None
    assert speaker("llama3.2", "Ollama") == "llama3.2"
    assert speaker_server("llama3.2", "Ollama") == "Ollama"
    assert speaker(None, "Demo bot") == "Demo bot" and speaker_server(None, "Demo bot") is None
    assert speaker(None, ADDRESS) == "the model"
    assert picker_model("side|qwen3:4b") == "qwen3:4b" and picker_model("llama3.2") == "llama3.2"
    assert picker_model("side|") is None and picker_model("") is None


class AddressedBot(EchoBot):
    """A server known only by its address, as `--base-url` gives it."""

    label = ADDRESS
    model: str | None = "llama3.2"


@pytest.fixture
def addressed(data_dir: Path) -> Iterator[str]:
    with served_in_thread(data_dir, AddressedBot()) as url:
        yield url


@pytest.mark.browser
def test_the_page_names_the_model_not_the_address(page, addressed: str) -> None:
    page.goto(addressed)
    page.wait_for_selector('#connection[data-state="open"]', timeout=TIMEOUT)
    assert page.get_attribute("#composer-input", "placeholder") == "Message llama3.2…"
    page.fill("#composer-input", "Hello")
    page.press("#composer-input", "Enter")
    page.wait_for_selector("article.msg-assistant[data-status=complete]", timeout=TIMEOUT)
    author = page.locator("article.msg-assistant .msg-author").inner_text()
    assert author.startswith("llama3.2") and ADDRESS not in author
    assert page.get_attribute("#composer-input", "placeholder") == "Message llama3.2…"
    assert ADDRESS not in page.locator("#pane").inner_text()
    # the Markdown export heads the answer with the model too
    link = page.locator(".export a").first.get_attribute("href") or ""
    cookies = "; ".join(f"{c['name']}={c['value']}" for c in page.context.cookies())
    origin = addressed.split("/", 3)[:3]
    request = urllib.request.Request("/".join(origin) + link, headers={"Cookie": cookies})
    with urllib.request.urlopen(request) as response:
        markdown = response.read().decode()
    assert "llama3.2" in markdown and ADDRESS not in markdown
