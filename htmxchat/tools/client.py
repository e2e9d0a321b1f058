"""One MCP server's connection, through the official SDK (`mcp`, an optional extra).

The SDK's transports and session are anyio context managers that must be entered and left
by the same task, so each server gets one task that holds its session open until asked to
stop; calls are sent from the reply's own task (a Stop cancels them there).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import os
import sys
import tempfile
from collections.abc import AsyncIterator, Mapping
from typing import IO, Any

from htmxchat.tools.config import ServerEntry
from htmxchat.tools.results import (
    MAX_DESCRIPTION_CHARS,
    ResultPart,
    ToolInfo,
    ToolResult,
    bounded_parts,
)

log = logging.getLogger(__name__)

START_TIMEOUT = 30.0  # starting the program (npx may download it) and the handshake
MAX_TOOLS = 256
STDERR_TAIL_LINES = 12
STDERR_TAIL_BYTES = 4096
NEEDS_SDK = (
    "Tools need the MCP SDK, which is not installed. Install htmxchat with it: "
    "pipx install 'htmxchat[mcp]' (or pip install 'htmxchat[mcp]'), then restart htmxchat."
)


class ToolServerError(Exception):
    """A server could not be started or reached, or broke off; the message says why."""


def sdk_installed() -> bool:
    """True when the MCP SDK is installed. Found, not imported: importing it (pydantic,
    httpx, anyio...) took seconds, and this runs before the server prints its address;
    it is imported when a tool server is first started."""
    return importlib.util.find_spec("mcp") is not None


def child_environment(entry: ServerEntry, environ: Mapping[str, str]) -> dict[str, str]:
    """What a stdio server is started with: its entry's `env`, plus PATH and HOME (what a
    program needs to start). Nothing else of htmxchat's environment (its token, API keys)."""
    env = {key: environ[key] for key in ("PATH", "HOME") if key in environ}
    if sys.platform == "win32":  # Windows programs do not start without these
        for key in ("SYSTEMROOT", "SYSTEMDRIVE", "TEMP", "TMP", "USERPROFILE", "PATHEXT"):
            if key in environ:
                env[key] = environ[key]
    env.update(entry.env)
    return env


def stdio_launch(entry: ServerEntry, environ: Mapping[str, str]) -> tuple[str, list[str]]:
    """The command line that starts a stdio server with exactly `child_environment`.

    The SDK adds a few variables of its own (SHELL, TERM, USER, ...) to whatever it is
    given; on POSIX, `env -i` starts the program with nothing but ours."""
    assert entry.command is not None
    if sys.platform == "win32":
        return entry.command, list(entry.args)
    pairs = [f"{k}={v}" for k, v in child_environment(entry, environ).items()]
    return "/usr/bin/env", ["-i", *pairs, entry.command, *entry.args]


