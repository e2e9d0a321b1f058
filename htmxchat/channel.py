"""Numbered event channels: every event gets the next number, subscribers read them in order.

A `Channel` numbers what it publishes (1, 2, 3, ... within an *epoch*, a random id that
changes whenever the channel is created anew) and keeps the most recent events, so a reader
that missed some can ask for "everything after N" instead of starting over. A `Subscription`
is one reader's bounded buffer; when it overflows it is emptied and marked, and its reader
catches up from the last number it handled (see docs/design.md, "Rooms and numbering").
"""

from __future__ import annotations

import asyncio
import secrets
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

E = TypeVar("E")

# A subscriber may lag this many events behind before its buffer is dropped.
SUBSCRIPTION_CAPACITY = 256
# Events a channel remembers for catching up: more than a subscription holds, so a reader
# that overflowed can usually resume exactly instead of taking a whole snapshot.
HISTORY_SIZE = 1024


@dataclass(frozen=True, slots=True)
class Numbered(Generic[E]):
    """An event with its number in its channel."""

    seq: int
    event: E


class Subscription(Generic[E]):
    """One reader's bounded buffer of numbered events.

    `wake` is set whenever something arrives (or the buffer overflowed); a reader may share
    one wake-up event between several subscriptions.
    """

    def __init__(self, channel: Channel[E], wake: asyncio.Event, after: int) -> None:
        self.channel = channel
        self.wake = wake
        self.last_seq = after  # the last number this reader has taken (or skipped past)
        self.overflowed = False
        self._buffer: deque[Numbered[E]] = deque()

    def _push(self, item: Numbered[E]) -> None:
        if self.overflowed:
            return
        if len(self._buffer) >= SUBSCRIPTION_CAPACITY:
            self._buffer.clear()
            self.overflowed = True
        else:
            self._buffer.append(item)
        self.wake.set()

    def pending(self) -> tuple[Numbered[E], ...]:
        """What is buffered and not yet taken (a snapshot uses it to know what follows)."""
        return tuple(self._buffer)

    def take(self, limit: int) -> list[Numbered[E]]:
        """Up to `limit` buffered events, in order; empty after an overflow (see catch_up)."""
        items: list[Numbered[E]] = []
        while self._buffer and len(items) < limit:
            items.append(self._buffer.popleft())
        if items:
            self.last_seq = items[-1].seq
        return items

    def skip_to(self, seq: int) -> None:
        """Drop buffered events up to number `seq` (a snapshot as of `seq` contains them)."""
        while self._buffer and self._buffer[0].seq <= seq:
            self._buffer.popleft()
        self.last_seq = max(self.last_seq, seq)

    def catch_up(self) -> list[Numbered[E]] | None:
        """After an overflow: the missed events from the channel's history, or None when
        they are no longer there (the reader needs a fresh snapshot)."""
        missed = self.channel.since(self.last_seq)
        self.overflowed = False
        self._buffer.clear()
        if missed is None:
            self.last_seq = self.channel.seq
            return None
        if missed:
            self.last_seq = missed[-1].seq
        return missed

    def close(self) -> None:
        """Stop receiving events."""
        self.channel.unsubscribe(self)


class Channel(Generic[E]):
    """Numbers events and hands them to every subscriber (never blocks the publisher)."""

    def __init__(self, history_size: int = HISTORY_SIZE) -> None:
        self.epoch = secrets.token_hex(4)
        self.seq = 0
        self._history: deque[Numbered[E]] = deque(maxlen=history_size)
        self._subscribers: set[Subscription[E]] = set()

    def __iter__(self) -> Iterator[Subscription[E]]:
        return iter(tuple(self._subscribers))

    def __len__(self) -> int:
        return len(self._subscribers)

    def publish(self, event: E) -> int:
        """Number `event`, remember it and queue it for every subscriber; returns its number."""
        self.seq += 1
        item = Numbered(self.seq, event)
        self._history.append(item)
        for subscription in self._subscribers:
            subscription._push(item)
        return self.seq

    def subscribe(self, wake: asyncio.Event) -> Subscription[E]:
        """A subscription receiving every event after the current one."""
        subscription = Subscription(self, wake, self.seq)
        self._subscribers.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription[E]) -> None:
        """Forget a subscription (no error if it is already gone)."""
        self._subscribers.discard(subscription)

    def since(self, seq: int) -> list[Numbered[E]] | None:
        """The events after number `seq`, or None when some of them are forgotten."""
        if seq > self.seq or seq < 0:
            return None
        if seq == self.seq:
            return []
        oldest = self._history[0].seq if self._history else self.seq + 1
        if seq + 1 < oldest:
            return None
        return [item for item in self._history if item.seq > seq]
