"""Conversations as Markdown and JSON documents, and reading JSON exports back in.

The page's download links and the `htmxchat logs/export/import` commands share this module.
"""

from __future__ import annotations

import base64
import json
import math
import re
import time
from dataclasses import asdict, fields, replace
from datetime import datetime, timedelta
from typing import Any, cast

from htmxchat import tree
from htmxchat.attachments import (
    MAX_FILES,
    AttachmentError,
    AttachmentInfo,
    check_file,
    clean_name,
    size_text,
)
from htmxchat.ids import new_id
from htmxchat.models import Conversation, Message, Role, Status
from htmxchat.provenance import clean_provenance
from htmxchat.store import TITLE_LENGTH
from htmxchat.tools.results import calls_from_json

FORMAT_NAME = "htmxchat-conversation"
FORMAT_VERSION = 1
MAX_IMPORT_MESSAGES = 100_000

_ROLES: tuple[Role, ...] = ("system", "user", "assistant")
_STATUSES: tuple[Status, ...] = ("complete", "streaming", "stopped", "interrupted", "error")
_AUTHORS = {"user": "You", "system": "System"}
SECTION_LEVEL = 2  # each message is a `##` section under the title's `#`


class ImportFormatError(Exception):
    """The file is not a conversation htmxchat can import; the message says what is wrong."""


def to_json(
    conversation: Conversation,
    messages: list[Message],
    settings: dict[str, object] | None = None,
) -> str:
    """The conversation and all its messages as a JSON document (the import format);
    `settings` are the chat's own settings (chat_settings.py), when it has any."""
    header = asdict(conversation)
    del header["imported_at"]  # this computer's bookkeeping, not part of the conversation
    document: dict[str, Any] = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "conversation": header,
        "messages": [_message_dict(m) for m in messages],
    }
    if settings:
        document["settings"] = settings
    return json.dumps(document, ensure_ascii=False, indent=2) + "\n"


def _message_dict(message: Message) -> dict[str, Any]:
    data = asdict(message)
    del data["conversation_id"]  # implied by the document
    if data.get("provenance") is not None:
        data["provenance"] = dict(message.provenance or {})
    data["attachments"] = [_attachment_dict(a) for a in message.attachments]
    if not data["attachments"]:
        del data["attachments"]  # documents without files look as they always did
    data["tool_calls"] = [c.as_json() for c in message.tool_calls]
    if not data["tool_calls"]:
        del data["tool_calls"]
    return data


def _attachment_dict(a: AttachmentInfo) -> dict[str, Any]:
    item: dict[str, Any] = {"name": a.name, "mime": a.mime, "kind": a.kind, "size": a.size}
    if a.data is not None:
        item["data"] = base64.b64encode(a.data).decode("ascii")
    return item


def to_markdown(conversation: Conversation, messages: list[Message]) -> str:
    """A document any Markdown viewer shows well: the title, a few facts, then one section
    per message, headed by its speaker (the model, for answers) and its local time with the
    zone. A message's own headings are moved two levels down, under its section's."""
    from htmxchat.markdown.outline import demote_headings  # markdown-it: not needed at start

    lines = [
        f"# {_plain(conversation.title) or 'Untitled conversation'}",
        "",
        f"- id: `{conversation.id}`",
        f"- started: {_when(conversation.created_at)}",
        f"- messages: {len(messages)}",
        "",
    ]
    for m in messages:
        speaker = _AUTHORS.get(m.role) or _plain(m.model or m.bot or "") or "Assistant"
        body = demote_headings(m.content.rstrip(), SECTION_LEVEL)
        lines += [f"{'#' * SECTION_LEVEL} {speaker} · {_when(m.created_at)}", "", body, ""]
        if m.attachments:
            lines += [*(f"- Attached: {a.name} ({size_text(a.size)})" for a in m.attachments), ""]
        for call in m.tool_calls:
            lines += [
                f"- Tool call `{call.name}` ({call.approval or call.state}): `{call.arguments}`"
            ]
            if call.result is not None:
                lines += [f"  - {'Error' if call.result.error else 'Result'}: {call.result.text}"]
        if m.tool_calls:
            lines += [""]
        if m.status != "complete":
            lines += [f"*{m.status.capitalize()}{': ' + m.error if m.error else ''}*", ""]
    return "\n".join(lines)


