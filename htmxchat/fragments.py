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
from typing import Any

import jinja2

from htmxchat.answering.service import Answering
from htmxchat.channel import Numbered
from htmxchat.chat import FeedSnapshot, Snapshot
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
from htmxchat.models import Message

# Header values are server-made ids, hex epochs and numbers: nothing that could end a comment.
_HEADER_VALUE = re.compile(r"[A-Za-z0-9_.:-]+")


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
