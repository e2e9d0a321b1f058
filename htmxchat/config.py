"""Settings, and the one place that decides where each setting comes from."""

from __future__ import annotations

import argparse
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import platformdirs

DEFAULT_HOST = "127.0.0.1"
# An uncommon fixed port: open tabs find the server again after a restart.
PREFERRED_PORT = 47913
ENV_PREFIX = "HTMXCHAT_"


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the server needs to run, already validated."""

    data_dir: Path
    host: str = DEFAULT_HOST
    port: int | None = None  # None: the preferred port, else any free one
    open_browser: bool = True
    word_delay: float = 0.1
    allow_remote: bool = False  # listen on a non-loopback --host (the token still guards it)


class SettingsError(Exception):
    """A setting has a bad value; the message names the setting and what is allowed."""


def default_data_dir() -> Path:
    """The per-user data dir (e.g. ~/.local/share/htmxchat on Linux)."""
    return platformdirs.user_data_path("htmxchat", appauthor=False)


def resolve_settings(args: argparse.Namespace, environ: Mapping[str, str]) -> Settings:
    """Merge flags and environment into Settings.

    Precedence: command-line flag > `HTMXCHAT_<NAME>` environment variable > default.
    Argparse defaults are None so "not given" is distinguishable from a given value.
    """

    def pick(name: str) -> str | None:
        value = getattr(args, name, None)
        if value is not None:
            return str(value)
        return environ.get(ENV_PREFIX + name.upper()) or None

    data_dir = pick("data_dir")
    port = pick("port")
    word_delay = pick("word_delay")
    host = pick("host") or DEFAULT_HOST
    allow_remote = bool(getattr(args, "allow_remote", False)) or environ.get(
        ENV_PREFIX + "ALLOW_REMOTE", ""
    ).lower() in ("1", "true", "yes")
    if not allow_remote and not is_loopback_host(host):
        raise SettingsError(
            f"--host {host} would let other computers reach your chats; "
            "add --allow-remote if that is what you want"
        )
    return Settings(
        data_dir=Path(data_dir).expanduser() if data_dir else default_data_dir(),
        host=host,
        port=None if port is None else parse_port(port),
        open_browser=not getattr(args, "no_browser", False),
        word_delay=0.1 if word_delay is None else parse_delay(word_delay),
        allow_remote=allow_remote,
    )


def is_loopback_host(host: str) -> bool:
    """True for loopback addresses (127.0.0.0/8, ::1) and the name localhost."""
    name = host.strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def parse_port(value: str) -> int:
    """A TCP port number 0-65535 (0: let the system choose)."""
    try:
        port = int(value)
    except ValueError:
        raise SettingsError(f"port must be a number from 0 to 65535, not {value!r}") from None
    if not 0 <= port <= 65535:
        raise SettingsError(f"port must be a number from 0 to 65535, not {port}")
    return port


def parse_delay(value: str) -> float:
    """A word delay in seconds, 0 to 10."""
    try:
        delay = float(value)
    except ValueError:
        raise SettingsError(f"word delay must be a number of seconds, not {value!r}") from None
    if not 0 <= delay <= 10:
        raise SettingsError(f"word delay must be between 0 and 10 seconds, not {value}")
    return delay