def _plain(text: str) -> str:
    """`text` on one line, with the characters Markdown would act on escaped."""
    return re.sub(r"([\\`*_\[\]<>#|~])", r"\\\1", " ".join(text.split()))


def _when(timestamp: float) -> str:
    """The local time with its zone: `2023-11-14 23:13:20 CET (UTC+01:00)`."""
    moment = datetime.fromtimestamp(timestamp).astimezone()
    offset = int((moment.utcoffset() or timedelta(0)).total_seconds()) // 60
    shown = f"{moment:%Y-%m-%d %H:%M:%S}"
    if offset == 0:
        return f"{shown} UTC"
    sign = "+" if offset > 0 else "-"
    utc = f"UTC{sign}{abs(offset) // 60:02d}:{abs(offset) % 60:02d}"
    name = moment.tzname() or ""
    return f"{shown} {name} ({utc})" if name.isalpha() else f"{shown} {utc}"


def filename(conversation: Conversation, extension: str) -> str:
    """A safe download file name from the title, e.g. `trip-to-rome-0k2x….md`."""
    slug = re.sub(r"[^a-z0-9]+", "-", conversation.title.lower()).strip("-")[:40].strip("-")
    return f"{slug or 'conversation'}-{conversation.id}.{extension}"


def parse_export(text: str) -> tuple[Conversation, list[Message]]:
    """Validate a JSON export and turn it into records (ids are checked by the store)."""
    try:
        document = json.loads(text)
    except RecursionError:
        raise ImportFormatError("the file nests JSON too deeply to be an export") from None
    except ValueError as exc:
        raise ImportFormatError(f"the file is not valid JSON ({exc})") from None
    if not isinstance(document, dict):
        raise ImportFormatError("the file must hold a JSON object")
    if document.get("format") != FORMAT_NAME:
        raise ImportFormatError(
            f'the file is not an htmxchat export ("format" must be "{FORMAT_NAME}")'
        )
    if document.get("version") != FORMAT_VERSION:
        raise ImportFormatError(
            f"export version {document.get('version')!r} is not supported "
            f"(this htmxchat reads version {FORMAT_VERSION})"
        )
    header = _object(document.get("conversation"), "conversation")
    raw_messages = document.get("messages")
    if not isinstance(raw_messages, list):
        raise ImportFormatError('"messages" must be a list')
    if len(raw_messages) > MAX_IMPORT_MESSAGES:
        raise ImportFormatError(f"at most {MAX_IMPORT_MESSAGES:,} messages can be imported")
    now = time.time()
    conversation_id = _text(header, "id", "conversation", default="")
    messages = [
        _message(_object(raw, f"messages[{i}]"), f"messages[{i}]", conversation_id, now)
        for i, raw in enumerate(raw_messages)
    ]
    if not any(isinstance(raw, dict) and "parent_id" in raw for raw in raw_messages):
        # An export from before messages formed a tree: one branch, as the schema migration
        # makes it (docs/design.md, "Message tree").
        nodes = [tree.Node(m.id, None, m.role) for m in messages]
        messages = [
            replace(m, parent_id=parent)
            for m, parent in zip(messages, tree.flat_parents(nodes), strict=True)
        ]
    created = _time(header, "created_at", "conversation", now)
    conversation = Conversation(
        id=conversation_id,
        title=_text(header, "title", "conversation", default="") or _title_from(messages),
        created_at=created,
        updated_at=_time(header, "updated_at", "conversation", now, default=created),
    )
    return conversation, messages


def _title_from(messages: list[Message]) -> str:
    first = next((m.content for m in messages if m.role == "user"), "")
    return " ".join(first.split())[:TITLE_LENGTH] or "Imported conversation"


