"""Test helpers: scripted bots, frame parsing, and running htmxchat as a real process."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

from htmxchat.bots import Piece, Turn

ROOT = Path(__file__).resolve().parent.parent


class ScriptedBot:
    """A bot whose replies tests enqueue: lists of pieces, with optional delays and failure."""

    label = "Scripted bot"

    def __init__(self, *, delay: float = 0.0, model: str | None = None) -> None:
        self.delay = delay
        self.model = model
        self.scripts: list[tuple[list[str], Exception | None]] = []
        self.histories: list[list[Turn]] = []
        self.cancelled = asyncio.Event()
        self.gate: asyncio.Event | None = None  # when set, pieces wait for it

    def enqueue(self, pieces: Sequence[str], *, fail_with: Exception | None = None) -> None:
        self.scripts.append((list(pieces), fail_with))

    async def stream(
        self, history: Sequence[Turn], *, model: str | None = None
    ) -> AsyncIterator[Piece]:
        self.histories.append(list(history))
        pieces, failure = self.scripts.pop(0) if self.scripts else (["ok"], None)
        try:
            for text in pieces:
                if self.gate is not None:
                    await self.gate.wait()
                await asyncio.sleep(self.delay)
                yield Piece(text=text)
            if failure is not None:
                raise failure
        except asyncio.CancelledError:
            self.cancelled.set()
            raise


@dataclass
class Element:
    """A top-level element of a frame: tag, attributes and inner text."""

    tag: str
    attrs: dict[str, str | None]
    text: str = ""
    children: list[Element] = field(default_factory=list)

    @property
    def id(self) -> str | None:
        return self.attrs.get("id")


class _FrameParser(HTMLParser):
    VOID = frozenset({"input", "br", "img", "meta", "link", "hr"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.roots: list[Element] = []
        self.stack: list[Element] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, dict(attrs))
        if self.stack:
            self.stack[-1].children.append(element)
        else:
            self.roots.append(element)
        if tag not in self.VOID:
            self.stack.append(element)

    def handle_endtag(self, tag: str) -> None:
        if self.stack and self.stack[-1].tag == tag:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        for element in self.stack:
            element.text += data


def parse_frame(html: str) -> list[Element]:
    """The top-level elements of a frame, as the htmx ws extension will see them."""
    parser = _FrameParser()
    parser.feed(html)
    parser.close()
    return parser.roots


def find(elements: Sequence[Element], element_id: str) -> Element | None:
    """Depth-first search by id."""
    for element in elements:
        if element.id == element_id:
            return element
        found = find(element.children, element_id)
        if found is not None:
            return found
    return None


class ServerProcess:
    """`python -m htmxchat` in a subprocess, with its printed URL."""

    def __init__(self, data_dir: Path, *args: str, env: dict[str, str] | None = None) -> None:
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        full_env.pop("HTMXCHAT_PORT", None)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "htmxchat", "--no-browser", "--data-dir", str(data_dir), *args],
            cwd=ROOT,
            env=full_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.output: list[str] = []
        self.url = self._wait_for_url()

    def _wait_for_url(self, timeout: float = 15.0) -> str:
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            self.output.append(line)
            if re.fullmatch(r"http://\S+/\n", line):
                return line.strip()
        self.process.kill()
        _, err = self.process.communicate(timeout=5)
        raise AssertionError(f"no URL printed; stdout={self.output!r} stderr={err!r}")

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1].strip("/"))

    def stop(self, sig: int = signal.SIGINT, timeout: float = 10.0) -> tuple[int, str, str]:
        """Send `sig`, wait, and return (exit code, rest of stdout, stderr)."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        out, err = self.process.communicate(timeout=timeout)
        return self.process.returncode, "".join(self.output) + out, err

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.communicate(timeout=10)


async def eventually(check, timeout: float = 5.0, interval: float = 0.01) -> None:  # noqa: ASYNC109
    """Wait until the async `check()` returns true (polling: the store has no events)."""
    for _ in range(int(timeout / interval)):
        if await check():
            return
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")
