"""HTML for pages and WebSocket frames, from the same Jinja partials (autoescaped)."""

from __future__ import annotations

from collections.abc import Iterable

import jinja2

from htmxchat import __version__
from htmxchat.events import Event, MessageAdded, ReplyDelta, ReplyFinished, ReplyNotStarted
from htmxchat.models import Message

STATIC_PREFIX = "/static/"


def setup_environment(env: jinja2.Environment) -> None:
    """Register the filters and globals our templates use."""
    env.filters["status_text"] = status_text
    env.filters["reply_stats"] = reply_stats
    env.globals["static_url"] = static_url
    env.trim_blocks = True
    env.lstrip_blocks = True


def static_url(path: str) -> str:
    """URL of a served static file; the version busts caches after an upgrade."""
    return f"{STATIC_PREFIX}{path}?v={__version__}"


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
    unit = "tokens" if message.model else "words"
    parts = [message.model or message.bot or "bot", f"{message.piece_count} {unit}"]
    if message.finished_at and message.first_piece_ms is not None:
        streaming = message.finished_at - message.created_at - message.first_piece_ms / 1000
        if streaming > 0.05 and message.piece_count > 1:
            parts.append(f"{message.piece_count / streaming:.1f}/s")
        parts.append(f"first after {message.first_piece_ms:.0f} ms")
    return " · ".join(parts)


class Fragments:
    """Renders the out-of-band fragments the page swaps in (DESIGN.md, Streaming)."""

    def __init__(self, env: jinja2.Environment, *, bot_label: str) -> None:
        self.env = env
        self.bot_label = bot_label

    def _render(self, template: str, **context: object) -> str:
        return self.env.get_template(template).render(bot_label=self.bot_label, **context)

    def message(self, message: Message, *, oob: str | None = None) -> str:
        """One message; `oob` is the hx-swap-oob value (None for a page render)."""
        return self._render("_message.html", m=message, oob=oob)

    def sync(
        self, messages: Iterable[Message], *, busy: bool, conversation_id: str, older: bool
    ) -> str:
        """The whole visible conversation and composer state, for a (re)connected socket.

        `older`: there are earlier messages, so the page gets a loader at the top.
        """
        return self._render(
            "_sync.html",
            messages=list(messages),
            busy=busy,
            conversation_id=conversation_id,
            older=older,
        )

    def event(self, event: Event, *, shown: set[str]) -> str:
        """The fragments for one chat event. `shown` holds ids already on the page."""
        if isinstance(event, MessageAdded):
            m = event.message
            if m.id in shown:
                return self.message(m, oob="true")
            shown.add(m.id)
            wrapped = self._render("_append.html", m=m)
            if m.role == "assistant":
                wrapped += self.composer_actions(busy=True)
            return wrapped
        if isinstance(event, ReplyDelta):
            return self.delta(event)
        if isinstance(event, ReplyFinished):
            return self.message(event.message, oob="true") + self.composer_actions(busy=False)
        if isinstance(event, ReplyNotStarted):
            return self.composer_actions(busy=False)
        raise TypeError(f"unknown event {event!r}")

    def delta(self, delta: ReplyDelta) -> str:
        """Only the new text, appended to the reply's body (and reasoning) elements."""
        return self._render("_delta.html", d=delta)

    def composer_actions(self, *, busy: bool) -> str:
        """Send or Stop button, depending on whether a reply is running."""
        return self._render("_composer_actions.html", busy=busy, oob=True)

    def cleared_input(self) -> str:
        """An empty, focused message box (after the server accepted a message)."""
        return self._render("_composer_input.html", oob=True)

    def notice(self, text: str | None) -> str:
        """Show (or with None, clear) the message above the composer."""
        return self._render("_notice.html", notice=text, oob=True)
