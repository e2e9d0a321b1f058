"""The configured MCP servers: started when first needed, restarted after dying (saying
so), stopped with htmxchat, each with a switch on the Tools page (docs/tools.md).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from htmxchat.private_file import write_private
from htmxchat.tools.client import (
    NEEDS_SDK,
    Connection,
    ToolServerError,
    sdk_installed,
)
from htmxchat.tools.config import ServerEntry, ToolConfig, ToolConfigError, load_config
from htmxchat.tools.results import ToolInfo, ToolResult, failed

log = logging.getLogger(__name__)

State = Literal["off", "not started", "running", "failed"]


@dataclass(frozen=True, slots=True)
class ServerStatus:
    """One server as the Tools page shows it."""

    entry: ServerEntry
    state: State
    reason: str | None = None  # why it failed, in words (with its stderr's last lines)
    tools: tuple[ToolInfo, ...] = ()


class ToolServers:
    """Every server of `mcp.json`, with its connection once started."""

    def __init__(
        self,
        config_path: Path,
        switches_path: Path,
        *,
        on_change: Callable[[], object] = lambda: None,
        sdk: bool | None = None,
    ) -> None:
        self.config_path = config_path
        self._switches_path = switches_path  # names of servers switched off, as JSON
        self._on_change = on_change  # tell every page that servers or tools changed
        self.sdk = sdk_installed() if sdk is None else sdk
        self.config = ToolConfig(config_path)
        self.config_error: str | None = None
        self._mtime: float | None = None
        self._connections: dict[str, Connection] = {}
        self._failures: dict[str, str] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._stopping: set[asyncio.Task[None]] = set()  # servers being stopped after a reload
        self.off: set[str] = self._read_switches()
        self.reload()

    # -- configuration -----------------------------------------------------------------

    def reload(self) -> bool:
        """Read `mcp.json` again if it changed; True when it did. Servers whose entry
        changed or went away are stopped (in the background)."""
        try:
            mtime: float | None = self.config_path.stat().st_mtime
        except OSError:
            mtime = None
        if mtime == self._mtime and (mtime is not None or not self.config.exists):
            return False
        self._mtime = mtime
        try:
            config, error = load_config(self.config_path), None
        except ToolConfigError as exc:
            config, error = ToolConfig(self.config_path), str(exc)
        old = {e.name: e for e in self.config.servers}
        self.config, self.config_error = config, error
        new = {e.name: e for e in config.servers}
        for name, entry in old.items():
            if new.get(name) != entry:
                self._forget(name)
        return True

    def entry(self, name: str) -> ServerEntry | None:
        """The configured server called `name`."""
        return next((e for e in self.config.servers if e.name == name), None)

    @property
    def names(self) -> tuple[str, ...]:
        """Every configured server's name, in the file's order."""
        return tuple(e.name for e in self.config.servers)

    def usable(self, names: Sequence[str]) -> tuple[str, ...]:
        """Those of `names` that are configured and switched on."""
        return tuple(n for n in names if self.entry(n) is not None and n not in self.off)

    def status(self) -> list[ServerStatus]:
        """Every server's state, for the Tools page."""
        out = []
        for entry in self.config.servers:
            conn = self._connections.get(entry.name)
            if entry.name in self.off:
                out.append(ServerStatus(entry, "off"))
            elif entry.name in self._failures:
                out.append(ServerStatus(entry, "failed", self._failures[entry.name]))
            elif conn is not None and not conn.closed:
                out.append(ServerStatus(entry, "running", tools=conn.tools))
            else:
                out.append(ServerStatus(entry, "not started"))
        return out

    # -- switches ----------------------------------------------------------------------

    def _read_switches(self) -> set[str]:
        try:
            data = json.loads(self._switches_path.read_text("utf-8"))
        except (OSError, ValueError):
            return set()
        off = data.get("off") if isinstance(data, dict) else None
        return {n for n in off if isinstance(n, str)} if isinstance(off, list) else set()

    async def switch(self, name: str, on: bool) -> None:
        """Turn a server on or off (remembered); off stops it."""
        if self.entry(name) is None:
            raise ToolConfigError(f'There is no server "{name}" in {self.config_path}.')
        if on:
            self.off.discard(name)
            self._failures.pop(name, None)
        else:
            self.off.add(name)
            await self._stop(name)
        text = json.dumps({"off": sorted(self.off)})
        await asyncio.to_thread(write_private, self._switches_path, text)
        self._on_change()

    # -- running -----------------------------------------------------------------------

    def running(self, name: str) -> bool:
        """Whether server `name` runs now (its tools are at hand)."""
        conn = self._connections.get(name)
        return conn is not None and not conn.closed

    async def start(self, name: str) -> tuple[Connection, bool]:
        """The running connection to `name`, started if needed; the flag says it had died
        and was started again. ToolServerError saying why it cannot run."""
        entry = self.entry(name)
        if entry is None:
            raise ToolServerError(f'There is no server "{name}" in {self.config_path} any more.')
        if name in self.off:
            raise ToolServerError(f'The server "{name}" is switched off on the Tools page.')
        if not self.sdk:
            raise ToolServerError(NEEDS_SDK)
        lock = self._locks.setdefault(name, asyncio.Lock())
        async with lock:
            conn = self._connections.get(name)
            if conn is not None and not conn.closed:
                if conn.stale:  # it said its tools changed
                    await conn.relist()
                    self._on_change()
                return conn, False
            restarted = conn is not None or name in self._failures
            if conn is not None:
                await conn.stop()
                conn.release()
            conn = Connection(entry)
            self._connections[name] = conn
            try:
                await conn.start()
            except ToolServerError as exc:
                self._failures[name] = str(exc)
                self._on_change()
                raise
            self._failures.pop(name, None)
            self._on_change()
            return conn, restarted

    async def tools(
        self, names: Sequence[str]
    ) -> tuple[dict[str, tuple[ToolInfo, ...]], dict[str, str]]:
        """The tools of servers `names` (started as needed), and why others have none."""
        found: dict[str, tuple[ToolInfo, ...]] = {}
        problems: dict[str, str] = {}
        for name in names:
            try:
                conn, _ = await self.start(name)
            except ToolServerError as exc:
                problems[name] = str(exc)
                continue
            found[name] = conn.tools
        return found, problems

    async def call(self, server: str, tool: str, arguments: dict[str, Any]) -> ToolResult:
        """Run one call (the caller bounds its time); a failure is a result in words."""
        try:
            conn, restarted = await self.start(server)
        except ToolServerError as exc:
            return failed(f'The tool server "{server}" cannot run: {exc}')
        try:
            result = await conn.call(tool, arguments)
        except ToolServerError as exc:
            self._failures[server] = str(exc)
            self._on_change()
            return failed(
                f'The tool server "{server}" stopped: {exc} It will be started again '
                "on the next call."
            )
        if restarted:
            note = f'(The tool server "{server}" had stopped and was started again.)'
            result = ToolResult((*result.parts, *failed(note).parts), result.error)
        return result

    async def _stop(self, name: str) -> None:
        conn = self._connections.pop(name, None)
        if conn is not None:
            await conn.stop()
            conn.release()

    def _forget(self, name: str) -> None:
        self._failures.pop(name, None)
        if name in self._connections:
            task = asyncio.get_event_loop().create_task(self._stop(name))
            self._stopping.add(task)
            task.add_done_callback(self._stopping.discard)
            task.add_done_callback(_log_failure)

    async def close(self) -> None:
        """Stop every server (at shutdown)."""
        await asyncio.gather(*self._stopping, return_exceptions=True)
        await asyncio.gather(*(self._stop(n) for n in list(self._connections)))


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("stopping an MCP server failed: %s", task.exception())
