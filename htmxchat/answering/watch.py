"""Servers that come and go: while a page is open, every server is asked again in the
background, so one started after htmxchat shows up and one that stopped shows as down,
within a few seconds and without a reload (docs/design.md, "Servers that come and go").

An up server on this computer is asked every UP_EVERY seconds; a down (or loading) one first
after DOWN_FIRST seconds, then backing off to DOWN_MOST. Servers elsewhere (an API on the
internet) are asked at most every REMOTE_EVERY seconds. Only their model list is asked for:
nothing here talks to a model. With no page open nothing is asked at all.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from collections.abc import Callable

from yarl import URL

from htmxchat.answering.connections import Connection, Connections

log = logging.getLogger(__name__)

UP_EVERY = 2.0  # a dead server shows as down within this plus PROBE_LIMIT
DOWN_FIRST = 0.5
DOWN_MOST = 3.0  # a server started late shows within this plus PROBE_LIMIT
REMOTE_EVERY = 30.0
PROBE_LIMIT = 1.5  # seconds one question may take; a server slower than that is down
TICK = 0.25  # how often the watch looks whether a server is due


def is_local(base_url: str | None) -> bool:
    """True for an address on this computer (loopback), where asking often costs nothing."""
    host = URL(base_url or "").host or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class ServerWatch:
    """Asks the servers again while `pages_open()`; calls `changed()` when what the pages
    show of any server changed (its state, models, problem or context size)."""

    def __init__(
        self,
        servers: Connections,
        *,
        pages_open: Callable[[], bool],
        changed: Callable[[], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.servers = servers
        self.pages_open = pages_open
        self.changed = changed
        self.clock = clock
        self._due: dict[str, float] = {}
        self._wait: dict[str, float] = {}  # the current back-off of a server that is down
        self.rounds = 0  # how many times it has looked (tests wait on it instead of sleeping)

    async def run(self) -> None:
        """Watch until cancelled (at shutdown)."""
        while True:
            if self.pages_open():
                await self.check_due()
            self.rounds += 1
            await asyncio.sleep(TICK)

    async def check_due(self) -> None:
        """Ask the servers that are due, all at once, and schedule their next question."""
        now = self.clock()
        due = [c for c in self.servers.all() if c.asks_server and self._due.get(c.id, 0) <= now]
        if not due:
            return
        changed = await self.servers.refresh(due, limit=PROBE_LIMIT)
        for connection in due:
            self._schedule(connection)
        if changed:
            log.info(
                "model servers now: %s",
                ", ".join(f"{c.name} {c.state}" for c in self.servers.all()),
            )
            self.changed()

    def _schedule(self, connection: Connection) -> None:
        local = is_local(connection.base_url)
        if connection.state == "up":
            self._wait.pop(connection.id, None)
            wait = UP_EVERY if local else REMOTE_EVERY
        else:
            previous = self._wait.get(connection.id)
            wait = DOWN_FIRST if previous is None else min(previous * 2, DOWN_MOST)
            if not local:
                wait = max(wait, REMOTE_EVERY)
            self._wait[connection.id] = wait
        self._due[connection.id] = self.clock() + wait
