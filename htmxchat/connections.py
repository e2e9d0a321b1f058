"""Model servers besides the default one: OpenAI-compatible URLs the user adds, with their
API keys kept in a file only the user can read (docs/design.md, "Connections and chat
settings").

`Connections` is a `BotDirectory` for the chat core: picker values `<id>|<model>` reach the
connection's own bot. Keys are never shown (only `sk-…last4`), logged or put in messages.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from htmxchat.bots import Bot, BotError
from htmxchat.bots.openai import OpenAICompatBot, normalize_base_url
from htmxchat.private_file import write_private

log = logging.getLogger(__name__)

CONNECTIONS_FILENAME = "connections.json"
KEYS_FILENAME = "api-keys.json"
MAX_NAME = 60
LIST_TIMEOUT = 3.0  # asking a server for its models must not hold up the page for long
MAX_URL = 500
MAX_KEY = 500
_ID = re.compile(r"[a-z0-9-]{1,40}")


class ConnectionError_(ValueError):
    """A connection the user entered is not usable; the message says why (never the key)."""


def key_hint(key: str | None) -> str | None:
    """What the page may show of a key: `sk-…last4` (or `…last4`), None without one."""
    if not key:
        return None
    prefix = "sk-" if key.startswith("sk-") else ""
    return f"{prefix}…{key[-4:]}" if len(key) > 8 else f"{prefix}…"


@dataclass
class Connection:
    """One model server: its bot, the models it offered, and why it is down (if it is)."""

    id: str
    name: str
    base_url: str
    bot: OpenAICompatBot
    models: tuple[str, ...] = ()
    problem: str | None = None
    key_hint: str | None = None

    @property
    def down(self) -> bool:
        """True when the last attempt to list its models failed."""
        return self.problem is not None


class Connections:
    """The user's own connections, saved in the data dir (keys apart, 0600)."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._items: dict[str, Connection] = {}

    def lookup(self, connection_id: str) -> tuple[Bot, tuple[str, ...], str | None] | None:
        """The chat core's view of a connection (BotDirectory)."""
        found = self._items.get(connection_id)
        return None if found is None else (found.bot, found.models, found.base_url)

    def all(self) -> list[Connection]:
        """The connections, in the order they were added."""
        return list(self._items.values())

    def load(self) -> None:
        """Read the saved connections and their keys (a key file others can read is refused)."""
        try:
            saved = json.loads((self.data_dir / CONNECTIONS_FILENAME).read_text("utf-8"))
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            log.warning("ignoring an unreadable connections file: %s", type(exc).__name__)
            return
        keys = self._read_keys()
        for entry in saved if isinstance(saved, list) else []:
            if isinstance(entry, dict) and _ID.fullmatch(str(entry.get("id", ""))):
                self._put(str(entry["id"]), str(entry["name"]), str(entry["base_url"]), keys)

    def add(self, name: str, base_url: str, api_key: str | None) -> Connection:
        """Add and save a connection; ConnectionError_ when a field is not usable."""
        name = " ".join(name.split())[:MAX_NAME]
        base_url = base_url.strip()
        api_key = (api_key or "").strip() or None
        if not name:
            raise ConnectionError_("Give the connection a name.")
        if not re.match(r"https?://[^\s/]+", base_url) or len(base_url) > MAX_URL:
            raise ConnectionError_(
                "The base URL must start with http:// or https://, e.g. http://127.0.0.1:8080/v1."
            )
        if api_key is not None and (len(api_key) > MAX_KEY or not api_key.isprintable()):
            raise ConnectionError_("The API key must be one line of at most 500 characters.")
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:30] or "server"
        connection_id, n = slug, 2
        while connection_id in self._items or connection_id == "default":
            connection_id, n = f"{slug}-{n}", n + 1
        keys = self._read_keys()
        if api_key is not None:
            keys[connection_id] = api_key
        connection = self._put(connection_id, name, normalize_base_url(base_url), keys)
        self._save(keys)
        return connection

    async def refresh(self, only: list[Connection] | None = None) -> None:
        """Ask connections (all, or `only` these) for their models, all at once; one that
        fails or takes longer than LIST_TIMEOUT is marked down with why."""
        await asyncio.gather(*(self._refresh(c) for c in only or self.all()))

    async def _refresh(self, connection: Connection) -> None:
        try:
            async with asyncio.timeout(LIST_TIMEOUT):
                connection.models = tuple(await connection.bot.list_models())
            connection.problem = None
        except BotError as exc:
            connection.models, connection.problem = (), str(exc)
        except TimeoutError:
            connection.models = ()
            connection.problem = f"It did not answer within {LIST_TIMEOUT:g} seconds."

    async def close(self) -> None:
        """Close every connection's HTTP session."""
        for connection in self._items.values():
            await connection.bot.close()

    def _put(self, cid: str, name: str, base_url: str, keys: dict[str, str]) -> Connection:
        key = keys.get(cid)
        bot = OpenAICompatBot(base_url, api_key=key, label=name)
        self._items[cid] = Connection(cid, name, bot.base_url, bot, key_hint=key_hint(key))
        return self._items[cid]

    def _read_keys(self) -> dict[str, str]:
        path = self.data_dir / KEYS_FILENAME
        try:
            if os.name == "posix" and stat.S_IMODE(path.stat().st_mode) & 0o077:
                log.warning("ignoring %s: other users can read it", path)
                return {}
            keys = json.loads(path.read_text("utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:  # never the text: it holds keys
            log.warning("ignoring an unreadable key file: %s", type(exc).__name__)
            return {}
        return (
            {k: v for k, v in keys.items() if isinstance(v, str)} if isinstance(keys, dict) else {}
        )

    def _save(self, keys: dict[str, str]) -> None:
        entries = [{"id": c.id, "name": c.name, "base_url": c.base_url} for c in self.all()]
        write_private(self.data_dir / CONNECTIONS_FILENAME, json.dumps(entries, indent=2) + "\n")
        write_private(self.data_dir / KEYS_FILENAME, json.dumps(keys) + "\n")
