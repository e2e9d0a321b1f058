"""Attachments: upload checks, what the model receives, storage, deletion, the guard."""

from __future__ import annotations

import base64
import json
import sqlite3
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from htmxchat.answering.bots.openai import OpenAICompatBot
from htmxchat.answering.bots.select import ChosenBot
from htmxchat.attachments import MAX_FILES, MAX_PENDING, MAX_TEXT_BYTES, fenced
from htmxchat.export import parse_export
from htmxchat.ids import new_id
from htmxchat.models import Message
from htmxchat.store import DB_FILENAME, ChatStore
from tests.fake_openai import FakeOpenAI, Reply, words_reply
from tests.helpers import PNG, chat, final_reply, form, upload

SECRET_PNG = PNG + b"zebra-pixels-7731"


@pytest.fixture
async def fake(aiohttp_server) -> tuple[FakeOpenAI, str]:
    server = FakeOpenAI(models=("fake-model",))
    return server, await server.serve_with(aiohttp_server)


@pytest.fixture
async def llm_client(app_client, fake: tuple[FakeOpenAI, str]) -> TestClient:
    bot = OpenAICompatBot(fake[1], "fake-model", stall_timeout=1.0, label="Fake")
    return await app_client(ChosenBot(bot, ("fake-model",), "Fake."), coalesce_window=0.0)


async def test_text_files_go_to_the_model_fenced_inside_the_message(
    llm_client: TestClient, fake: tuple[FakeOpenAI, str]
) -> None:
    server, _ = fake
    conversation = new_id()
    code = "print('```')\n````\nend\n"
    ids = await upload(llm_client, conversation, ("a.py", code.encode()), ("b.csv", b"x,y\n1,2"))
    server.enqueue(Reply(chunks=words_reply("Read them.")))
    await chat(llm_client, conversation, "Look at these", attachments=" ".join(ids))
    sent = server.chat_requests[-1].json["messages"]
    assert sent == [
        {
            "role": "user",
            "content": "Look at these\n\na.py:\n`````\nprint('```')\n````\nend\n`````"
            "\n\nb.csv:\n```\nx,y\n1,2\n```",
        }
    ]


async def test_images_go_to_the_model_as_content_parts(
    llm_client: TestClient, fake: tuple[FakeOpenAI, str], store: ChatStore
) -> None:
    server, _ = fake
    conversation = new_id()
    ids = await upload(llm_client, conversation, ("photo.bin", PNG))
    server.enqueue(Reply(chunks=words_reply("A pixel.")))
    frames = await chat(llm_client, conversation, "What is it?", attachments=ids[0])
    url = "data:image/png;base64," + base64.b64encode(PNG).decode()
    assert server.chat_requests[-1].json["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is it?"},
                {"type": "image_url", "image_url": {"url": url}},
            ],
        }
    ]
    # the user's message shows its image live, served by this app only
    assert f'src="/attachments/{ids[0]}"' in "".join(frames)
    [user, _reply] = await store.messages(conversation)
    assert [a.name for a in user.attachments] == ["photo.bin"]


async def test_a_model_that_cannot_see_says_so_in_plain_words(
    llm_client: TestClient, fake: tuple[FakeOpenAI, str], store: ChatStore
) -> None:
    server, _ = fake
    conversation = new_id()
    ids = await upload(llm_client, conversation, ("p.png", PNG))
    server.enqueue(Reply.error(400, "image input is not supported by this model"))
    frames = await chat(llm_client, conversation, "see?", attachments=ids[0])
    reply = final_reply(frames)
    assert "This model can't read images." in reply.text and "{" not in reply.text
    [user, _reply] = await store.messages(conversation)
    assert user.content == "see?" and len(user.attachments) == 1


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ([("cat.png", b"<html><script>alert(1)</script>")], None),  # text, not an image
        ([("cat.png", b"\xff\xfe<html>\x80")], "neither a text file"),
        ([(f"f{i}.txt", b"x") for i in range(11)], "at most 10 files"),
        ([("big.txt", b"a" * (MAX_TEXT_BYTES + 1))], "at most 1.0 MiB"),
        ([("data.bin", bytes(range(256)))], "neither a text file"),
    ],
    ids=["png-that-is-html", "png-that-is-binary", "eleven", "text-too-big", "binary"],
)
async def test_uploads_are_checked_by_content(
    client: TestClient, files: list[tuple[str, bytes]], expected: str | None
) -> None:
    response = await client.post(f"/c/{new_id()}/attachments", data=form(*files))
    if expected is None:
        # HTML in a .png is not an image: it may only ever be text, never served as a page
        assert response.status == 200
        [item] = (await response.json())["attachments"]
        assert item["kind"] == "text"
        served = await client.get(f"/attachments/{item['id']}")
        assert served.headers["Content-Type"].startswith("text/plain")
        assert served.headers["Content-Disposition"].startswith("attachment")
        assert served.headers["X-Content-Type-Options"] == "nosniff"
    else:
        assert 400 <= response.status < 500
        assert expected in await response.text()


async def test_images_are_served_with_their_checked_type(client: TestClient) -> None:
    [image] = await upload(client, new_id(), ("x.txt", PNG))
    response = await client.get(f"/attachments/{image}")
    assert response.status == 200 and await response.read() == PNG
    assert response.headers["Content-Type"] == "image/png"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


async def test_a_send_with_an_unknown_or_foreign_attachment_is_refused(
    client: TestClient, store: ChatStore
) -> None:
    [other] = await upload(client, new_id(), ("a.txt", b"hi"))
    conversation = new_id()
    ws = await client.ws_connect("/ws")
    await ws.send_json(
        {"action": "send", "conversation": conversation, "message": "keep", "attachments": other}
    )
    text = ""
    while "no longer on the server" not in text:
        text += (await ws.receive(timeout=5)).data
    await ws.close()
    assert await store.messages(conversation) == []


