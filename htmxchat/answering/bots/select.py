"""Choose the bot at start-up: the configured model server, a detected local one, or the demo."""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass

from htmxchat.answering.bots import Bot, BotError
from htmxchat.answering.bots.demo import DemoBot
from htmxchat.answering.bots.detect import DEFAULT_CANDIDATES, Candidate, detect_local_server
from htmxchat.answering.bots.openai import OpenAICompatBot
from htmxchat.answering.bots.openai_models import list_models
from htmxchat.config import Settings
from htmxchat.provenance import without_password

log = logging.getLogger(__name__)

# Listing models at start-up must not hold up the page for long.
STARTUP_LIST_TIMEOUT = 3.0


@dataclass(frozen=True, slots=True)
class ChosenBot:
    """The bot to use, the models it offers, and a line telling the user about it."""

    bot: Bot
    models: tuple[str, ...]
    description: str
    problem: str | None = None  # why the chosen server could not be asked for models
    demo: bool = False  # the built-in demo bot (the Servers page then lists no second one)


async def choose_bot(
    settings: Settings, *, candidates: Sequence[Candidate] = DEFAULT_CANDIDATES
) -> ChosenBot:
    """Apply --bot: `demo`, `openai` (the given or OpenAI's base URL), or `auto` (default).

    `auto` uses --base-url when given, else the first local server that answers
    (Ollama, llama.cpp, LM Studio), else the demo bot.
    """
    if settings.bot == "demo":
        return _demo(settings, "the demo bot (--bot demo)")
    if settings.bot == "auto" and not settings.base_url:
        found = await detect_local_server(candidates)
        if found is None:
            return _demo(settings, "the demo bot (no local model server found)")
        bot = _openai(settings, found.base_url, found.label, found.models)
        return ChosenBot(bot, found.models, _describe(bot))
    base_url = settings.base_url or ""
    problem = None
    try:
        models = tuple(
            await list_models(base_url, api_key=settings.api_key, timeout=STARTUP_LIST_TIMEOUT)
        )
    except BotError as exc:
        models, problem = (), str(exc)
    bot = _openai(settings, base_url, None, models)
    return ChosenBot(bot, models, _describe(bot), problem)


def _demo(settings: Settings, why: str) -> ChosenBot:
    rng = random.Random(settings.demo_seed) if settings.demo_seed is not None else None
    return ChosenBot(
        DemoBot(word_delay=settings.word_delay, rng=rng), (), f"Replies come from {why}.", demo=True
    )


def _openai(
    settings: Settings, base_url: str, label: str | None, models: tuple[str, ...]
) -> OpenAICompatBot:
    model = settings.model or (models[0] if models else None)
    return OpenAICompatBot(
        base_url,
        model,
        api_key=settings.api_key,
        system_prompt=settings.system_prompt,
        temperature=settings.temperature,
        stall_timeout=settings.stall_timeout,
        label=label,
    )


def _describe(bot: OpenAICompatBot) -> str:
    model = bot.model or "the server's first model"
    return f"Replies come from {bot.label} at {without_password(bot.base_url)} using {model}."
