"""The reply plan: everything the chat core needs to run one reply, decided in one place.

The core stores the plan's label, model and provenance with the answer and hands the bot the
plan's turns and parameters; it never looks at a bot, a server or a setting itself
(docs/design.md, "Who answers").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from htmxchat.answering.bots import Bot, Turn
from htmxchat.attachments import AttachmentData, model_content
from htmxchat.models import Message
from htmxchat.tools.offer import ToolOffer
from htmxchat.tools.results import ToolCall


@dataclass(frozen=True, slots=True)
class ReplyPlan:
    """Who writes one reply, with what: bot, model, the turns sent, parameters, provenance."""

    bot: Bot
    model: str | None  # the model asked for; None: the bot's own default
    turns: tuple[Turn, ...]
    params: Mapping[str, object] = field(default_factory=dict)
    # What produced the answer (connection, bot, base URL, model, parameters, system prompt,
    # context size).
    provenance: Mapping[str, Any] = field(default_factory=dict)
    # The tools the reply may call (docs/tools.md); None: no tools.
    tools: ToolOffer | None = None
    context: int | None = None  # tokens the model holds, where its server says

    @property
    def label(self) -> str:
        """The bot's name, stored with the answer and shown in the top bar."""
        return self.bot.label

    @property
    def model_name(self) -> str | None:
        """The model recorded with the answer: the one asked for, else the bot's default."""
        return self.model or self.bot.model


def to_turns(
    messages: Sequence[Message], files: Mapping[str, Sequence[AttachmentData]] | None = None
) -> list[Turn]:
    """The conversation as a bot sees it.

    Empty replies (failed before any text) are left out, and of several answers to the same
    question (regenerated) only the latest is kept, so roles keep alternating as chat
    templates of local models require.
    """
    turns: list[Turn] = []
    for m in messages:
        if m.role == "assistant" and m.tool_calls:
            turns.extend(tool_turns(m))
            continue
        if m.role == "assistant" and not m.content:
            continue
        if m.role == "assistant" and turns and turns[-1].role == "assistant":
            turns[-1] = _turn(m)
        else:
            turns.append(_user_turn(m, files[m.id]) if files and m.id in files else _turn(m))
    return turns


DECLINED = "The user declined to run this tool call."
STOPPED = "The call was stopped before it returned."


def tool_turns(m: Message) -> list[Turn]:
    """An answer with tool calls as the model saw it: per round, its text and calls, then
    one `tool` turn per call (every call needs one); then the text after the last round."""
    turns: list[Turn] = []
    start = 0
    rounds = sorted({c.round for c in m.tool_calls})
    for number in rounds:
        calls = tuple(c for c in m.tool_calls if c.round == number)
        at = max(start, min(c.at for c in calls))
        turns.append(Turn("assistant", m.content[start:at].strip(), tool_calls=calls))
        turns.extend(Turn("tool", tool_answer(c), tool_call_id=c.id) for c in calls)
        start = at
    rest = m.content[start:].strip()
    if rest:
        turns.append(Turn("assistant", rest))
    return turns


def tool_answer(call: ToolCall) -> str:
    """What the model is told a call returned."""
    if call.result is not None:
        return call.result.text if not call.result.error else f"Error: {call.result.text}"
    return DECLINED if call.state == "denied" else STOPPED


def _turn(m: Message) -> Turn:
    return Turn(m.role, m.content)


def _user_turn(m: Message, files: Sequence[AttachmentData]) -> Turn:
    """A message with attachments: text files inside the text, images beside it."""
    content, images = model_content(m.content, files)
    return Turn(m.role, content, images, tuple(f.info.name for f in files))
