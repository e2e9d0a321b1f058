"""Conversations over HTTP: sidebar, paging, rename, delete, search, export, open at a message."""

from __future__ import annotations

import json
import re

import pytest
from aiohttp.test_utils import TestClient

from htmxchat.ids import is_valid_id, new_id
from htmxchat.models import Message
from htmxchat.store import ChatStore
from htmxchat.views import PAGE_MESSAGES
from tests.helpers import XSS, open_conversation, receive_until

HTML = {"Accept": "text/html"}


async def seed(store: ChatStore, count: int, prefix: str = "message") -> tuple[str, list[str]]:
    conversation = new_id()
    ids = []
    for number in range(count):
        role = "user" if number % 2 == 0 else "assistant"
        m = await store.add_message(
            Message(new_id(), conversation, role, f"{prefix} {number}")  # type: ignore[arg-type]
        )
        ids.append(m.id)
    return conversation, ids


def article_ids(html: str) -> list[str]:
    return re.findall(r'<article id="m-([0-9a-z]+)"', html)


def loader_url(html: str) -> str | None:
    match = re.search(r'class="older" hx-get="([^"]+)"', html)
    return match.group(1).replace("&amp;", "&") if match else None


async def test_sidebar_lists_conversations_newest_first(
    client: TestClient, store: ChatStore
) -> None:
    old, _ = await seed(store, 2, "Old <chat>")
    new, _ = await seed(store, 2, "Newer chat")
    page = await (await client.get(f"/c/{old}")).text()
    items = re.findall(r'<li id="conv-([0-9a-z]+)"', page)
    assert items == [new, old]
    assert f'href="/c/{old}" hx-get="/c/{old}"' in page
    assert re.search(rf'href="/c/{old}"[^>]*aria-current="page"', page)
    assert "Old &lt;chat&gt; 0" in page and "<chat>" not in page
    assert 'id="conversation-title" class="conversation-title">Old &lt;chat&gt; 0<' in page
    # every switch link swaps only #pane (the socket's #app stays) and pushes the URL
    for link in re.findall(r'<a class="conv-link"[^>]*>', page):
        assert 'hx-target="#pane"' in link and 'hx-select="#pane"' in link
        assert 'hx-push-url="true"' in link
    assert 'ws-connect="/ws"' in page and "hx-history-elt" in page
    # the list is the feed as of one event: the socket resumes it from there
    assert re.search(
        r'id="conversation-list"[^>]*data-feed-epoch="[0-9a-f]+" data-feed-seq="0"', page
    )


async def test_long_conversation_opens_with_a_page_and_loads_older_ones(
    client: TestClient, store: ChatStore
) -> None:
    conversation, ids = await seed(store, PAGE_MESSAGES * 2 + 7)
    page = await (await client.get(f"/c/{conversation}")).text()
    shown = article_ids(page)
    assert shown == ids[-PAGE_MESSAGES:]
    url = loader_url(page)
    assert url == f"/c/{conversation}/messages?before={shown[0]}"
    assert 'hx-trigger="intersect once"' in page
    while url:
        older = await (await client.get(url)).text()
        shown = article_ids(older) + shown
        url = loader_url(older)
    assert shown == ids
    # a short conversation has no loader
    short, _ = await seed(store, 3)
    assert loader_url(await (await client.get(f"/c/{short}")).text()) is None
    assert (await client.get(f"/c/{conversation}/messages?before=nope")).status == 404


async def test_sync_keeps_loaded_older_messages_and_its_loader(
    client: TestClient, store: ChatStore
) -> None:
    conversation, ids = await seed(store, PAGE_MESSAGES + 30)
    ws, sync = await open_conversation(client, conversation)
    assert article_ids(sync) == ids[-PAGE_MESSAGES:]
    assert loader_url(sync) == f"/c/{conversation}/messages?before={ids[30]}"
    # a page that loaded older messages re-syncs from the oldest one it shows
    await ws.send_json({"action": "sync", "conversation": conversation, "since": ids[10]})
    frame = (await receive_until(ws, lambda f: 'id="messages"' in f))[-1]
    assert article_ids(frame) == ids[10:]
    assert loader_url(frame) == f"/c/{conversation}/messages?before={ids[10]}"
    await ws.send_json({"action": "sync", "conversation": conversation, "since": ids[0]})
    frame = (await receive_until(ws, lambda f: 'id="messages"' in f))[-1]
    assert article_ids(frame) == ids and loader_url(frame) is None
    await ws.close()


