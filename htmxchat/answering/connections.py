"""Every model server htmxchat can talk to: the default connection (chosen by the flags and
`HTMXCHAT_*` variables), the local servers found on this machine, the demo bot, and the
OpenAI-compatible URLs the user adds, with their API keys kept in a file only the user can
read (docs/design.md, "Who answers").

`Connections` is a `BotDirectory` for the chat core: picker values `<id>|<model>` reach the
connection's own bot. Keys are never shown (only `sk-…last4`), logged or put in messages.

The server itself (`Connection`) and the checks on its fields are in connection.py.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import re
import stat
from collections.abc import Sequence
from pathlib import Path

from htmxchat.answering.bots import Bot, BotError, ServerLoading
from htmxchat.answering.bots.demo import DemoBot
from htmxchat.answering.bots.detect import Candidate
from htmxchat.answering.bots.openai import OpenAICompatBot
from htmxchat.answering.bots.openai_errors import ADDED_FIX, LOCAL_FIX
from htmxchat.answering.bots.openai_models import normalize_base_url
from htmxchat.answering.bots.select import ChosenBot
from htmxchat.answering.connection import (
    MAX_KEY,
    MAX_NAME,
    MAX_URL,
    Connection,
    ConnectionError_,
    Kind,
    State,
    checked_fields,
    key_hint,
    local_candidates,
    shown_state,
)
from htmxchat.config import Settings
from htmxchat.private_file import write_private

log = logging.getLogger(__name__)

# Imported from here by the rest of the app and the tests.
__all__ = [
    "MAX_KEY",
    "MAX_NAME",
    "MAX_URL",
    "Connection",
    "ConnectionError_",
    "Connections",
    "Kind",
    "State",
    "key_hint",
    "local_candidates",
]

CONNECTIONS_FILENAME = "connections.json"
KEYS_FILENAME = "api-keys.json"
LIST_TIMEOUT = 3.0  # asking a server for its models must not hold up the page for long
# Looking for a local server that may not be there at all (a closed port answers at once).
LOCAL_TIMEOUT = 1.0
DEFAULT_ID = "default"
DEMO_ID = "demo"
_ID = re.compile(r"[a-z0-9-]{1,40}")


class Connections:
    """All connections, in the order the page lists them: the default one, the local
    servers, the demo bot, then the user's own (saved in the data dir, keys apart, 0600)."""

    def __init__(
        self,
        data_dir: Path,
        *,
        default: ChosenBot | None = None,
        settings: Settings | None = None,
        candidates: Sequence[Candidate] = (),
    ) -> None:
        self.data_dir = data_dir
        self.settings = settings or Settings(data_dir=data_dir)
        self._items: dict[str, Connection] = {}
        self._retired: list[Bot] = []  # edited or removed: closed at shutdown, not mid-reply
        if default is not None:
            self._add_default(default)
        for candidate in candidates:
            self._add_local(candidate)
        if default is not None and not default.demo:
            seed = self.settings.demo_seed
            demo = DemoBot(
                word_delay=self.settings.word_delay,
                rng=random.Random(seed) if seed is not None else None,
            )
            self._items[DEMO_ID] = Connection(
                DEMO_ID, demo.label, "demo", demo, None, description="Canned replies, built in."
            )

    # -- the chat core's view --------------------------------------------------------------

    def lookup(self, connection_id: str) -> tuple[Bot, tuple[str, ...], str | None] | None:
        """The chat core's view of a connection other than the default (BotDirectory)."""
        found = self._items.get(connection_id)
        if found is None or found.kind == "default":
            return None
        return found.bot, found.models, found.base_url

    def get(self, connection_id: str) -> Connection | None:
        """The connection called `connection_id`, if there is one."""
        return self._items.get(connection_id)

    def all(self) -> list[Connection]:
        """Every connection, in the order the page lists them."""
        return list(self._items.values())

    @property
    def default(self) -> Connection | None:
        """The default connection (the flags' and `HTMXCHAT_*` variables' choice)."""
        return self._items.get(DEFAULT_ID)

    def picker(self) -> list[Connection]:
        """The model picker's groups; none when there is nothing to choose between."""
        groups = [c for c in self._items.values() if c.in_picker]
        if sum(len(c.choices()) for c in groups) <= 1 and not any(c.down for c in groups):
            return []
        return groups

    def label_for(self, choice: str | None) -> str | None:
        """The name of the connection a picker value belongs to (None: not a known one)."""
        prefix, sep, _ = (choice or "").partition("|")
        found = self._items.get(prefix) if sep else self.default
        return found.name if found is not None else None

    # -- the user's own --------------------------------------------------------------------

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
                cid = str(entry["id"])
                # Saved before a built-in connection took that id: it gets a new one.
                new = cid if cid not in self._items else self._new_id(cid)
                self._put(new, str(entry["name"]), str(entry["base_url"]), keys.get(cid))

    def add(self, name: str, base_url: str, api_key: str | None) -> Connection:
        """Add and save a connection; ConnectionError_ when a field is not usable."""
        name, base_url, api_key = checked_fields(name, base_url, api_key)
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:30] or "server"
        keys = self._read_keys()
        connection_id = self._new_id(slug)
        if api_key is not None:
            keys[connection_id] = api_key
        connection = self._put(connection_id, name, base_url, api_key)
        self._save(keys)
        return connection

    def edit(
        self,
        connection_id: str,
        name: str,
        base_url: str,
        api_key: str | None,
        *,
        forget_key: bool = False,
    ) -> Connection:
        """Change an added connection (a blank key keeps the saved one, `forget_key` drops
        it); ConnectionError_ when it is not one the user added or a field is not usable."""
        old = self._added(connection_id)
        name, base_url, api_key = checked_fields(name, base_url, api_key)
        keys = self._read_keys()
        if forget_key:
            keys.pop(connection_id, None)
        if api_key is not None:
            keys[connection_id] = api_key
        self._retired.append(old.bot)  # a reply may still be streaming from it
        connection = self._put(connection_id, name, base_url, keys.get(connection_id))
        self._save(keys)
        return connection

    def remove(self, connection_id: str) -> Connection:
        """Forget an added connection and its key; ConnectionError_ for any other."""
        old = self._added(connection_id)
        del self._items[connection_id]
        self._retired.append(old.bot)
        keys = self._read_keys()
        keys.pop(connection_id, None)
        self._save(keys)
        return old

    # -- asking the servers ----------------------------------------------------------------

    async def refresh(
        self, only: Sequence[Connection] | None = None, *, limit: float | None = None
    ) -> bool:
        """Ask connections (`only` these, or all but the default, which was asked when it
        was chosen) for their models, all at once; one that fails or takes longer than
        LIST_TIMEOUT (or `limit` seconds) is marked down with why. The demo bot has nothing to ask.
        True when what the page shows of any of them changed."""
        chosen = [c for c in self.all() if c.kind != "default"] if only is None else only
        before = [shown_state(c) for c in chosen]
        await asyncio.gather(*(self._refresh(c, limit) for c in chosen))
        return before != [shown_state(c) for c in chosen]

    async def _refresh(self, connection: Connection, within: float | None) -> None:
        bot = connection.bot
        if not connection.asks_server:
            return
        looking = connection.kind == "local" and not connection.found
        limit = within or (LOCAL_TIMEOUT if looking else LIST_TIMEOUT)
        connection.loading = False
        try:
            # The bot's own deadline is a little later: this one's message is the plainer.
            async with asyncio.timeout(limit):
                info = await bot.probe(limit + 1)
            connection.models, connection.context = info.models, dict(info.context)
            connection.problem = None
            connection.found = True
        except ServerLoading as exc:
            connection.problem, connection.loading, connection.found = str(exc), True, True
        except BotError as exc:
            connection.problem = str(exc)  # the models it listed stay (see choices)
        except TimeoutError:
            connection.problem = f"It did not answer within {limit:g} seconds."
        if connection.kind == "local" and not connection.found:
            connection.problem = f"Not running: nothing answers at {connection.base_url}."

    async def close(self) -> None:
        """Close every connection's HTTP session (not the default's: its owner does)."""
        for connection in self._items.values():
            if connection.kind != "default":
                await connection.bot.close()
        for bot in self._retired:
            await bot.close()

    # -- helpers ---------------------------------------------------------------------------

    def _add_default(self, choice: ChosenBot) -> None:
        bot = choice.bot
        base_url = bot.capabilities.base_url
        key = self.settings.api_key if base_url is not None else None
        self._items[DEFAULT_ID] = Connection(
            DEFAULT_ID,
            bot.label,
            "default",
            bot,
            base_url,
            choice.models,
            choice.problem,
            key_hint(key),
            description=choice.description,
        )

    def _add_local(self, candidate: Candidate) -> None:
        base = normalize_base_url(candidate.base_url)
        default = self.default
        if default is not None and default.base_url == base:
            return  # it is the default connection already
        slug = re.sub(r"[^a-z0-9]+", "-", candidate.label.lower()).strip("-")[:30]
        cid = self._new_id(f"local-{slug}")
        bot = OpenAICompatBot(
            base, label=candidate.label, stall_timeout=self.settings.stall_timeout, fix=LOCAL_FIX
        )
        self._items[cid] = Connection(cid, candidate.label, "local", bot, bot.base_url, found=False)

    def _new_id(self, slug: str) -> str:
        reserved = {DEFAULT_ID, DEMO_ID}
        connection_id, n = slug, 2
        while connection_id in self._items or connection_id in reserved:
            connection_id, n = f"{slug}-{n}", n + 1
        return connection_id

    def _added(self, connection_id: str) -> Connection:
        found = self._items.get(connection_id)
        if found is None or not found.editable:
            raise ConnectionError_(
                "Only servers you added can be changed or removed; that one is not one of them."
            )
        return found

    def _put(self, cid: str, name: str, base_url: str, key: str | None) -> Connection:
        bot = OpenAICompatBot(
            base_url,
            api_key=key,
            label=name,
            stall_timeout=self.settings.stall_timeout,
            fix=ADDED_FIX,
        )
        self._items[cid] = Connection(cid, name, "added", bot, bot.base_url, key_hint=key_hint(key))
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
        added = [c for c in self.all() if c.kind == "added"]
        entries = [{"id": c.id, "name": c.name, "base_url": c.base_url} for c in added]
        kept = {c.id: keys[c.id] for c in added if keys.get(c.id)}
        write_private(self.data_dir / CONNECTIONS_FILENAME, json.dumps(entries, indent=2) + "\n")
        write_private(self.data_dir / KEYS_FILENAME, json.dumps(kept) + "\n")