async def test_upload_and_serve_refuse_without_token_or_from_another_origin(
    client: TestClient, aiohttp_client
) -> None:
    conversation = new_id()
    [image] = await upload(client, conversation, ("p.png", PNG))
    url = f"/c/{conversation}/attachments"
    wrong = await client.post(url, data=form(("a.txt", b"x")), headers={"Origin": "http://evil"})
    assert wrong.status == 403
    stranger = await aiohttp_client(client.server)  # no cookie, no token
    origin = {"Origin": str(client.make_url("")).rstrip("/")}
    refused = await stranger.post(url, data=form(("a.txt", b"x")), headers=origin)
    assert refused.status == 403
    assert (await stranger.get(f"/attachments/{image}")).status == 403


def database_bytes(data_dir: Path) -> bytes:
    return b"".join(
        path.read_bytes() for path in data_dir.iterdir() if path.name.startswith(DB_FILENAME)
    )


async def test_bytes_survive_restart_export_and_import_and_deletion_erases_them(
    client: TestClient, store: ChatStore, data_dir: Path
) -> None:
    conversation = new_id()
    ids = await upload(client, conversation, ("secret.png", SECRET_PNG), ("n.txt", b"walrus-42"))
    ws = await client.ws_connect("/ws")
    await ws.send_json(
        {
            "action": "send",
            "conversation": conversation,
            "message": "m",
            "attachments": " ".join(ids),
        }
    )
    await ws.receive(timeout=5)
    await ws.close()
    # a fresh connection to the same file (a restart) still has them
    reopened = await ChatStore.open(data_dir / DB_FILENAME)
    try:
        [user] = [m for m in await reopened.messages(conversation) if m.role == "user"]
        assert [a.name for a in user.attachments] == ["secret.png", "n.txt"]
        files = await reopened.attachment_data(conversation)
        assert [f.data for f in files[user.id]] == [SECRET_PNG, b"walrus-42"]
    finally:
        await reopened.close()
    exported = await client.get(f"/c/{conversation}/export.json")
    document = json.loads(await exported.text())
    attached = document["messages"][0]["attachments"]
    assert base64.b64decode(attached[0]["data"]) == SECRET_PNG
    markdown = await (await client.get(f"/c/{conversation}/export.md")).text()
    assert "secret.png" in markdown and "n.txt" in markdown
    imported_conversation, imported = parse_export(await exported.text())
    copy = await store.import_conversation(imported_conversation, imported)
    assert copy.id != conversation
    [copied] = [m for m in await store.messages(copy.id) if m.role == "user"]
    copied_files = (await store.attachment_data(copy.id))[copied.id]
    assert [f.data for f in copied_files] == [SECRET_PNG, b"walrus-42"]
    await client.delete(f"/c/{copy.id}")

    assert b"zebra-pixels-7731" in database_bytes(data_dir)
    assert (await client.delete(f"/c/{conversation}")).status == 200
    raw = database_bytes(data_dir)
    assert b"zebra-pixels-7731" not in raw and b"walrus-42" not in raw


async def test_unsent_uploads_go_with_their_conversation(
    client: TestClient, data_dir: Path, store: ChatStore
) -> None:
    conversation = new_id()
    await store.add_message(Message(new_id(), conversation, "user", "hello"))
    await upload(client, conversation, ("u.txt", b"unsent-okapi-99"))
    assert b"unsent-okapi-99" in database_bytes(data_dir)
    await client.delete(f"/c/{conversation}")
    assert b"unsent-okapi-99" not in database_bytes(data_dir)


def test_fences_are_longer_than_any_backtick_run() -> None:
    assert fenced("a.md", "x ```` y").startswith("a.md:\n`````\n")
    assert fenced("b.txt", "plain") == "b.txt:\n```\nplain\n```"


async def test_unsent_uploads_are_bounded_per_conversation(client: TestClient) -> None:
    conversation = new_id()
    for _ in range(MAX_PENDING // MAX_FILES):
        await upload(client, conversation, *[(f"{i}.txt", b"x") for i in range(MAX_FILES)])
    response = await client.post(f"/c/{conversation}/attachments", data=form(("a.txt", b"x")))
    assert response.status == 429 and "waiting" in await response.text()


async def test_deleting_a_message_deletes_its_files(
    client: TestClient, store: ChatStore, data_dir: Path
) -> None:
    conversation = new_id()
    message = await store.add_message(Message(new_id(), conversation, "user", "hi"))
    ids = await upload(client, conversation, ("m.txt", b"message-bound-ibis"))
    await store.claim_attachments(conversation, message.id, ids)
    db = sqlite3.connect(data_dir / DB_FILENAME)
    db.execute("PRAGMA foreign_keys = ON")
    db.execute("DELETE FROM messages WHERE id = ?", (message.id,))
    db.commit()
    db.close()
    assert await store.attachment(ids[0]) is None


async def test_uploads_never_sent_are_removed_after_an_hour(
    client: TestClient, data_dir: Path
) -> None:
    conversation = new_id()
    [old] = await upload(client, conversation, ("old.txt", b"old"))
    db = sqlite3.connect(data_dir / DB_FILENAME)
    db.execute("UPDATE attachments SET created_at = created_at - 3601 WHERE id = ?", (old,))
    db.commit()
    db.close()
    [fresh] = await upload(client, conversation, ("new.txt", b"new"))  # tidies on the way
    assert (await client.get(f"/attachments/{old}")).status == 404
    assert (await client.get(f"/attachments/{fresh}")).status == 200
