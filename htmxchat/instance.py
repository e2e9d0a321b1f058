"""One server per data dir: a lock held while serving, and a runtime file saying where."""

from __future__ import annotations

import contextlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from htmxchat.access import read_token
from htmxchat.private_file import write_private

log = logging.getLogger(__name__)

LOCK_FILENAME = "htmxchat.lock"
RUNTIME_FILENAME = "server.json"

try:
    import fcntl
except ImportError:  # Windows: fall back to the runtime file and the health probe alone.
    fcntl = None  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class RunningServer:
    """What the runtime file records about the serving instance."""

    url: str
    port: int
    pid: int
    instance: str


class InstanceLock:
    """An exclusive, non-blocking lock on the data dir; the OS drops it if we crash."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / LOCK_FILENAME
        self._file: IO[str] | None = None

    def acquire(self) -> bool:
        """True when we are the only instance for this data dir."""
        handle = open(self.path, "a+")  # noqa: SIM115 - held open for the process lifetime
        if fcntl is None:
            self._file = handle
            return True
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        self._file = handle
        return True

    def release(self) -> None:
        """Give the lock up (closing the file releases it)."""
        if self._file is not None:
            self._file.close()
            self._file = None


def write_runtime_file(data_dir: Path, server: RunningServer) -> None:
    """Record the serving instance (0600, replaced atomically)."""
    record = {
        "url": server.url,
        "port": server.port,
        "pid": server.pid,
        "instance": server.instance,
    }
    write_private(data_dir / RUNTIME_FILENAME, json.dumps(record))


def remove_runtime_file(data_dir: Path, instance: str) -> None:
    """Remove the runtime file if it is still ours."""
    current = read_runtime_file(data_dir)
    if current is not None and current.instance == instance:
        with contextlib.suppress(FileNotFoundError):
            (data_dir / RUNTIME_FILENAME).unlink()


def read_runtime_file(data_dir: Path) -> RunningServer | None:
    """The recorded instance, or None when there is no (readable) runtime file."""
    try:
        data = json.loads((data_dir / RUNTIME_FILENAME).read_text())
        return RunningServer(
            url=str(data["url"]),
            port=int(data["port"]),
            pid=int(data["pid"]),
            instance=str(data["instance"]),
        )
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.info("ignoring an unreadable runtime file: %s", exc)
        return None


def find_running_server(data_dir: Path, *, timeout: float = 1.0) -> RunningServer | None:
    """The live instance serving this data dir, or None (a stale file left by a crash)."""
    server = read_runtime_file(data_dir)
    if server is None or not pid_alive(server.pid):
        return None
    token = read_token(data_dir)
    if token is None:
        return None
    import urllib.error  # here: every start imports this module, few ask another instance
    import urllib.request

    # /healthz needs the token like every route; only the owner of the data dir can read it.
    health = urllib.request.Request(
        server.url.rstrip("/") + "/healthz", headers={"Authorization": f"Bearer {token}"}
    )
    try:
        with urllib.request.urlopen(health, timeout=timeout) as response:
            data = json.loads(response.read())
    except (OSError, ValueError, urllib.error.URLError) as exc:
        log.info("recorded server at %s does not answer: %s", server.url, exc)
        return None
    if data.get("app") != "htmxchat" or data.get("instance") != server.instance:
        return None
    return server


def pid_alive(pid: int) -> bool:
    """True while a process with this id exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
