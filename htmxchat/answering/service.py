"""`Answering`: the one place that decides who answers, and with what.

The chat core asks it for a `ReplyPlan` per reply; the views, the socket and the templates
ask it for labels and the selection. It knows the default bot and its models, the app-wide
defaults under every chat's own settings, and the other servers (docs/design.md, "Who
answers").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from htmxchat.answering.bots import Bot, Turn
from htmxchat.answering.chat_settings import ChatSettings
from htmxchat.answering.connections import Connections
from htmxchat.answering.picker import Picker
from htmxchat.answering.picker import build as build_picker
from htmxchat.answering.plan import ReplyPlan, to_turns
from htmxchat.answering.routing import BotDirectory, ChatInputError, Route, Router
from htmxchat.attachments import AttachmentData
from htmxchat.models import Message
from htmxchat.provenance import without_password
from htmxchat.tools.chat_tools import ChatTools
from htmxchat.tools.offer import ToolOffer
from htmxchat.tools.servers import ToolServers


class Answering:
    """Resolves picker values and chat settings into reply plans."""

    def __init__(
        self,
        bot: Bot,
        *,
        models: tuple[str, ...] = (),
        defaults: ChatSettings | None = None,
        directory: BotDirectory | None = None,
        servers: Connections | None = None,
    ) -> None:
        self.bot = bot
        self.servers = servers  # every server, for the picker and labels (connections.py)
        self.router = Router(bot, models, servers if servers is not None else directory)
        # App-wide defaults (--system-prompt, --temperature) under every chat's own settings.
        self.defaults = defaults or ChatSettings()
        # The MCP servers replies may call (set by the app; None: no tools at all).
        self.toolbox: ToolServers | None = None

    @property
    def models(self) -> tuple[str, ...]:
        """The default bot's models (refreshed when its server is asked again)."""
        return self.router.models

    @models.setter
    def models(self, models: tuple[str, ...]) -> None:
        self.router.models = models

    def route(self, choice: str | None) -> Route:
        """Resolve a model picker value to a bot and model (ChatInputError if not offered)."""
        return self.router.route(choice)

    def check(self, choice: str | None) -> None:
        """Refuse (ChatInputError) a picker value that is not offered, before anything is
        stored."""
        self.router.route(choice)

    def offered(self, choice: str | None) -> bool:
        """True when `choice` is a picker value offered now."""
        try:
            self.router.route(choice)
        except ChatInputError:
            return False
        return True

    def selected(self, remembered: object, messages: Sequence[Message] = ()) -> str:
        """The picker value a conversation shows: its own remembered choice while it is
        offered, else the model its last answer used, else the default bot's model."""
        if isinstance(remembered, str) and self.offered(remembered):
            return remembered
        for message in reversed(messages):
            if message.role == "assistant" and message.model in self.models:
                return message.model
        # The default server's entry: its model, or "" for its own default (picker values).
        return self.bot.model or ""

    def label_for(self, choice: str | None) -> str:
        """The name of the server a picker value belongs to (the default's when unknown)."""
        found = self.servers.label_for(choice) if self.servers is not None else None
        return found or self.bot.label

    def picker(self, selected: str | None) -> Picker:
        """The top bar's picker with `selected` chosen, as plain values."""
        groups = self.servers.picker() if self.servers is not None else []
        return build_picker(groups, selected)

    def plan(
        self,
        history: Sequence[Message],
        own: ChatSettings,
        choice: str | None,
        files: Mapping[str, Sequence[AttachmentData]] | None = None,
        *,
        tools: ChatTools | None = None,
    ) -> ReplyPlan:
        """The plan for answering the end of `history`: the chat's own settings `own` over
        the defaults, and the picker value `choice` (else the chat's own model); `tools`:
        what the chat allows of the tool servers."""
        effective = own.over(self.defaults)
        route = self.route(choice if choice is not None else own.model)
        params = effective.params()
        turns = to_turns(history, files)
        if effective.system_prompt:
            turns.insert(0, Turn("system", effective.system_prompt))
        provenance: dict[str, Any] = {
            "connection": route.connection,
            "bot": route.bot.label,
            "base_url": without_password(route.base_url) if route.base_url else None,
            "model": route.model or route.bot.model,
            "params": params,
            "system_prompt": effective.system_prompt,
        }
        context = self.context_size(route)
        if context is not None:
            provenance["context"] = context
        offer = self._offer(route.bot, tools)
        return ReplyPlan(
            route.bot, route.model, tuple(turns), params, provenance, offer, context=context
        )

    def context_size(self, route: Route) -> int | None:
        """Tokens the route's model holds, where its server said (docs/design.md, "Context
        window"); None when it did not."""
        if self.servers is None:
            return None
        connection = self.servers.get(route.connection)
        model = route.model or route.bot.model
        if connection is None or model is None:
            return None
        return connection.context.get(model)

    def _offer(self, bot: Bot, tools: ChatTools | None) -> ToolOffer | None:
        """The tools a reply by `bot` may call, with a note on each the chat chose that it
        cannot have (the page says why instead of leaving them out silently)."""
        if tools is None or not tools.servers or self.toolbox is None:
            return None
        self.toolbox.reload()  # mcp.json may have changed since (a stat when it did not)
        usable = self.toolbox.usable(tools.servers)
        notes = []
        gone = [name for name in tools.servers if name not in usable]
        if gone:
            notes.append(
                f"Not offered: {', '.join(gone)} (switched off on the Tools page, or no "
                "longer in mcp.json)."
            )
        if usable and not bot.capabilities.tools:
            notes.append(
                f"No tools were offered: {bot.label} cannot call tools. Pick a model server "
                "that can (Ollama, llama.cpp started with --jinja, LM Studio, vLLM, OpenAI)."
            )
            usable = ()
        always = frozenset(tools.always)
        return ToolOffer(self.toolbox, usable, tools.rounds, always, notes=tuple(notes))
