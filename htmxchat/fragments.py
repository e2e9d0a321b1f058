"""HTML for pages and WebSocket frames, from the same Jinja partials (autoescaped).

Every numbered frame starts with a header comment saying which event numbers it brings the
page to. The frame that answers a `sync` (a *join*) spells out what stays fixed while the
socket follows that conversation (`<!--frame kind=snapshot req=3 conversation=… epoch=…
seq=…-->`); every later frame carries only its numbers (`<!--14-->`, `<!--14-17-->`, feed:
`<!--f5-->`). The page drops stale frames and notices gaps from the header alone
(docs/design.md, "Frames"). A comment, not an element: htmx swaps only elements, so the
header costs the page no DOM work per frame.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import jinja2
from markupsafe import Markup

from htmxchat import __version__
from htmxchat.answering.service import Answering
from htmxchat.attachments import attachment_limits, size_text
from htmxchat.channel import Numbered
from htmxchat.chat import (
    BLANK_CHARS,
    EMPTY_EDIT,
    MAX_MESSAGE_CHARS,
    OFFLINE,
    OFFLINE_EDIT,
    TOO_LONG,
    FeedSnapshot,
    Snapshot,
)
from htmxchat.events import (
    BranchShown,
    ChoiceChanged,
    ConversationCreated,
    ConversationDeleted,
    ConversationRenamed,
    ConversationUpdated,
    FeedEvent,
    MessageAdded,
    ModelsChanged,
    ReplyDelta,
    ReplyFinished,
    ReplyNotStarted,
    RoomEvent,
    ToolCallsChanged,
)
from htmxchat.ids import new_id
from htmxchat.limits import INLINE_SOURCE_CHARS
from htmxchat.markdown.ops import Op
from htmxchat.models import Message
from htmxchat.provenance import without_password
from htmxchat.speakers import picker_model, speaker, speaker_server
from htmxchat.times import clock_time, full_time, iso_time, list_group
from htmxchat.tools.results import ToolResult

if TYPE_CHECKING:
    from htmxchat.markdown.html import Part

STATIC_PREFIX = "/static/"
# Header values are server-made ids, hex epochs and numbers: nothing that could end a comment.
_HEADER_VALUE = re.compile(r"[A-Za-z0-9_.:-]+")
ATTACHMENT_PREFIX = "/attachments/"


def frame_header(**fields: object) -> str:
    """`<!--frame kind=events req=3 …-->`: what a frame is, read by the page before htmx."""
    parts = []
    for key, value in fields.items():
        text = str(value)
        if not _HEADER_VALUE.fullmatch(text):
            raise ValueError(f"frame header {key}={text!r} is not a plain token")
        parts.append(f"{key}={text}")
    return f"<!--frame {' '.join(parts)}-->"


def numbers_header(
    items: Sequence[Numbered[Any]], *, feed: bool = False, rebuild: bool = False
) -> str:
    """`<!--14-->` or `<!--14-17-->` (feed: `<!--f5-->`): the numbers of a frame that follows
    a join on the same socket; the page knows the rest from the join (docs/design.md, "Frames").
    `rebuild` (`<!--14r-->`): the frame replaces the messages shown (another branch), so the
    page keeps the reader's place by id."""
    first, last = items[0].seq, items[-1].seq
    numbers = str(first) if first == last else f"{first}-{last}"
    return f"<!--{'f' if feed else ''}{numbers}{'r' if rebuild else ''}-->"


def rebuilds(items: Sequence[Numbered[RoomEvent]]) -> bool:
    """True when the events replace the messages shown (another branch)."""
    return any(isinstance(item.event, BranchShown) for item in items)


