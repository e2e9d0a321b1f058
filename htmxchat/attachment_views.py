"""HTTP routes for attachments: upload (multipart POST) and serving the bytes back.

Both sit behind the same guard as every route (token, Host, Origin on the POST). Files
travel here, not over the WebSocket; the send frame then names the ids the upload returned.
See docs/design.md, "Attachments".
"""

from __future__ import annotations

from urllib.parse import quote

from aiohttp import BodyPartReader, web

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
from htmxchat.fragments import ATTACHMENT_PREFIX
from htmxchat.ids import is_valid_id, new_id
from htmxchat.keys import store_key

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

    A refused file refuses the whole upload, with a message saying which and why.
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
    files: list[AttachmentData] = []
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
        files.append(AttachmentData(AttachmentInfo(new_id(), name, mime, kind, len(data)), data))
    if not files:
        raise web.HTTPBadRequest(text="The upload held no files.")
    store = request.app[store_key]
    if await store.pending_count(conversation_id) + len(files) > MAX_PENDING:
        raise web.HTTPTooManyRequests(
            text="Too many files are waiting to be sent here. Send or remove some first "
            "(files not sent within an hour are removed)."
        )
    await store.add_pending_attachments(conversation_id, files)
    return web.json_response(
        {
            "attachments": [
                {"id": f.info.id, "name": f.info.name, "kind": f.info.kind, "size": f.info.size}
                for f in files
            ]
        }
    )


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
