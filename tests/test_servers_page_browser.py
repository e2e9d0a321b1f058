"""A new user's Servers page: what answers comes first; local servers that are not installed
are quiet lines saying how to start each, not red cards."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urljoin

import pytest

from htmxchat.answering.bots.detect import Candidate
from tests.helpers import EchoBot, served_in_thread

pytestmark = pytest.mark.browser
TIMEOUT = 15_000

# The usual three, at ports where nothing listens (as on a computer without them).
NOT_INSTALLED = [
    Candidate("http://127.0.0.1:9/v1", "Ollama"),
    Candidate("http://127.0.0.1:7/v1", "llama.cpp"),
    Candidate("http://127.0.0.1:13/v1", "LM Studio"),
]


@pytest.fixture
def first_run(data_dir: Path) -> Iterator[str]:
    with served_in_thread(data_dir, EchoBot(), local_servers=NOT_INSTALLED) as url:
        yield url


def test_a_first_run_servers_page_shows_what_answers_first(page, first_run: str) -> None:
    page.goto(first_run)
    page.wait_for_selector("#app", timeout=TIMEOUT)
    page.goto(urljoin(page.url, "/settings"))
    page.wait_for_selector(".settings-page h1", timeout=TIMEOUT)
    cards = page.locator(".servers > .server")
    assert cards.count() >= 1
    assert cards.first.get_attribute("data-state") == "up"  # what answers comes first
    assert page.locator(".server.is-down").count() == 0  # no red card for what is not there
    quiet = page.locator(".absent-server")
    assert quiet.count() == 3
    texts = quiet.all_inner_texts()
    assert "ollama serve" in texts[0] and "llama-server" in texts[1] and "LM Studio" in texts[2]
    assert all("not running here" in text for text in texts)
    # quiet: in the muted colour, below everything that answers
    heading = page.locator(".absent-title").bounding_box()
    last_card = cards.last.bounding_box()
    assert heading and last_card and heading["y"] > last_card["y"] + last_card["height"]
    colour = quiet.first.evaluate("e => getComputedStyle(e).color")
    muted = page.evaluate("getComputedStyle(document.body).getPropertyValue('--muted')")
    assert colour != page.evaluate("getComputedStyle(document.body).color") and muted
