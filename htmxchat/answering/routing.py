"""Where a reply goes: the model picker's value resolved to a bot, a model and what to record
about them (docs/design.md, "Who answers").

Only offered names are accepted: a forged one must not reach (and bill) an API.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from htmxchat.answering.bots import Bot

MAX_MODEL_NAME = 256


class ChatInputError(Exception):
    """The user's input was refused; the message says why and what to do."""


class BotDirectory(Protocol):
    """Other model servers than the default bot (connections.py), looked up by id."""

    def lookup(self, connection_id: str) -> tuple[Bot, tuple[str, ...], str | None] | None:
        """The connection's bot, its models and its base URL; None when there is none."""
        ...


# A model picker value naming another connection: "<connection id>|<model>". The default
# bot's models are plain names (docs/design.md, "Who answers").
CHOICE_SEPARATOR = "|"


@dataclass(frozen=True, slots=True)
class Route:
    """Where a reply goes: the bot, the model, and what to record about them."""

    bot: Bot
    model: str | None
    connection: str  # connection id ("default" for the app's own bot)
    base_url: str | None


class Router:
    """Resolves picker values: the default bot's plain model names, or `<connection>|<model>`
    for another connection found in the directory."""

    def __init__(
        self, bot: Bot, models: tuple[str, ...] = (), directory: BotDirectory | None = None
    ) -> None:
        self.bot = bot
        self.models = models
        self.directory = directory

    def check_model(self, model: str | None) -> str | None:
        """The model to use for a reply: one the bot offers, or None for its default.

        Only offered names are accepted: a forged one must not reach (and bill) the API.
        """
        if model is None or not self.models:
            return None
        if model not in self.models:
            shown = model[:MAX_MODEL_NAME]
            raise ChatInputError(
                f"The model {shown!r} is not offered here; pick one from the list."
            )
        return model

    def route(self, choice: str | None) -> Route:
        """Resolve a model picker value to a bot and model (ChatInputError if not offered)."""
        prefix, sep, name = (choice or "").partition(CHOICE_SEPARATOR)
        found = self.directory.lookup(prefix) if sep and self.directory is not None else None
        if found is None:
            base = self.bot.capabilities.base_url
            return Route(self.bot, self.check_model(choice), "default", base)
        bot, models, base_url = found
        if models and name not in models:
            raise ChatInputError(
                f"The model {name[:MAX_MODEL_NAME]!r} is not offered by {bot.label}; "
                "pick one from the list."
            )
        return Route(bot, name or None, prefix, base_url)