async def test_rename_in_place(client: TestClient, store: ChatStore) -> None:
    conversation, _ = await seed(store, 1, "first words")
    form = await (await client.get(f"/c/{conversation}/rename")).text()
    assert 'name="title"' in form and 'value="first words 0"' in form
    response = await client.post(
        f"/c/{conversation}/title",
        data={"title": "  Trip   <planning> "},
        headers={"HX-Current-URL": f"http://127.0.0.1/c/{conversation}"},
    )
    html = await response.text()
    assert "Trip &lt;planning&gt;" in html and "<planning>" not in html
    assert 'id="conversation-title"' in html  # the open page's heading follows
    assert (await store.conversation(conversation)).title == "Trip <planning>"  # type: ignore[union-attr]
    await client.post(f"/c/{conversation}/title", data={"title": "   "})
    assert (await store.conversation(conversation)).title == "Trip <planning>"  # type: ignore[union-attr]
    item = await (await client.get(f"/c/{conversation}/item")).text()
    assert "Trip &lt;planning&gt;" in item and "<form" not in item
    assert (await client.post(f"/c/{new_id()}/title", data={"title": "x"})).status == 404


async def test_delete_needs_delete_and_moves_the_page_on(
    client: TestClient, store: ChatStore
) -> None:
    keep, _ = await seed(store, 2, "keep")
    doomed, _ = await seed(store, 2, "doomed")
    page = await (await client.get(f"/c/{doomed}")).text()
    assert f'hx-delete="/c/{doomed}"' in page and "data-confirm=" in page
    assert (await client.get(f"/c/{doomed}/delete")).status == 404  # never by GET
    response = await client.delete(
        f"/c/{doomed}", headers={"HX-Current-URL": f"http://127.0.0.1/c/{doomed}"}
    )
    assert response.status == 200
    assert await response.text() == ""  # every page's list learns it from the feed
    page = await (await client.get(f"/c/{keep}")).text()
    assert f"conv-{doomed}" not in page and f"conv-{keep}" in page
    location = json.loads(response.headers["HX-Location"])
    assert location["path"] == f"/c/{keep}" and location["target"] == "#pane"
    assert await store.conversation(doomed) is None and await store.messages(doomed) == []
    # deleting one that is not shown leaves the page where it is
    response = await client.delete(
        f"/c/{keep}", headers={"HX-Current-URL": f"http://127.0.0.1/c/{new_id()}"}
    )
    assert "HX-Location" not in response.headers
    assert await store.conversations() == []


async def test_delete_stops_a_running_reply(client: TestClient, store: ChatStore, bot) -> None:
    import asyncio

    conversation = new_id()
    bot.gate = asyncio.Event()
    bot.enqueue(["never ", "seen"])
    ws, _ = await open_conversation(client, conversation)
    await ws.send_json({"action": "send", "conversation": conversation, "message": "go"})
    await receive_until(ws, lambda f: "msg-assistant" in f)
    await client.delete(f"/c/{conversation}")
    bot.gate.set()
    await asyncio.wait_for(bot.cancelled.wait(), 5)
    assert await store.messages(conversation) == []
    assert await store.conversation(conversation) is None
    await ws.close()


async def test_search_results_link_to_the_message(client: TestClient, store: ChatStore) -> None:
    conversation, _ = await seed(store, 4, "harmless")
    await store.add_message(Message(new_id(), conversation, "user", f"needle {XSS}"))
    hit_id = (await store.messages(conversation))[-1].id
    html = await (await client.get("/search", params={"q": "needle"})).text()
    assert f'href="/c/{conversation}?at={hit_id}"' in html
    assert "<mark>needle</mark>" in html
    assert "<script>" not in html and "<img" not in html and "&lt;script&gt;" in html
    assert "harmless 0" in html  # the conversation title
    assert "No messages match" in await (await client.get("/search?q=zzzz")).text()
    assert await (await client.get("/search?q=")).text() == ""
    control = await client.get("/search", params={"q": "needle\x00\x07"})
    assert control.status == 200 and "<mark>needle</mark>" in await control.text()


async def test_page_opens_at_a_message(client: TestClient, store: ChatStore) -> None:
    conversation, ids = await seed(store, PAGE_MESSAGES * 3)
    target = ids[20]
    page = await (await client.get(f"/c/{conversation}?at={target}")).text()
    shown = article_ids(page)
    assert shown[0] == ids[10] and shown[-1] == ids[-1]  # with some context above it
    assert f'data-focus="{target}"' in page
    assert loader_url(page) == f"/c/{conversation}/messages?before={ids[10]}"
    # near the start there is less context; an unknown id opens the newest page
    page = await (await client.get(f"/c/{conversation}?at={ids[3]}")).text()
    assert article_ids(page)[0] == ids[0] and loader_url(page) is None
    page = await (await client.get(f"/c/{conversation}?at={new_id()}")).text()
    assert article_ids(page) == ids[-PAGE_MESSAGES:] and "data-focus" not in page


async def test_export_downloads(client: TestClient, store: ChatStore) -> None:
    conversation, _ = await seed(store, 2, "Export <me>")
    md = await client.get(f"/c/{conversation}/export.md")
    assert md.status == 200 and md.content_type == "text/markdown"
    assert "attachment" in md.headers["Content-Disposition"]
    assert f"export-me-0-{conversation}.md" in md.headers["Content-Disposition"]
    text = await md.text()
    # The title is a heading with the characters Markdown acts on escaped; messages as written.
    assert text.startswith("# Export \\<me\\> 0\n") and "\nExport <me> 1\n" in text
    js = await client.get(f"/c/{conversation}/export.json")
    document = json.loads(await js.text())
    assert document["format"] == "htmxchat-conversation"
    assert [m["content"] for m in document["messages"]] == ["Export <me> 0", "Export <me> 1"]
    assert (await client.get(f"/c/{new_id()}/export.md", headers=HTML)).status == 404


async def test_a_failing_chat_log_is_a_clear_503(
    client: TestClient, store: ChatStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from htmxchat.store import StoreError

    conversation, _ = await seed(store, 1, "first words")

    async def locked(*args: object) -> None:
        raise StoreError("The chat log is busy; try again in a moment.")

    monkeypatch.setattr(store, "rename_conversation", locked)
    response = await client.post(f"/c/{conversation}/title", data={"title": "new"})
    assert response.status == 503
    assert "busy; try again" in await response.text()


async def test_new_chat_is_a_new_conversation_every_time(client: TestClient) -> None:
    """The New chat link asks for a new conversation each time it is followed, so following
    it after writing in the last new one does not lead back there."""
    page = await (await client.get(f"/c/{new_id()}")).text()
    assert 'id="new-chat"' in page and 'href="/new"' in page
    targets = []
    for _ in range(2):
        response = await client.get("/new", allow_redirects=False)
        assert response.status == 303
        targets.append(response.headers["Location"])
    assert all(t.startswith("/c/") and is_valid_id(t.removeprefix("/c/")) for t in targets)
    assert targets[0] != targets[1]
    followed = await client.get("/new")
    assert followed.status == 200 and "data-empty" in await followed.text()


async def test_the_edit_form_comes_from_the_server(client: TestClient, store: ChatStore) -> None:
    """Edit fetches a server partial holding the message's text (escaped), like every other
    form; only your own messages of that conversation have one."""
    conversation = new_id()
    mine = await store.add_message(Message(new_id(), conversation, "user", XSS))
    answer = await store.add_message(Message(new_id(), conversation, "assistant", "an answer"))
    page = await (await client.get(f"/c/{conversation}")).text()
    assert f'hx-get="/c/{conversation}/m/{mine.id}/edit"' in page
    form = await (await client.get(f"/c/{conversation}/m/{mine.id}/edit")).text()
    assert 'class="msg-edit" ws-send' in form and "<script>" not in form
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in form
    assert f'name="target" value="{mine.id}"' in form
    assert (await client.get(f"/c/{conversation}/m/{answer.id}/edit")).status == 404
    assert (await client.get(f"/c/{new_id()}/m/{mine.id}/edit")).status == 404