def _message(data: dict[str, Any], where: str, conversation_id: str, now: float) -> Message:
    role = data.get("role")
    if role not in _ROLES:
        raise ImportFormatError(f"{where}.role must be one of {', '.join(_ROLES)}, not {role!r}")
    status = data.get("status", "complete")
    if status not in _STATUSES:
        raise ImportFormatError(f"{where}.status {status!r} is unknown")
    if status == "streaming":  # nothing is writing it any more
        status = "interrupted"
    content = data.get("content")
    if not isinstance(content, str):
        raise ImportFormatError(f"{where}.content must be text")
    known = {f.name for f in fields(Message)}
    unknown = set(data) - known
    if unknown:
        raise ImportFormatError(f"{where} has unknown fields: {', '.join(sorted(unknown))}")
    first_piece = data.get("first_piece_ms")
    finished = data.get("finished_at")
    return Message(
        id=_text(data, "id", where, default=""),
        conversation_id=conversation_id,
        role=cast(Role, role),
        content=_valid_unicode(content),
        status=cast(Status, status),
        reasoning=_text(data, "reasoning", where, default=""),
        error=_optional_text(data, "error", where),
        bot=_optional_text(data, "bot", where),
        model=_optional_text(data, "model", where),
        created_at=_time(data, "created_at", where, now),
        finished_at=None if finished is None else _time(data, "finished_at", where, now),
        first_piece_ms=None if first_piece is None else _number(data, "first_piece_ms", where),
        piece_count=int(_number(data, "piece_count", where, default=0)),
        prompt_tokens=_count(data, "prompt_tokens", where),
        completion_tokens=_count(data, "completion_tokens", where),
        provenance=clean_provenance(_optional_object(data, "provenance", where)),
        attachments=_attachments(data.get("attachments", []), where),
        parent_id=_optional_text(data, "parent_id", where),
        tool_calls=calls_from_json(data.get("tool_calls", [])),
    )


def _count(data: dict[str, Any], key: str, where: str) -> int | None:
    return None if data.get(key) is None else int(_number(data, key, where))


def _optional_object(data: dict[str, Any], key: str, where: str) -> dict[str, Any] | None:
    value = data.get(key)
    return None if value is None else _object(value, f"{where}.{key}")


def _attachments(raw: object, where: str) -> tuple[AttachmentInfo, ...]:
    """Attached files of an export, checked again as an upload is (content, size, count)."""
    if not isinstance(raw, list) or len(raw) > MAX_FILES:
        raise ImportFormatError(f"{where}.attachments must be a list of at most {MAX_FILES}")
    found: list[AttachmentInfo] = []
    for i, item in enumerate(raw):
        place = f"{where}.attachments[{i}]"
        entry = _object(item, place)
        name = clean_name(_text(entry, "name", place, default="file"))
        try:
            data = base64.b64decode(_text(entry, "data", place, default=""), validate=True)
            mime, kind = check_file(name, data)
        except (ValueError, AttachmentError) as exc:
            raise ImportFormatError(f"{place} cannot be imported: {exc}") from None
        found.append(AttachmentInfo(new_id(), name, mime, kind, len(data), data))
    return tuple(found)


def _object(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ImportFormatError(f'"{where}" must be a JSON object')
    return cast(dict[str, Any], value)


def _text(data: dict[str, Any], key: str, where: str, *, default: str) -> str:
    value = data.get(key, default)
    if not isinstance(value, str):
        raise ImportFormatError(f"{where}.{key} must be text")
    return _valid_unicode(value)


def _optional_text(data: dict[str, Any], key: str, where: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise ImportFormatError(f"{where}.{key} must be text or null")
    return None if value is None else _valid_unicode(value)


# Timestamps and counts beyond this (year 9999 in seconds) cannot be real and would break
# date formatting and ordering later.
_MAX_NUMBER = 253_402_300_799


def _number(data: dict[str, Any], key: str, where: str, *, default: float | None = None) -> float:
    value = data.get(key, default)
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not 0 <= value <= _MAX_NUMBER
    ):
        raise ImportFormatError(f"{where}.{key} must be a number from 0 to {_MAX_NUMBER}")
    return float(value)


def _time(
    data: dict[str, Any], key: str, where: str, now: float, *, default: float | None = None
) -> float:
    """A timestamp, no later than now: a date in the future would keep a conversation at
    the top of the list (and open at every start) for good."""
    return min(_number(data, key, where, default=now if default is None else default), now)


def _valid_unicode(text: str) -> str:
    # JSON allows lone surrogates ("\ud800"); SQLite and UTF-8 output cannot store them.
    if text.isascii():
        return text
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
