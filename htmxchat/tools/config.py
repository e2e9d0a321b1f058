"""Reading `mcp.json`: the servers the user configured, in the `mcpServers` notation that
LM Studio, Cursor and Claude Desktop share (docs/tools.md, "Configuration").

Commands come only from this file, which the user edits; the page never sets one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import platformdirs
from yarl import URL

# Server names become part of tool names sent to the model (`server__tool`), which most
# model servers limit to ^[a-zA-Z0-9_-]{1,64}$.
SERVER_NAME = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
MAX_CONFIG_BYTES = 1024 * 1024
MAX_SERVERS = 64


class ToolConfigError(Exception):
    """`mcp.json` cannot be used; the message says where and what to change."""


@dataclass(frozen=True, slots=True)
class ServerEntry:
    """One configured MCP server: a command to start (stdio) or a URL (Streamable HTTP)."""

    name: str
    command: str | None = None
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict, repr=False)  # may hold secrets
    url: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)

    @property
    def transport(self) -> str:
        """ "stdio" or "http"."""
        return "stdio" if self.command is not None else "http"

    @property
    def where(self) -> str:
        """What the Tools page shows for it: the command line or the URL (no secrets)."""
        if self.command is not None:
            return " ".join([self.command, *self.args])
        return str(URL(self.url or "").with_user(None).with_query(None))


@dataclass(frozen=True, slots=True)
class ToolConfig:
    """The servers of one `mcp.json` (none when the file does not exist)."""

    path: Path
    servers: tuple[ServerEntry, ...] = ()
    exists: bool = False


def default_config_path() -> Path:
    """`mcp.json` in the per-user config dir (e.g. ~/.config/htmxchat on Linux)."""
    return platformdirs.user_config_path("htmxchat", appauthor=False) / "mcp.json"


def load_config(path: Path) -> ToolConfig:
    """The servers configured in `path`; a missing file means none. ToolConfigError for a
    file that cannot be read or is not in the notation, saying what to fix."""
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        return ToolConfig(path)
    except OSError as exc:
        raise ToolConfigError(f"{path} cannot be read: {exc.strerror or exc}.") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ToolConfigError(f"{path} is larger than 1 MiB; is it the right file?")
    try:
        data = json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise ToolConfigError(f"{path} is not UTF-8 text.") from None
    except json.JSONDecodeError as exc:
        raise ToolConfigError(
            f"{path} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}."
        ) from None
    except RecursionError:
        raise ToolConfigError(f"{path} is nested too deeply to be read.") from None
    return ToolConfig(path, parse_servers(data, path), exists=True)


def parse_servers(data: object, path: Path) -> tuple[ServerEntry, ...]:
    """The entries of a parsed `mcp.json`: {"mcpServers": {name: entry}}."""
    servers = data.get("mcpServers") if isinstance(data, dict) else None
    if not isinstance(servers, dict):
        raise ToolConfigError(
            f'{path} needs an object "mcpServers" holding one entry per server, e.g. '
            '{"mcpServers": {"files": {"command": "npx", "args": ["-y", "server"]}}}.'
        )
    if len(servers) > MAX_SERVERS:
        raise ToolConfigError(f"{path} names {len(servers)} servers; at most {MAX_SERVERS}.")
    return tuple(_entry(name, entry, path) for name, entry in servers.items())


def _entry(name: str, entry: object, path: Path) -> ServerEntry:
    where = f'{path}, server "{name}"'
    if not SERVER_NAME.match(name):
        raise ToolConfigError(
            f"{where}: a name may only use letters, digits, - and _ (at most 32), "
            "since tool names sent to the model are made from it."
        )
    if not isinstance(entry, dict):
        raise ToolConfigError(f'{where}: the entry must be an object with "command" or "url".')
    command, url = entry.get("command"), entry.get("url")
    if (command is None) == (url is None):
        raise ToolConfigError(
            f'{where}: give either "command" (a program to start) or "url" (a server to '
            "connect to), not both and not neither."
        )
    if command is not None:
        if not isinstance(command, str) or not command.strip():
            raise ToolConfigError(f'{where}: "command" must be a program name or path.')
        return ServerEntry(
            name,
            command=command,
            args=tuple(_strings(entry.get("args", []), f'{where}: "args"')),
            env=_string_map(entry.get("env", {}), f'{where}: "env"'),
        )
    if not isinstance(url, str) or URL(url).scheme not in ("http", "https") or not URL(url).host:
        raise ToolConfigError(f'{where}: "url" must be an http:// or https:// address.')
    return ServerEntry(
        name, url=url, headers=_string_map(entry.get("headers", {}), f'{where}: "headers"')
    )


def _strings(value: object, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ToolConfigError(f"{where} must be a list of strings.")
    return value


def _string_map(value: object, where: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ToolConfigError(f"{where} must be an object of strings.")
    return dict(value)
