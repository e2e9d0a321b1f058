"""Settings, and the one place that decides where each setting comes from.

A leaf module: it imports nothing from htmxchat, so the launcher can read settings without
loading a bot backend.
"""

from __future__ import annotations

import argparse
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import platformdirs

if TYPE_CHECKING:
    from yarl import URL

DEFAULT_HOST = "127.0.0.1"
# An uncommon fixed port: open tabs find the server again after a restart.
PREFERRED_PORT = 47913
ENV_PREFIX = "HTMXCHAT_"


DEFAULT_APP_GRACE = 20.0
TRUE_WORDS = ("1", "true", "yes", "on")

BOT_CHOICES = ("auto", "demo", "openai")
OPENAI_BASE_URL = "https://api.openai.com/v1"


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the server needs to run, already validated."""

    data_dir: Path
    host: str = DEFAULT_HOST
    port: int | None = None  # None: the preferred port, else any free one
    open_browser: bool = True
    word_delay: float = 0.1
    bot: str = "auto"  # auto: a local model server if one answers, else the demo bot
    base_url: str | None = None
    model: str | None = None
    system_prompt: str | None = None
    temperature: float | None = None
    stall_timeout: float = 60.0
    # Secrets come only from the environment, never from a flag (visible in `ps`).
    api_key: str | None = field(default=None, repr=False)
    demo_seed: int | None = None  # makes the demo bot's picks repeatable (tests, demos)
    allow_remote: bool = False  # listen on a non-loopback --host (the token still guards it)
    app: bool = False  # open an app window; stop a grace period after the last page closed
    app_grace: float = DEFAULT_APP_GRACE
    idle_exit: float | None = None  # minutes without an open page before stopping by itself
    log_dir: Path = field(default_factory=lambda: default_log_dir())
    cache_dir: Path = field(default_factory=lambda: default_cache_dir())  # compiled templates
    # Base URLs of local servers to list besides the default (None: the usual ports).
    local_servers: tuple[str, ...] | None = None
    # The MCP servers' configuration (None: mcp.json in the user config dir).
    mcp_config: Path | None = None


class SettingsError(Exception):
    """A setting has a bad value; the message names the setting and what is allowed."""


def default_data_dir() -> Path:
    """The per-user data dir (e.g. ~/.local/share/htmxchat on Linux)."""
    return platformdirs.user_data_path("htmxchat", appauthor=False)


def default_log_dir() -> Path:
    """The per-user log dir (e.g. ~/.local/state/htmxchat/log on Linux)."""
    return platformdirs.user_log_path("htmxchat", appauthor=False)


def default_cache_dir() -> Path:
    """The per-user cache dir (e.g. ~/.cache/htmxchat on Linux): only what saves time."""
    return platformdirs.user_cache_path("htmxchat", appauthor=False)


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
    bot = (pick("bot") or "auto").lower()
    if bot not in BOT_CHOICES:
        raise SettingsError(f"bot must be one of {', '.join(BOT_CHOICES)}, not {bot!r}")
    base_url = pick("base_url")
    if base_url:
        base_url = parse_base_url(base_url)
    if bot == "openai" and not base_url:
        base_url = OPENAI_BASE_URL
    temperature = pick("temperature")
    stall = pick("stall_timeout")
    seed = environ.get(ENV_PREFIX + "DEMO_SEED")
    host = pick("host") or DEFAULT_HOST
    allow_remote = (
        bool(getattr(args, "allow_remote", False))
        or environ.get(ENV_PREFIX + "ALLOW_REMOTE", "").lower() in TRUE_WORDS
    )
    app = bool(getattr(args, "app", False)) or environ.get(ENV_PREFIX + "APP", "").lower() in (
        TRUE_WORDS
    )
    app_grace = pick("app_grace")
    idle_exit = pick("idle_exit")
    log_dir = environ.get(ENV_PREFIX + "LOG_DIR")
    local = environ.get(ENV_PREFIX + "LOCAL_SERVERS")
    mcp_config = pick("mcp_config")
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
        bot=bot,
        base_url=base_url,
        model=pick("model"),
        system_prompt=pick("system_prompt"),
        temperature=None if temperature is None else parse_temperature(temperature),
        stall_timeout=60.0 if stall is None else parse_stall_timeout(stall),
        api_key=resolve_api_key(base_url or "", environ) if base_url else None,
        demo_seed=int(seed) if seed and seed.isdigit() else None,
        allow_remote=allow_remote,
        app=app,
        app_grace=DEFAULT_APP_GRACE if app_grace is None else parse_grace(app_grace),
        idle_exit=None if idle_exit is None else parse_idle_exit(idle_exit),
        log_dir=Path(log_dir).expanduser() if log_dir else default_log_dir(),
        local_servers=None if local is None else parse_local_servers(local),
        mcp_config=Path(mcp_config).expanduser() if mcp_config else None,
    )


def parsed_url(text: str) -> URL:
    """`text` as a yarl URL (imported here: `--version` and `--help` parse no URL)."""
    from yarl import URL

    return URL(text)


def parse_local_servers(value: str) -> tuple[str, ...]:
    """HTMXCHAT_LOCAL_SERVERS: comma-separated base URLs, or "off" to look for none."""
    if value.strip().lower() in ("off", "none", "0", "no", "false"):
        return ()
    urls = tuple(u.strip() for u in value.split(",") if u.strip())
    for url in urls:
        if parsed_url(url).scheme not in ("http", "https"):
            raise SettingsError(f"HTMXCHAT_LOCAL_SERVERS: {url!r} is not an http:// URL")
    return urls


def parse_base_url(value: str) -> str:
    """A model server's address as an http(s) URL; `http://` is added when no scheme is given.

    Servers show their address without one (LM Studio: `127.0.0.1:1234/v1`), and a local
    server speaks plain HTTP.
    """
    text = value.strip()
    if "://" not in text:
        text = "http://" + text
    try:
        url = parsed_url(text)
        usable = (
            url.scheme in ("http", "https")
            and bool(url.host)
            and not any(c.isspace() for c in text)
        )
    except ValueError:
        usable = False
    if not usable:
        raise SettingsError(
            f"--base-url must be a server's address such as http://127.0.0.1:11434/v1, "
            f"not {value!r}"
        )
    return text


def resolve_api_key(base_url: str, environ: Mapping[str, str]) -> str | None:
    """Pick the API key for `base_url`: HTMXCHAT_API_KEY if set, else OPENAI_API_KEY, else None.

    OPENAI_API_KEY is used only for https://api.openai.com, so a key meant for OpenAI is never
    sent to a local or third-party server the user merely pointed us at.
    """
    own = environ.get(ENV_PREFIX + "API_KEY", "").strip()
    if own:
        return own
    url = parsed_url(base_url.strip())
    if url.scheme == "https" and url.host == "api.openai.com" and url.port == 443:
        return environ.get("OPENAI_API_KEY", "").strip() or None
    return None


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
    return int(_number(value, "port", int, 0, 65535))


def parse_delay(value: str) -> float:
    """A word delay in seconds, 0 to 10."""
    return _number(value, "word delay (seconds)", float, 0, 10)


def parse_temperature(value: str) -> float:
    """A sampling temperature, 0 to 2 (the OpenAI API's range)."""
    return _number(value, "temperature", float, 0, 2)


def parse_stall_timeout(value: str) -> float:
    """Seconds without a byte from the model server before a reply is given up."""
    return _number(value, "stall timeout (seconds)", float, 1, 3600)


def parse_grace(value: str) -> float:
    """Seconds the server waits after the app window closed before it stops."""
    return _number(value, "app grace (seconds)", float, 0, 86400)


def parse_idle_exit(value: str) -> float:
    """Minutes without an open page before the server stops by itself."""
    return _number(value, "idle exit (minutes)", float, 0.01, 10080)


def _number(value: str, name: str, kind: type[int] | type[float], low: float, high: float) -> float:
    """`value` as `kind` within [low, high], or a SettingsError naming the setting."""
    try:
        number = kind(value)
    except ValueError:
        number = None
    if number is None or not low <= number <= high:
        raise SettingsError(f"{name} must be a number from {low:g} to {high:g}, not {value!r}")
    return number