class Connection:
    """A running session with one server, held open by its own task."""

    def __init__(self, entry: ServerEntry) -> None:
        self.entry = entry
        self.tools: tuple[ToolInfo, ...] = ()
        self._session: Any = None
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._stderr: IO[str] | None = None
        self.closed = False  # the session ended (stopped, or the server went away)
        self.stale = False  # the server said its tools changed: list them again

    async def start(self) -> None:
        """Start the server (or connect to it) and list its tools; ToolServerError saying
        why when it does not come up within START_TIMEOUT."""
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._hold(ready), name=f"mcp-{self.entry.name}")
        try:
            async with asyncio.timeout(START_TIMEOUT):
                await asyncio.shield(ready)
        except TimeoutError:
            await self.stop()
            raise ToolServerError(
                f"It did not answer within {START_TIMEOUT:.0f} seconds of starting."
                + self.stderr_note()
            ) from None
        except ToolServerError:
            await self.stop()
            raise

    async def _hold(self, ready: asyncio.Future[None]) -> None:
        try:
            async with self._open() as session:
                self._session = session
                await session.initialize()
                self.tools = await _list_tools(session)
                ready.set_result(None)
                await self._stop.wait()
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # the SDK raises exception groups from its task groups
            if not ready.done():
                ready.set_exception(ToolServerError(self._why(exc)))
            else:
                log.info("MCP server %s went away: %s", self.entry.name, _first(exc))
        finally:
            self.closed = True
            self._session = None
            if not ready.done():
                ready.set_exception(ToolServerError("It stopped while starting."))

    @contextlib.asynccontextmanager
    async def _open(self) -> AsyncIterator[Any]:
        from mcp.client.session import ClientSession

        if self.entry.command is not None:
            from mcp.client.stdio import StdioServerParameters, stdio_client

            command, args = stdio_launch(self.entry, os.environ)
            # Kept after the session ends, for the reason a failed server shows.
            self._stderr = tempfile.TemporaryFile(  # noqa: SIM115 (closed by release())
                "w+", encoding="utf-8", errors="replace"
            )
            params = StdioServerParameters(command=command, args=args, env={})
            transport = stdio_client(params, errlog=self._stderr)
        else:
            import httpx2
            from mcp.client.streamable_http import streamable_http_client

            client = httpx2.AsyncClient(
                headers=dict(self.entry.headers), timeout=httpx2.Timeout(30.0, read=300.0)
            )
            async with (
                client,
                streamable_http_client(self.entry.url or "", http_client=client) as (read, write),
                ClientSession(read, write, message_handler=self._on_message) as session,
            ):
                yield session
            return
        async with (
            transport as (read, write),
            ClientSession(read, write, message_handler=self._on_message) as session,
        ):
            yield session

    async def _on_message(self, message: object) -> None:
        """Notifications from the server: a changed tool list is read again when next
        needed (notifications/tools/list_changed); the rest is only logged."""
        if getattr(message, "method", None) == "notifications/tools/list_changed":
            self.stale = True
        elif isinstance(message, Exception):
            log.info("MCP server %s: %s", self.entry.name, message)

    async def relist(self) -> None:
        """Read the server's tools again (after it said they changed)."""
        self.stale = False
        if self._session is not None:
            self.tools = await _list_tools(self._session)

    def _why(self, exc: BaseException) -> str:
        first = _first(exc)
        if isinstance(first, FileNotFoundError | PermissionError):
            return f"Its command cannot be run: {first}." + self.stderr_note()
        return f"It could not be started or reached: {first}." + self.stderr_note()

    def stderr_tail(self) -> str:
        """The last lines the server wrote to its stderr (its log), if it is a program."""
        if self._stderr is None or self._stderr.closed:
            return ""
        try:
            self._stderr.flush()
            size = self._stderr.seek(0, os.SEEK_END)
            self._stderr.seek(max(0, size - STDERR_TAIL_BYTES))
            text = self._stderr.read()
        except (OSError, ValueError):
            return ""
        return "\n".join(text.strip().splitlines()[-STDERR_TAIL_LINES:])

    def stderr_note(self) -> str:
        """ " Its last output: ..." when it wrote any."""
        tail = self.stderr_tail()
        return f" Its last output:\n{tail}" if tail else ""

    async def call(self, name: str, arguments: dict[str, Any]) -> ToolResult:
        """Call tool `name`; ToolServerError when the server went away meanwhile."""
        session = self._session
        if session is None or self.closed:
            raise ToolServerError("It is not running.")
        try:
            result = await session.call_tool(name, arguments)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            from mcp_types import CONNECTION_CLOSED

            gone = getattr(exc, "code", None) == CONNECTION_CLOSED
            if gone or self.closed or self._task is None or self._task.done():
                await self.stop()  # the program has exited: its stderr is complete
                raise ToolServerError(f"It stopped during the call.{self.stderr_note()}") from None
            message = getattr(exc, "message", None) or str(exc)
            return ToolResult(
                (ResultPart("text", f"The server answered with an error: {message}"),), True
            )
        return _result(result)

    async def stop(self) -> None:
        """End the session and stop the program (the SDK closes its stdin, then kills it)."""
        self._stop.set()
        task = self._task
        if task is not None and not task.done():
            try:
                async with asyncio.timeout(10):
                    await asyncio.shield(task)
            except TimeoutError:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self.closed = True

    def release(self) -> None:
        """Close the stderr file (after the reason was read)."""
        if self._stderr is not None:
            self._stderr.close()


async def _list_tools(session: Any) -> tuple[ToolInfo, ...]:
    tools: list[ToolInfo] = []
    cursor = None
    while len(tools) < MAX_TOOLS:
        from mcp_types import PaginatedRequestParams

        page = await session.list_tools(
            params=PaginatedRequestParams(cursor=cursor) if cursor else None
        )
        for tool in page.tools[: MAX_TOOLS - len(tools)]:
            description = (tool.description or "")[:MAX_DESCRIPTION_CHARS]
            tools.append(ToolInfo(tool.name, description, dict(tool.input_schema or {})))
        cursor = page.next_cursor
        if not cursor:
            break
    return tuple(tools)


def _result(result: Any) -> ToolResult:
    parts: list[ResultPart] = []
    for item in getattr(result, "content", None) or ():
        kind = getattr(item, "type", "")
        if kind == "text":
            parts.append(ResultPart("text", str(item.text)))
        elif kind == "image":
            parts.append(ResultPart("image", str(item.data), str(item.mime_type)))
        elif kind == "resource":
            resource = item.resource
            text = getattr(resource, "text", None)
            parts.append(ResultPart("text", text if isinstance(text, str) else f"[{resource.uri}]"))
        else:
            parts.append(ResultPart("text", f"[a {kind or 'content'} part left out]"))
    return ToolResult(bounded_parts(parts), bool(getattr(result, "is_error", False)))


def _first(exc: BaseException) -> BaseException:
    """The first real exception inside (nested) exception groups."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc
