"""Console errors and uncaught page errors, collected so a browser test fails on them.

A person never sees the console, but an error there is a fragment that did not land, a
script that stopped half-way or a request the page should not make. Every browser test
collects them (the `browser_errors` fixture in conftest.py) and fails on any it did not
declare with `expect`.
"""

from __future__ import annotations

import re
from typing import Any


class BrowserErrors:
    """What went wrong in the pages of one test, and which of it the test expects."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self._expected: list[re.Pattern[str]] = []

    def expect(self, pattern: str) -> None:
        """Allow errors matching `pattern` (a regular expression searched in the text)."""
        self._expected.append(re.compile(pattern))

    def expect_server_down(self) -> None:
        """Allow what the browser logs by itself while the server is stopped on purpose:
        each refused reconnection attempt, and htmx's report of the socket's error."""
        self.expect(r"WebSocket connection to '\S+' failed|^console error: \[object Event\]")

    def watch(self, target: Any) -> Any:
        """Collect from a page or a browser context (every page in it); returns it."""
        target.on("console", self._on_console)
        if hasattr(target, "pages"):  # a context: its pages' uncaught errors
            target.on("weberror", lambda error: self._add(f"page error: {error.error}"))
        else:
            target.on("pageerror", lambda error: self._add(f"page error: {error}"))
        return target

    def unexpected(self) -> list[str]:
        """The errors no `expect` pattern allows."""
        return [e for e in self.seen if not any(p.search(e) for p in self._expected)]

    def _on_console(self, message: Any) -> None:
        if message.type == "error":
            where = message.location.get("url", "")
            self._add(f"console error: {message.text} ({where})")

    def _add(self, text: str) -> None:
        self.seen.append(text)
