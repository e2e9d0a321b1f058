"""Commands on the message tree: show another version, reveal a search hit's branch, delete a
message and what follows (docs/design.md, "Message tree").

Part of the chat core (chat.py).
"""

from __future__ import annotations

from htmxchat.answering.routing import ChatInputError
from htmxchat.chat_feed import ChatFeed
from htmxchat.chat_reading import PAGE_MESSAGES
from htmxchat.events import BranchShown
from htmxchat.models import Message
from htmxchat.room import Room


class ChatTree(ChatFeed):
    """Tree commands, and finding a message of a conversation."""

    async def show_version(self, conversation_id: str, target: str, step: int) -> None:
        """Show the previous (`step` -1) or next (+1) version of message `target` and the
        branch below it, in every tab; remembered in the chat log."""
        room = self._room(conversation_id)
        if room.busy:
            raise ChatInputError(
                "A reply is still being written. Wait for it to finish or press Stop."
            )
        await self._own_message(conversation_id, target, None)
        await self.store.show_version(conversation_id, target, step)
        await self._publish_branch(room)

    async def reveal(self, conversation_id: str, message_id: str) -> None:
        """Show the branch through `message_id` (a search hit on another version), in every
        tab; left as it is while a reply is being written."""
        room = self._room(conversation_id)
        if room.busy:
            return
        if await self.store.show_path(conversation_id, message_id):
            await self._publish_branch(room)
        self._tidy()

    async def delete_message(self, conversation_id: str, target: str) -> int:
        """Erase message `target` and everything below it (every version of what followed),
        for real; the number of messages erased."""
        room = self._reserve(conversation_id)
        try:
            await self._own_message(conversation_id, target, None)
            erased = await self.store.delete_messages(conversation_id, target)
            await self._publish_branch(room)
        finally:
            self._release(room)
            self._tidy()
        return erased

    async def _own_message(
        self, conversation_id: str, message_id: str, role: str | None
    ) -> Message:
        """The message `message_id` of this conversation (of `role` if given), or a
        ChatInputError the page shows."""
        message = await self.store.message(message_id)
        if message is None or message.conversation_id != conversation_id:
            raise ChatInputError("That message is no longer there; it may have been deleted.")
        if role is not None and message.role != role:
            raise ChatInputError(
                "Only your own messages can be edited."
                if role == "user"
                else "Only answers can be regenerated."
            )
        return message

    async def _publish_branch(self, room: Room) -> None:
        """Tell every reader which branch is shown now."""
        messages, older = await self.store.shown(room.conversation_id, limit=PAGE_MESSAGES)
        room.publish(BranchShown(room.conversation_id, tuple(messages), older))
