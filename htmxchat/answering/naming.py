"""Naming a chat with its model, only when the user asks for it.

Titles are the first words of the first message; nothing talks to a model behind the user's
back (docs/design.md, "Who answers"). This module asks the conversation's
own model for a short title and tidies the answer up. No aiohttp, no HTML.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence

from htmxchat.answering.bots import BotError, Piece, Turn
from htmxchat.answering.routing import Route
from htmxchat.models import Message

NAME_TIMEOUT = 60.0  # seconds: a slow local model may need a while to start
MAX_EXCERPT = 3000  # characters of the conversation the model is shown
MAX_ANSWER = 300  # characters read from the model before it is cut off
MAX_TITLE = 80
PROMPT = (
    "Write a short title, at most six words, for the conversation below. Reply with the "
    "title only: no quotes, no explanation.\n\n"
)


class NamingError(Exception):
    """The model could not name the chat; the message says why in plain words."""


def excerpt(messages: Sequence[Message]) -> str:
    """The start of the conversation as plain text, at most MAX_EXCERPT characters."""
    lines = []
    for message in messages:
        if message.role in ("user", "assistant") and message.content.strip():
            who = "User" if message.role == "user" else "Assistant"
            lines.append(f"{who}: {message.content.strip()}")
    return "\n\n".join(lines)[:MAX_EXCERPT]


def tidy(answer: str) -> str:
    """A title from the model's answer: its first non-blank line without quotes, Markdown
    marks or a final full stop, cut at a word to at most MAX_TITLE characters."""
    line = next((t.strip() for t in answer.splitlines() if t.strip()), "")
    line = re.sub(r"^(#+\s*)?(title\s*:\s*)?", "", line, flags=re.IGNORECASE)
    line = line.strip(" \t*_`\"'“”\u2018\u2019«»").rstrip(".").strip()
    line = " ".join(line.split())
    if len(line) > MAX_TITLE:
        line = line[:MAX_TITLE].rsplit(" ", 1)[0].rstrip(",;:") + "…"
    return line


async def suggest_title(route: Route, messages: Sequence[Message]) -> str:
    """Ask the route's model for a title of `messages`; NamingError when it cannot."""
    text = excerpt(messages)
    if not text:
        raise NamingError("There is nothing to name yet: send a message first.")
    model = route.model or route.bot.model
    who = route.bot.label + (f" ({model})" if model else "")
    answer = ""
    try:
        async with asyncio.timeout(NAME_TIMEOUT):
            stream = route.bot.stream([Turn("user", PROMPT + text)], model=route.model)
            try:
                async for item in stream:
                    if isinstance(item, Piece):
                        answer += item.text
                    if len(answer) > MAX_ANSWER:
                        break  # a title is short; closing the stream stops the request
            finally:
                # Close the generator at once (a break left it open): the request ends.
                await stream.aclose()
    except BotError as exc:
        raise NamingError(f"{who} could not name this chat: {exc}") from exc
    except TimeoutError:
        raise NamingError(
            f"{who} did not answer within {NAME_TIMEOUT:g} seconds; the title is unchanged."
        ) from None
    title = tidy(answer)
    if not title:
        raise NamingError(f"{who} answered without a title; the title is unchanged.")
    return title
