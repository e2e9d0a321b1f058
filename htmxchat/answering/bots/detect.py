"""Find a model server already running on this machine (Ollama, llama.cpp, LM Studio)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import aiohttp

from htmxchat.answering.bots import BotError
from htmxchat.answering.bots.openai_models import list_models

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Candidate:
    """A place a local server usually listens, and the name to show for it."""

    base_url: str
    label: str


@dataclass(frozen=True, slots=True)
class DetectedServer:
    """A server that answered GET /models with at least one model."""

    base_url: str
    label: str
    models: tuple[str, ...]


DEFAULT_CANDIDATES: tuple[Candidate, ...] = (
    Candidate("http://127.0.0.1:11434/v1", "Ollama"),
    Candidate("http://127.0.0.1:8080/v1", "llama.cpp"),
    Candidate("http://127.0.0.1:1234/v1", "LM Studio"),
)


async def detect_local_server(
    candidates: Sequence[Candidate] = DEFAULT_CANDIDATES,
    timeout: float = 0.25,  # noqa: ASYNC109 (each probe's own aiohttp timeout, all run at once)
) -> DetectedServer | None:
    """Probe all `candidates` at once; return the first, in their order, that lists models.

    Every probe has `timeout` seconds in total, so a closed port or a server that accepts
    the connection and never answers cannot hold up startup.
    """
    async with aiohttp.ClientSession() as session:
        probes = [asyncio.create_task(_probe(session, c, timeout)) for c in candidates]
        try:
            # Await in priority order: once a preferred server answers, the rest don't matter.
            for probe in probes:
                found = await probe
                if found is not None:
                    return found
            return None
        finally:
            for probe in probes:
                probe.cancel()
            await asyncio.gather(*probes, return_exceptions=True)


async def _probe(
    session: aiohttp.ClientSession,
    candidate: Candidate,
    timeout: float,  # noqa: ASYNC109 (passed to aiohttp as the request timeout)
) -> DetectedServer | None:
    try:
        models = await list_models(candidate.base_url, session=session, timeout=timeout)
    except BotError:
        # Expected for every port with no server behind it; not worth more than a debug line.
        log.debug("no model server found at %s", candidate.base_url)
        return None
    if not models:
        log.debug("%s answered but lists no models", candidate.base_url)
        return None
    return DetectedServer(candidate.base_url, candidate.label, tuple(models))
