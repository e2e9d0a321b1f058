"""Hostile HTTP clients: malformed uploads, too many pending uploads, slow request headers,
and the log file's permissions (docs/limits.md). Each attack runs beside a /healthz probe."""

from __future__ import annotations

import asyncio
import logging
import socket
import stat
import time
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from htmxchat import attachment_views, logfile
from htmxchat.app import create_app
from htmxchat.attachments import MAX_FILES, MAX_PENDING
from htmxchat.config import Settings
from htmxchat.ids import new_id
from htmxchat.lifecycle import LOG_FILENAME
from htmxchat.limits import MAX_PENDING_UPLOADS
from htmxchat.server import make_runner
from htmxchat.store import ChatStore
from tests.helpers import PNG, form
from tests.hostile import Probe, chat_until_final

B = "XyZboundary"


def part(headers: str, body: bytes = b"hello") -> bytes:
    return f"--{B}\r\n{headers}\r\n\r\n".encode() + body + b"\r\n"


MALFORMED: dict[str, tuple[str, bytes]] = {
    "no-boundary": ("multipart/form-data", part('Content-Disposition: form-data; name="file"')),
    "wrong-boundary": (
        "multipart/form-data; boundary=other",
        part('Content-Disposition: form-data; name="file"; filename="a.txt"') + f"--{B}--".encode(),
    ),
    "truncated": (
        f"multipart/form-data; boundary={B}",
        part('Content-Disposition: form-data; name="file"; filename="a.txt"')[:-20],
    ),
    "cut-off-body": (
        f"multipart/form-data; boundary={B}",
        f'--{B}\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n\r\n'.encode()
        + b"x" * 5000,
    ),
    "long-file-name": (
        f"multipart/form-data; boundary={B}",
        part(f'Content-Disposition: form-data; name="file"; filename="{"n" * 10_000}.txt"')
        + f"--{B}--\r\n".encode(),
    ),
    "many-headers": (
        f"multipart/form-data; boundary={B}",
        part(
            'Content-Disposition: form-data; name="file"; filename="a.txt"\r\n'
            + "\r\n".join(f"X-H{i}: v" for i in range(10_000))
        )
        + f"--{B}--\r\n".encode(),
    ),
    "crlf-in-header": (
        f"multipart/form-data; boundary={B}",
        part('Content-Disposition: form-data; name="file"; filename="a\r.txt"\r\nX: \r\n y')
        + f"--{B}--\r\n".encode(),
    ),
    "no-parts": (f"multipart/form-data; boundary={B}", f"--{B}--\r\n".encode()),
    "garbage": (f"multipart/form-data; boundary={B}", b"\x00\xff" * 5000),
}


@pytest.mark.parametrize("case", list(MALFORMED))
async def test_malformed_uploads_get_400_with_a_message(
    client: TestClient, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    content_type, body = MALFORMED[case]
    conversation = new_id()
    await chat_until_final(client, conversation, "hello")  # a real conversation
    async with Probe.on(client) as probe:
        response = await client.post(
            f"/c/{conversation}/attachments", data=body, headers={"Content-Type": content_type}
        )
        text = await response.text()
    probe.assert_responsive()
    assert response.status in (400, 413), (response.status, text)
    assert "upload" in text.lower() or "file" in text.lower(), text
    assert "Traceback" not in caplog.text and "Error handling request" not in caplog.text


async def test_invented_conversation_ids_share_one_bucket(client: TestClient) -> None:
    """Uploads to ids with no conversation yet (a new chat) all count together, so making
    up ids never buys room beyond the per-conversation cap."""
    files = [(f"{i}.png", PNG) for i in range(MAX_FILES)]
    statuses = []
    for _ in range(MAX_PENDING // MAX_FILES + 1):
        response = await client.post(f"/c/{new_id()}/attachments", data=form(*files))
        statuses.append(response.status)
    assert statuses == [200] * (MAX_PENDING // MAX_FILES) + [429], statuses
    assert "waiting to be sent" in await response.text()
    conversation = new_id()
    await chat_until_final(client, conversation, "hello")  # a started one has its own room
    response = await client.post(f"/c/{conversation}/attachments", data=form(("a.png", PNG)))
    assert response.status == 200


async def test_pending_uploads_are_bounded_across_conversations(
    client: TestClient, store: ChatStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(attachment_views, "MAX_PENDING_UPLOADS", 4)
    conversations = [new_id() for _ in range(3)]
    for conversation in conversations:
        await chat_until_final(client, conversation, "hello")
    statuses = []
    for conversation in conversations:
        response = await client.post(
            f"/c/{conversation}/attachments", data=form(("a.png", PNG), ("b.png", PNG))
        )
        statuses.append((response.status, await response.text()))
    assert [s for s, _ in statuses] == [200, 200, 429], statuses
    assert "waiting to be sent" in statuses[-1][1]
    assert (await store.pending_counts(conversations[0]))[1] == 4
    assert MAX_PENDING_UPLOADS >= 30  # the real figure leaves room for a few busy chats


async def test_slow_request_headers_are_cut_off(settings: Settings, store: ChatStore) -> None:
    runner = make_runner(create_app(settings, store=store), None, header_timeout=0.5)
    await runner.setup()
    sock = socket.create_server(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    await web.SockSite(runner, sock).start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        started = time.monotonic()
        closed = False
        for _ in range(100):  # a header line every 0.1 s, never the blank line ending them
            try:
                writer.write(b"X-Slow: 1\r\n")
                await writer.drain()
            except ConnectionError:
                closed = True
                break
            if reader.at_eof() or (await _read_nowait(reader)) == b"":
                closed = True
                break
            await asyncio.sleep(0.1)
        assert closed, "the slow client was never cut off"
        assert time.monotonic() - started < 5
        writer.close()
    finally:
        await runner.cleanup()


async def _read_nowait(reader: asyncio.StreamReader) -> bytes | None:
    try:
        return await asyncio.wait_for(reader.read(1), 0.01)
    except TimeoutError:
        return None


def test_the_log_file_is_private(tmp_path: Path) -> None:
    log_dir = tmp_path / "shared"
    log_dir.mkdir(mode=0o777)
    path = logfile.setup_logging(log_dir, verbose=False)
    assert path == log_dir / LOG_FILENAME
    logging.getLogger("htmxchat").warning("a line")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.handlers.RotatingFileHandler):
            handler.doRollover()  # rotated and new files are private too
    for file in log_dir.iterdir():
        assert stat.S_IMODE(file.stat().st_mode) == 0o600, file
    logfile.setup_logging(tmp_path / "other", verbose=False)  # release the file
