"""Hostile imports and stored data: wrong types and impossible dates are repaired or refused,
so the front page never fails; a password in a server's address is shown and exported
nowhere (docs/limits.md)."""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from htmxchat.export import ImportFormatError, parse_export
from htmxchat.ids import new_id
from htmxchat.provenance import clean_provenance, without_password
from htmxchat.store import DB_FILENAME, ChatStore
from tests.hostile import Probe, chat_until_final

SECRET = "hunter2-pw"


def export_document(**message_fields: Any) -> str:
    conversation = {"id": new_id(), "title": "Crafted", "created_at": 1.0, "updated_at": 2.0}
    messages = [
        {"id": new_id(), "role": "user", "content": "question", "created_at": 1.0},
        {
            "id": new_id(),
            "role": "assistant",
            "content": "answer **bold**",
            "created_at": 2.0,
            **message_fields,
        },
    ]
    return json.dumps(
        {"format": "htmxchat-conversation", "version": 1, "conversation": conversation,
         "messages": messages}
    )  # fmt: skip


async def import_and_open(client: TestClient, store: ChatStore, document: str) -> str:
    conversation, messages = parse_export(document)
    stored = await store.import_conversation(conversation, messages)
    async with Probe.on(client) as probe:
        response = await client.get("/")  # opens the newest conversation
        page = await response.text()
    probe.assert_responsive()
    assert response.status == 200, page[:500]
    assert f"/c/{stored.id}" in str(response.url), "the imported conversation is not the newest"
    return page


@pytest.mark.parametrize(
    "provenance",
    [
        {"params": [1, 2, 3]},
        {"params": "temperature"},
        {"params": {"temperature": {"nested": [1, {"deep": True}]}, "seed": 7}},
        {"bot": ["not", "text"], "model": 42, "system_prompt": {"a": 1}},
        {"base_url": f"http://me:{SECRET}@example.test/v1"},
    ],
    ids=["params-list", "params-text", "params-nested", "wrong-field-types", "password"],
)
async def test_a_crafted_provenance_never_breaks_the_page(
    client: TestClient, store: ChatStore, provenance: dict[str, Any]
) -> None:
    page = await import_and_open(client, store, export_document(provenance=provenance))
    assert "answer <strong>bold</strong>" in page
    assert SECRET not in page and "nested" not in page


async def test_dates_in_the_future_are_brought_back_to_now(
    client: TestClient, store: ChatStore
) -> None:
    far = 253_402_300_000  # the year 9999
    document = json.loads(export_document(finished_at=far))
    document["conversation"]["updated_at"] = far
    document["conversation"]["created_at"] = far
    before = time.time()
    conversation, messages = parse_export(json.dumps(document))
    assert before - 1 <= conversation.updated_at <= time.time()
    assert conversation.created_at <= time.time()
    assert all(m.finished_at is None or m.finished_at <= time.time() for m in messages)
    stored = await store.import_conversation(conversation, messages)
    # A conversation used afterwards is the newest again: the import does not stay on top.
    later = new_id()
    await chat_until_final(client, later, "a later question")
    assert [c.id for c in await store.conversations()][:2] == [later, stored.id]


def test_import_still_refuses_what_cannot_be_repaired() -> None:
    with pytest.raises(ImportFormatError, match="provenance"):
        parse_export(export_document(provenance=[1, 2, 3]))
    with pytest.raises(ImportFormatError, match="created_at"):
        parse_export(export_document(created_at="yesterday"))


async def test_a_bad_provenance_already_in_the_chat_log_is_harmless(
    client: TestClient, store: ChatStore, data_dir
) -> None:
    conversation, messages = parse_export(export_document())
    stored = await store.import_conversation(conversation, messages)
    deep = "[" * 100_000 + "]" * 100_000
    with sqlite3.connect(data_dir / DB_FILENAME) as db:
        db.execute(
            "UPDATE messages SET provenance = ? WHERE role = 'assistant'",
            ('{"params": [1, 2, 3], "base_url": "http://u:' + SECRET + '@h/v1"}',),
        )
    page = await (await client.get(f"/c/{stored.id}")).text()
    assert "answer <strong>bold</strong>" in page and SECRET not in page
    export = await (await client.get(f"/c/{stored.id}/export.json")).text()
    assert SECRET not in export and "http://h/v1" in export
    with sqlite3.connect(data_dir / DB_FILENAME) as db:
        db.execute("UPDATE messages SET provenance = ? WHERE role = 'assistant'", (deep,))
    response = await client.get(f"/c/{stored.id}")
    assert response.status == 200


def test_passwords_are_taken_out_of_addresses() -> None:
    assert without_password(f"http://me:{SECRET}@host:8080/v1") == "http://host:8080/v1"
    assert without_password("http://host:8080/v1") == "http://host:8080/v1"
    assert SECRET not in without_password(f"not a url me:{SECRET}@host")
    cleaned = clean_provenance({"base_url": f"https://k:{SECRET}@api.test/v1", "extra": 1})
    assert cleaned == {"base_url": "https://api.test/v1"}


async def test_a_password_in_a_server_address_is_not_shown(app_client, store: ChatStore) -> None:
    from htmxchat.answering.bots.openai import OpenAICompatBot
    from htmxchat.answering.bots.select import ChosenBot

    url = f"http://me:{SECRET}@127.0.0.1:9/v1"
    bot = OpenAICompatBot(url, "m", label="Secretive")
    client = await app_client(ChosenBot(bot, ("m",), "Replies come from Secretive."))
    response = await client.post(
        "/settings/connections", data={"name": "Mine", "base_url": url, "api_key": ""}
    )
    page = await (await client.get("/settings")).text()
    assert "Mine" in page and "127.0.0.1:9/v1" in page
    assert SECRET not in page, "the Servers page shows the password"
    assert response.status == 200
    await bot.close()


async def test_editing_a_server_keeps_the_password_it_does_not_show(
    client: TestClient, data_dir
) -> None:
    url = f"http://me:{SECRET}@127.0.0.1:9/v1"
    await client.post("/settings/connections", data={"name": "Mine", "base_url": url})
    saved = json.loads((data_dir / "connections.json").read_text())
    connection_id = saved[0]["id"]
    form = await (await client.get(f"/settings?edit={connection_id}")).text()
    assert 'value="http://127.0.0.1:9/v1"' in form and SECRET not in form
    response = await client.post(
        f"/settings/connections/{connection_id}",
        data={"name": "Renamed", "base_url": "http://127.0.0.1:9/v1"},
    )
    assert response.status == 200
    saved = json.loads((data_dir / "connections.json").read_text())
    assert saved[0]["name"] == "Renamed" and saved[0]["base_url"] == url