def setup_environment(env: jinja2.Environment) -> None:
    """Register the filters and globals our templates use."""
    env.filters["status_text"] = status_text
    env.globals["tool_state"] = tool_state
    env.filters["without_password"] = without_password
    env.filters["reply_stats"] = reply_stats
    env.globals["static_url"] = static_url
    env.globals["streams"] = {}  # a page or snapshot passes the streaming reply's state
    env.filters["markdown"] = markdown_html
    env.filters["stream_state"] = stream_state
    env.filters["stream_ops"] = stream_ops
    # The page checks messages by the server's own rules before sending them.
    env.globals["max_message_chars"] = MAX_MESSAGE_CHARS
    env.globals["blank_chars"] = " ".join(str(ord(c)) for c in BLANK_CHARS)  # code points
    # What the page says when it refuses before sending: the core's own words.
    env.globals["page_texts"] = {
        "too-long": TOO_LONG,
        "empty-edit": EMPTY_EDIT,
        "offline": OFFLINE,
        "offline-edit": OFFLINE_EDIT,
    }
    env.globals["attachment_url"] = attachment_url
    env.globals["source_url"] = source_url
    env.globals["inline_source_chars"] = INLINE_SOURCE_CHARS
    env.filters["file_size"] = size_text
    env.globals["attachment_limits"] = attachment_limits()
    env.filters.update(iso_time=iso_time, clock_time=clock_time, full_time=full_time)
    env.filters["list_group"] = list_group
    env.globals.update(speaker=speaker, speaker_server=speaker_server, picker_model=picker_model)
    env.trim_blocks = True
    env.lstrip_blocks = True


# The Markdown renderer is imported by the first message shown, not at start (it is most of
# the start-up's own code): hence the imports inside the three filters.


def markdown_html(text: str) -> Markup:
    """A finished message's Markdown as sanitised HTML."""
    from htmxchat.markdown.render import render_markdown

    return render_markdown(text)


def stream_state(ops: Sequence[Op], message_id: str, part: Part) -> Markup:
    """A streaming reply's body or reasoning as its Markdown operations build it."""
    from htmxchat.markdown.html import render_state, stream_ids

    prefix, tail = stream_ids(message_id, part)
    return render_state(prefix, ops, tail)


def stream_ops(ops: Sequence[Op], message_id: str, part: Part) -> Markup:
    """The out-of-band fragments applying `ops` to a streaming reply's body or reasoning."""
    from htmxchat.markdown.html import render_ops, stream_ids

    prefix, tail = stream_ids(message_id, part)
    return render_ops(prefix, ops, tail)


def source_url(conversation_id: str, message_id: str) -> str:
    """Where a message's Markdown is served (the `message_source` route): a big answer's
    Copy fetches it rather than carrying it in the page (docs/limits.md)."""
    return f"/c/{conversation_id}/m/{message_id}/source"


def attachment_url(attachment_id: str) -> str:
    """Where an attachment's bytes are served (the `attachment` route)."""
    return f"{ATTACHMENT_PREFIX}{attachment_id}"


def static_url(path: str) -> str:
    """URL of a served static file; the version busts caches after an upgrade."""
    return f"{STATIC_PREFIX}{path}?v={__version__}"


def tool_state(state: str, approval: str, result: ToolResult | None) -> str:
    """A tool call's state in words, for its summary line."""
    if state == "done":
        how = {"auto": " (always allowed)", "always": " (always allowed from now on)"}
        outcome = "failed" if result is not None and result.error else "ran"
        return outcome + how.get(approval, "")
    return {
        "streaming": "being written…",
        "asking": "waiting for you",
        "running": "running…",
        "denied": "denied",
    }.get(state, "stopped")


def status_text(message: Message) -> str:
    """The line shown under a reply that did not finish normally."""
    if message.status == "stopped":
        return "Stopped."
    if message.status == "interrupted":
        return "Interrupted: htmxchat stopped before this reply was finished."
    if message.status == "error":
        return message.error or "The reply failed."
    return message.error or ""


def reply_stats(message: Message) -> str:
    """Model, size and speed of a finished reply, e.g. "llama3 · 120 words · 35.1/s"."""
    # The demo bot streams words; model servers stream tokens (about one per chunk).
    # The server's own token count, when it reported usage, is exact; else count pieces.
    unit = "tokens" if message.model else "words"
    count = message.piece_count
    if message.completion_tokens is not None:
        unit, count = "tokens", message.completion_tokens
    parts = [message.model or message.bot or "bot", f"{count} {unit}"]
    if message.finished_at and message.first_piece_ms is not None:
        streaming = message.finished_at - message.created_at - message.first_piece_ms / 1000
        if streaming > 0.05 and count > 1:
            parts.append(f"{count / streaming:.1f} {unit}/s")
        parts.append(f"first after {message.first_piece_ms:.0f} ms")
    # How much of the model's context the conversation now uses (docs/design.md, "Context
    # window"), from the server's own counts.
    size = (message.provenance or {}).get("context")
    if isinstance(size, int) and message.prompt_tokens is not None:
        used = message.prompt_tokens + (message.completion_tokens or 0)
        parts.append(f"context {used:,} of {size:,} tokens")
    return " · ".join(parts)


