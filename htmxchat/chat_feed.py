"""The conversation list's feed: created, updated, renamed and deleted conversations, and
changes of model servers, for every page (docs/design.md, "The feed").

Part of the chat core (chat.py).
"""

from __future__ import annotations

import logging

from htmxchat.chat_replies import ChatReplies
from htmxchat.events import (
    ConversationCreated,
    ConversationDeleted,
    ConversationRenamed,
    ConversationUpdated,
    ModelsChanged,
)
from htmxchat.models import Conversation, Message
from htmxchat.store import StoreError

log = logging.getLogger(__name__)


class ChatFeed(ChatReplies):
    """Feed commands: what every conversation list learns."""

    async def _announce(self, user: Message) -> None:
        """Tell every conversation list that this conversation has a new message."""
        try:
            conversation = await self.store.conversation(user.conversation_id)
        except StoreError as exc:
            log.warning(
                "could not read conversation %s for the list: %s", user.conversation_id, exc
            )
            return
        if conversation is None:
            return
        created = conversation.created_at == user.created_at
        self.feed.publish(
            ConversationCreated(conversation) if created else ConversationUpdated(conversation)
        )

    async def rename(self, conversation_id: str, title: str) -> Conversation | None:
        """Set a conversation's title; None when it does not exist."""
        conversation = await self.store.rename_conversation(conversation_id, title)
        if conversation is not None:
            self.feed.publish(ConversationRenamed(conversation))
        return conversation

    async def delete(self, conversation_id: str) -> bool:
        """Stop the conversation's reply and erase it for good; False if it did not exist."""
        self.stop(conversation_id)
        deleted = await self.store.delete_conversation(conversation_id)
        if deleted:
            self.feed.publish(ConversationDeleted(conversation_id))
        return deleted

    def models_changed(self) -> None:
        """Tell every page that the model servers changed (its picker is rendered anew)."""
        self.feed.publish(ModelsChanged())
