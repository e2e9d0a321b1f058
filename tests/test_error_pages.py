"""What a person sees in the browser when an address or a request is wrong: a page in
words, saying what happened and the way back, never a traceback or aiohttp's bare text."""

from __future__ import annotations

import re

import pytest
from aiohttp.test_utils import TestClient

from htmxchat.ids import new_id

HTML = {"Accept": "text/html"}


def visible_text(page: str) -> str:
    body = page[page.index("<body") :]
    return " ".join(re.sub(r"<[^>]+>", " ", body).split())


@pytest.mark.parametrize(
    ("path", "says"),
    [
        ("/nowhere", "That page does not exist."),
        ("/c/not-an-id", "There is no conversation at this address."),
        (f"/c/{new_id()}/export.md", "That conversation does not exist (any more)."),
    ],
)
async def test_wrong_addresses_get_a_page_in_words(
    client: TestClient, path: str, says: str
) -> None:
    response = await client.get(path, headers=HTML)
    page = await response.text()
    assert response.status == 404 and response.content_type == "text/html"
    text = visible_text(page)
    assert says in text and "Back to the chat" in text
    assert "Traceback" not in page and "404: Not Found" not in page


async def test_without_the_access_link_the_page_says_how_to_get_in(client: TestClient) -> None:
    client.session.cookie_jar.clear()
    response = await client.get("/", headers=HTML)
    page = await response.text()
    assert response.status == 403
    assert "Open the link htmxchat printed when it started" in visible_text(page)
    assert "Back to the chat" not in page  # that would only lead here again