class Fragments:
    """Renders the out-of-band fragments the page swaps in. Pure: it keeps no state."""

    def __init__(self, env: jinja2.Environment, answering: Answering) -> None:
        self.env = env
        # Asked for labels and the picker (plain values); it is never changed from here.
        self.answering = answering
        self.bot_label = answering.bot.label

    def _render(self, template: str, **context: Any) -> str:
        return self.env.get_template(template).render(**{"bot_label": self.bot_label, **context})

    def _header(self, kind: str, req: int, **data: object) -> str:
        return frame_header(kind=kind, req=req, **data)

    def message(self, message: Message, *, oob: str | None = None, streamed: bool = False) -> str:
        """One message; `oob` is the hx-swap-oob value (None for a page render). `streamed`:
        the page has its body from the stream already; the fragment keeps that body."""
        return self._render("_message.html", m=message, oob=oob, streamed=streamed)

    # -- a conversation ----------------------------------------------------------------

    def snapshot(self, snapshot: Snapshot, *, req: int) -> str:
        """The whole visible conversation and composer state, as of the snapshot's event."""
        header = self._header(
            "snapshot",
            req,
            conversation=snapshot.conversation_id,
            epoch=snapshot.epoch,
            seq=snapshot.seq,
        )
        return header + self._render("_snapshot.html", s=snapshot, streams=snapshot.streams)

    def events(self, items: Sequence[Numbered[RoomEvent]]) -> str:
        """Fragments for consecutive room events on a socket that joined the room already:
        the header carries only their numbers."""
        if not items:
            return ""
        header = numbers_header(items, rebuild=rebuilds(items))
        return header + "".join(self.room_event(item.event) for item in items)

    def joined_events(
        self, conversation_id: str, epoch: str, items: Sequence[Numbered[RoomEvent]], *, req: int
    ) -> str:
        """Consecutive room events answering a `sync` (a resumed page), after a header that
        names the request, conversation, epoch and numbers."""
        if not items:
            return ""
        header = self._header(
            "events",
            req,
            conversation=conversation_id,
            epoch=epoch,
            first=items[0].seq,
            seq=items[-1].seq,
            **({"rebuild": 1} if rebuilds(items) else {}),
        )
        return header + "".join(self.room_event(item.event) for item in items)

    def resumed(self, conversation_id: str, epoch: str, seq: int, *, req: int) -> str:
        """The answer to a `sync` whose page missed nothing: a header alone, so the page
        knows that the frames after it continue from `seq`."""
        return self._header("resume", req, conversation=conversation_id, epoch=epoch, seq=seq)

    def room_event(self, event: RoomEvent) -> str:
        """The fragments for one conversation event."""
        if isinstance(event, MessageAdded):
            html = self._render("_append.html", m=event.message)
            if event.message.role == "assistant":
                html += self.composer_actions(busy=True)
                # The top bar names the connection the reply comes from.
                label = event.message.bot or self.bot_label
                html += self._render("_bot_label.html", label=label, oob=True)
            return html
        if isinstance(event, ReplyDelta):
            return self._render("_delta.html", d=event)
        if isinstance(event, ToolCallsChanged):
            return self._render(
                "_tool_calls.html",
                message_id=event.message_id,
                conversation_id=event.conversation_id,
                calls=event.calls,
                notes=event.notes,
                live=True,
                oob=True,
            )
        if isinstance(event, ReplyFinished):
            finished = self.message(event.message, oob="true", streamed=True)
            return finished + self.composer_actions(busy=False)
        if isinstance(event, ReplyNotStarted):
            return self.composer_actions(busy=False)
        if isinstance(event, BranchShown):
            return self._render("_branch.html", b=event)
        if isinstance(event, ChoiceChanged):
            label = self.answering.label_for(event.choice)
            selected = self.answering.selected(event.choice)
            html = self._render("_bot_label.html", label=label, oob=True)
            return html + self.model_picker(selected, conversation_id=event.conversation_id)
        raise TypeError(f"unknown event {event!r}")

    # -- the conversation list ---------------------------------------------------------

    def feed_snapshot(
        self, feed: FeedSnapshot, *, current: str | None, req: int, selected: str | None = None
    ) -> str:
        """The whole conversation list and the model picker (with `selected`, the shown
        conversation's choice), as of the feed's event."""
        header = self._header("feed-snapshot", req, epoch=feed.epoch, seq=feed.seq)
        items = self._render(
            "_conversation_items.html", conversations=feed.conversations, current=current
        )
        return header + items + self.model_picker(selected, conversation_id=current)

    def feed_events(
        self,
        items: Sequence[Numbered[FeedEvent]],
        *,
        current: str | None,
        selected: str | None = None,
    ) -> str:
        """Fragments for consecutive feed events on a socket that joined the feed already;
        `current` is the conversation shown, `selected` its choice of model."""
        if not items:
            return ""
        body = "".join(self.feed_event(item.event, current, selected) for item in items)
        return numbers_header(items, feed=True) + body

    def joined_feed_events(
        self,
        epoch: str,
        items: Sequence[Numbered[FeedEvent]],
        *,
        current: str | None,
        req: int,
        selected: str | None = None,
    ) -> str:
        """Consecutive feed events answering a `sync`, after a header naming the request,
        the feed's epoch and the numbers."""
        if not items:
            return ""
        header = self._header("feed", req, epoch=epoch, first=items[0].seq, seq=items[-1].seq)
        return header + "".join(self.feed_event(item.event, current, selected) for item in items)

    def feed_resumed(self, epoch: str, seq: int, *, req: int) -> str:
        """The answer to a `sync` whose page has the whole feed: a header alone."""
        return self._header("feed-resume", req, epoch=epoch, seq=seq)

    def feed_event(self, event: FeedEvent, current: str | None, selected: str | None = None) -> str:
        """The fragments for one change of the conversation list."""
        if isinstance(event, ConversationCreated | ConversationUpdated):
            # A new conversation has no entry to move yet: deleting it would miss its target.
            created = isinstance(event, ConversationCreated)
            return self._render(
                "_conversation_moved.html", c=event.conversation, current=current, created=created
            )
        if isinstance(event, ConversationRenamed):
            return self._render("_conversation_renamed.html", c=event.conversation, current=current)
        if isinstance(event, ConversationDeleted):
            html = self._render("_conversation_deleted.html", conversation_id=event.conversation_id)
            if event.conversation_id == current:
                html += self.pane_gone()
            return html
        if isinstance(event, ModelsChanged):
            return self.model_picker(selected, conversation_id=current)
        raise TypeError(f"unknown event {event!r}")

    def model_picker(self, selected: str | None, *, conversation_id: str | None) -> str:
        """The top bar's model picker as the servers offer it now, with `selected` (the
        conversation's choice, else the default) chosen by the server."""
        if conversation_id is None:
            return ""
        chosen = self.answering.selected(selected)
        return self._render(
            "_model_picker.html",
            picker_oob=True,
            picker=self.answering.picker(chosen),
            conversation_id=conversation_id,
        )

    def pane_gone(self) -> str:
        """A new, empty conversation in place of one that was deleted while shown."""
        return self._render(
            "_pane.html",
            oob="outerHTML",
            picker=self.answering.picker(self.answering.selected(None)),
            conversation_id=new_id(),
            conversation=None,
            messages=[],
            older=False,
            focus=None,
            busy=False,
            epoch="",
            seq=0,
            notice="The conversation you were reading was deleted.",
            replace_url=True,
        )

    # -- the composer ------------------------------------------------------------------

    def composer_actions(self, *, busy: bool) -> str:
        """Send or Stop button, depending on whether a reply is running."""
        return self._render("_composer_actions.html", busy=busy, oob=True)

    def cleared_input(self, label: str | None = None, choice: str | None = None) -> str:
        """An empty, focused message box (after the server accepted a message); `label`
        names the connection the conversation uses (default: the default one's), `choice`
        the picker value it was sent with."""
        return self._render(
            "_composer_input.html", oob=True, bot_label=label or self.bot_label, chosen=choice
        )

    def cleared_attachments(self) -> str:
        """No attachments waiting in the composer (after the server accepted a message)."""
        return self._render("_attach_chips.html", oob=True)

    def notice(self, text: str | None) -> str:
        """Show (or with None, clear) the message above the composer."""
        return self._render("_notice.html", notice=text, oob=True)
