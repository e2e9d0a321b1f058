"""The built-in demo bot: canned replies streamed word by word, needing nothing at all."""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import AsyncGenerator, Mapping, Sequence

from htmxchat.answering.bots import BuiltIn, Item, Piece, ReplyEnd, Turn

REPLIES: tuple[str, ...] = (
    "Hello! I'm the demo bot. I don't understand a word you say, but I stream my answers "
    "exactly the way a real model would.",
    "Good question.",
    "Let me think about that for a moment... I'd say it depends on what you mean by it. "
    "Could you tell me a little more?",
    "Here is a longer answer, so you can watch the text flow in.\n\n"
    "Every word you see arrives over a single WebSocket as a tiny HTML fragment. htmx appends "
    "it to this message without touching anything else on the page, so even a very long chat "
    "stays light.\n\n"
    "When the reply is complete, the server sends the finished message once more, rendered "
    "the same way a page reload shows it. Nothing you type or read here leaves your machine.",
    "I'm only a demo. To chat with a real model, start a local server such as Ollama, "
    "llama.cpp or LM Studio, and htmxchat will find it.",
    "Sure! Here are three things to try:\n\n"
    "1. Reload the page: the conversation is still there.\n"
    "2. Open a second tab: it shows the same chat.\n"
    "3. Stop the server with Ctrl+C and start it again: nothing is lost.",
    "Interesting. Tell me more.",
)

_WORD = re.compile(r"\S+\s*|\s+")


class DemoBot(BuiltIn):
    """Answers with a random canned reply, one word every `word_delay` seconds."""

    label = "Demo bot"
    model: str | None = None

    def __init__(
        self,
        *,
        word_delay: float = 0.1,
        replies: Sequence[str] = REPLIES,
        rng: random.Random | None = None,
    ) -> None:
        if word_delay < 0:
            raise ValueError("word_delay must be 0 or more")
        if not replies:
            raise ValueError("the demo bot needs at least one reply")
        self.word_delay = word_delay
        self.replies = tuple(replies)
        self._rng = rng or random.Random()

    async def stream(
        self,
        history: Sequence[Turn],
        *,
        model: str | None = None,
        params: Mapping[str, object] | None = None,
    ) -> AsyncGenerator[Item, None]:
        """Yield a canned reply word by word (each word with its trailing whitespace)."""
        reply = self._rng.choice(self.replies)
        files = history[-1].files if history else ()
        if files:
            names = ", ".join(files)
            reply = (
                f"Thanks for the {'file' if len(files) == 1 else 'files'}: {names}. I'm only "
                "a demo and cannot read them, but a real model would see them.\n\n" + reply
            )
        for match in _WORD.finditer(reply):
            # sleep(0) still yields to the loop, so a 0 delay never starves other clients.
            await asyncio.sleep(self.word_delay)
            yield Piece(text=match.group())
        yield ReplyEnd("stop")
