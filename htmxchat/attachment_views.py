"""HTTP routes for attachments: upload (multipart POST) and serving the bytes back.

Both sit behind the same guard as every route (token, Host, Origin on the POST). Files
travel here, not over the WebSocket; the send frame then names the ids the upload returned.
See docs/design.md, "Attachments".
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from urllib.parse import quote

from aiohttp import BodyPartReader, ClientPayloadError, web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.multipart import BadContentDispositionHeader

from htmxchat.attachments import (
    MAX_FILES,
    MAX_IMAGE_BYTES,
    MAX_PENDING,
    AttachmentData,
    AttachmentError,
    AttachmentInfo,
    check_file,
    clean_name,
)
from htmxchat.ids import is_valid_id, new_id
from htmxchat.keys import chat_key, store_key
from htmxchat.limits import MAX_PENDING_UPLOADS, MAX_UPLOADS_AT_ONCE
from htmxchat.store import ChatStore
from htmxchat.template_helpers import ATTACHMENT_PREFIX

log = logging.getLogger(__name__)

# Every file at the largest size, plus room for the multipart headers. The app's general
# body limit (1 MiB) stays as it is: only this route reads more, and it reads part by part.
MAX_UPLOAD_BYTES = MAX_FILES * MAX_IMAGE_BYTES + 1024 * 1024
_CHUNK = 64 * 1024


def add_routes(router: web.UrlDispatcher) -> None:
    """Register the attachment routes."""
    router.add_post("/c/{conversation_id}/attachments", upload, name="attachments")
    router.add_get(ATTACHMENT_PREFIX + "{attachment_id}", serve, name="attachment")


async def upload(request: web.Request) -> web.StreamResponse:
    """Check and store the posted files (field `file`, repeated); answer with their ids.

    A refused file refuses the whole upload, with a message saying which and why. Uploads
    are bounded (docs/limits.md): a few read at once, a cap on files waiting per
    conversation and in all, and a malformed form is a 400 with a message, never a 500.
    """
    conversation_id = request.match_info["conversation_id"]
    if not is_valid_id(conversation_id):
        raise web.HTTPNotFound(text="There is no conversation at this address.")
    length = request.content_length
    if length is not None and length > MAX_UPLOAD_BYTES:
        raise web.HTTPRequestEntityTooLarge(
            max_size=MAX_UPLOAD_BYTES,
            actual_size=length,
            text=f"At most {MAX_FILES} files of up to 10 MiB each can be attached at once.",
        )
    if not request.content_type.startswith("multipart/"):
        raise web.HTTPBadRequest(text="Attachments must be sent as a multipart form.")
    store = request.app[store_key]
    gate = _gates.setdefault(request.app, _Gate())
    if gate.reading >= MAX_UPLOADS_AT_ONCE:
        raise web.HTTPTooManyRequests(text="Other files are being uploaded; try again in a moment.")
    await _check_room(store, conversation_id, 1)
    gate.reading += 1
    try:
        files = await _read_form(request)
    finally:
        gate.reading -= 1
    async with gate.lock:  # checking and storing together: no two uploads share the room
        await _check_room(store, conversation_id, len(files))
        await request.app[chat_key].hold_attachments(conversation_id, files)
    return web.json_response(
        {
            "attachments": [
                {"id": f.info.id, "name": f.info.name, "kind": f.info.kind, "size": f.info.size}
                for f in files
            ]
        }
    )


class _Gate:
    """One app's uploads in progress."""

    def __init__(self) -> None:
        self.reading = 0
        self.lock = asyncio.Lock()


_gates: weakref.WeakKeyDictionary[web.Application, _Gate] = weakref.WeakKeyDictionary()


async def _check_room(store: ChatStore, conversation_id: str, adding: int) -> None:
    bucket, total = await store.pending_counts(conversation_id)
    if bucket + adding > MAX_PENDING or total + adding > MAX_PENDING_UPLOADS:
        raise web.HTTPTooManyRequests(
            text="Too many files are waiting to be sent. Send or remove some first "
            "(files not sent within an hour are removed)."
        )


async def _read_form(request: web.Request) -> list[AttachmentData]:
    """The checked files of the form; a malformed form is a 400 saying so."""
    files: list[AttachmentData] = []
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader) or part.name != "file":
                raise web.HTTPBadRequest(text="The upload holds something other than files.")
            if len(files) == MAX_FILES:
                raise web.HTTPBadRequest(text=f"A message can carry at most {MAX_FILES} files.")
            name = clean_name(part.filename or "file")
            data = await _read(part, name)
            try:
                mime, kind = check_file(name, data)
            except AttachmentError as exc:
                raise web.HTTPBadRequest(text=str(exc)) from None
            info = AttachmentInfo(new_id(), name, mime, kind, len(data))
            files.append(AttachmentData(info, data))
    except (
        ValueError,
        HttpProcessingError,
        ClientPayloadError,
        BadContentDispositionHeader,
    ) as exc:
        # aiohttp's multipart reader raises these for a missing or wrong boundary, a cut-off
        # body, and headers it cannot parse.
        log.info("refused a malformed upload: %s", type(exc).__name__)
        raise web.HTTPBadRequest(
            text="The upload could not be read (a malformed form). Attach the files again."
        ) from None
    if not files:
        raise web.HTTPBadRequest(text="The upload held no files.")
    return files


async def _read(part: BodyPartReader, name: str) -> bytes:
    """A part's bytes, refusing it as soon as it is larger than any file may be."""
    buf = bytearray()
    while chunk := await part.read_chunk(_CHUNK):
        buf += chunk
        if len(buf) > MAX_IMAGE_BYTES:
            raise web.HTTPRequestEntityTooLarge(
                max_size=MAX_IMAGE_BYTES,
                actual_size=len(buf),
                text=f"{name} is larger than 10 MiB, the most a file can be.",
            )
    return bytes(buf)


async def serve(request: web.Request) -> web.StreamResponse:
    """An attachment's bytes, typed by their checked type and never rendered as a page."""
    attachment_id = request.match_info["attachment_id"]
    found = (
        await request.app[store_key].attachment(attachment_id)
        if is_valid_id(attachment_id)
        else None
    )
    if found is None:
        raise web.HTTPNotFound(text="That attachment does not exist (any more).")
    info = found.info
    # Images show inline (thumbnails); text is only ever downloaded, so a file full of
    # HTML can never become a page of this origin.
    disposition = (
        "inline" if info.kind == "image" and "download" not in request.query else ("attachment")
    )
    return web.Response(
        body=found.data,
        headers={
            "Content-Type": info.mime if info.kind == "image" else "text/plain; charset=utf-8",
            "Content-Disposition": f"{disposition}; filename*=UTF-8''{quote(info.name)}",
            "X-Content-Type-Options": "nosniff",
        },
    )
