"""Starting replies: the chat core asks `Answering` for a reply plan (answering/plan.py), stores
the streaming answer and runs it as a task of its room; a conversation's own settings and
choice of model, and the user's decisions on tool calls.

Part of the chat core (chat.py); see docs/design.md, "Who answers".
"""

from __future__ import annotations

from dataclasses import replace

from htmxchat import tree
from htmxchat.answering.chat_settings import ChatSettings, from_stored
from htmxchat.answering.context import ContextFull, check_fits
from htmxchat.answering.plan import to_turns
from htmxchat.answering.routing import ChatInputError
from htmxchat.chat_reading import ChatReading
from htmxchat.events import ChoiceChanged, MessageAdded
from htmxchat.ids import new_id
from htmxchat.models import Message
from htmxchat.reply import Reply
from htmxchat.room import Room
from htmxchat.tools import chat_tools


class ChatReplies(ChatReading):
    """Reply planning and the conversation's own settings."""

    async def _start_reply(
        self,
        room: Room,
        history: list[Message],
        model: str | None,
        *,
        new_branch: bool = False,
    ) -> None:
        """Store a streaming answer below the end of `history` and start it. `new_branch`:
        the answer is another version, so readers are first shown the branch down to its
        question (in the same step as the answer appears, so a join in between stays exact)."""
        files = await self.store.attachment_data(room.conversation_id)
        # The chat's own settings over the app's defaults; the picker's model, when the page
        # sent one, is remembered as the chat's (docs/design.md, "Connections and chat
        # settings").
        stored = await self.store.chat_settings(room.conversation_id)
        own = from_stored(stored)
        if model is not None and model != own.model:
            await self.store.save_chat_settings(room.conversation_id, {**stored, "model": model})
            room.publish(ChoiceChanged(room.conversation_id, model))
        tools = chat_tools.from_stored(stored)
        plan = self.answering.plan(history, own, model, files, tools=tools)
        message = await self.store.add_message(
            Message(
                id=new_id(),
                conversation_id=room.conversation_id,
                role="assistant",
                content="",
                status="streaming",
                bot=plan.label,
                model=plan.model_name,
                provenance=plan.provenance,
                parent_id=history[-1].id if history else tree.ROOT,
            )
        )
        reply = Reply(
            message,
            plan=plan,
            store=self.store,
            publish=room.publish,
            clock=self._clock,
            coalesce_window=self.coalesce_window,
            checkpoint_interval=self.checkpoint_interval,
        )
        room.reply, room.phase = reply, "replying"
        if new_branch:
            room.publish(self._branch_event(room.conversation_id, history))
        room.publish(MessageAdded(message))
        reply.start(self._reply_ended)
        if room.stop_requested or self._closing:
            reply.request_stop("interrupted" if self._closing else "stopped")

    def _reply_ended(self, reply: Reply) -> None:
        room = self._rooms.get(reply.message.conversation_id)
        if room is not None and room.reply is reply:
            room.reply, room.phase = None, "idle"
        self._tidy()

    def decide(self, conversation_id: str, message_id: str, call: int, decision: str) -> None:
        """The user's Allow / Deny / Always allow on a tool call of the reply being written
        (docs/tools.md, "Asking"); ChatInputError when that call no longer waits."""
        room = self._rooms.get(conversation_id)
        reply = room.reply if room is not None else None
        if reply is None or reply.message.id != message_id or not reply.decide(call, decision):
            raise ChatInputError(
                "That tool call is no longer waiting for an answer (it was decided in "
                "another tab, or the reply ended)."
            )

    async def _check_fits(self, conversation_id: str, text: str, model: str | None) -> None:
        """ChatInputError, before anything is stored, when the message will not fit the
        model's context window (where its server says how large it is)."""
        own = await self.own_settings(conversation_id)
        route = self.answering.route(model if model is not None else own.model)
        size = self.answering.context_size(route)
        if size is None:
            return
        history = await self.store.branch(conversation_id)
        new = Message(id="", conversation_id=conversation_id, role="user", content=text)
        try:
            check_fits(size, to_turns([*history, new]), [*history, new])
        except ContextFull as exc:
            raise ChatInputError(str(exc)) from None

    async def remembered_choice(self, conversation_id: str) -> str | None:
        """The picker value the conversation's settings name, if any (offered or not)."""
        return from_stored(await self.store.chat_settings(conversation_id)).model

    async def own_settings(self, conversation_id: str) -> ChatSettings:
        """The conversation's own settings (unset ones are None)."""
        return from_stored(await self.store.chat_settings(conversation_id))

    async def choose(self, conversation_id: str, choice: str | None) -> None:
        """Remember the picker value the conversation uses (ChatInputError when it is not
        offered); every tab on it shows the choice."""
        own = await self.own_settings(conversation_id)
        await self.save_settings(conversation_id, replace(own, model=choice or None))

    async def save_settings(
        self,
        conversation_id: str,
        settings: ChatSettings,
        tools: chat_tools.ChatTools | None = None,
    ) -> None:
        """Replace the conversation's own settings, and its tool settings when `tools` is
        given (kept otherwise); ChatInputError when its model is not offered. Every tab on
        it learns the choice at once."""
        if settings.model is not None:
            self.answering.check(settings.model)
        stored = await self.store.chat_settings(conversation_id)
        kept = (
            tools.to_stored() if tools is not None else chat_tools.from_stored(stored).to_stored()
        )
        await self.store.save_chat_settings(conversation_id, {**settings.to_dict(), **kept})
        self._room(conversation_id).publish(ChoiceChanged(conversation_id, settings.model))
        self._tidy()
