"""The `htmxchat` command: parse options, check the data dir, start (or reuse) the server."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from htmxchat import __version__, commands
from htmxchat.access import load_or_create_token, login_url
from htmxchat.config import (
    BOT_CHOICES,
    DEFAULT_APP_GRACE,
    PREFERRED_PORT,
    Settings,
    SettingsError,
    is_loopback_host,
    resolve_settings,
)
from htmxchat.instance import InstanceLock, find_running_server
from htmxchat.launch import Listener, PortInUseError, announce, open_login
from htmxchat.logfile import LOG_FILENAME, setup_logging

log = logging.getLogger("htmxchat")

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


class _VersionAction(argparse.Action):
    """Like argparse's "version" action, but keeps the lines of `version_text()`."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, help=str(kwargs.get("help", "")))

    def __call__(self, parser: argparse.ArgumentParser, *args: object) -> None:
        print(version_text())
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface (defaults are None so env vars can fill the gaps)."""
    parser = commands.UsageParser(
        prog="htmxchat",
        description="A lightweight local chat app: opens a chat page in your browser.",
        usage="%(prog)s [options]\n       %(prog)s {logs,export,import,stop,desktop} …  "
        "(see htmxchat COMMAND -h)",
        epilog="Every option can also be set with an HTMXCHAT_<OPTION> environment variable, "
        "e.g. HTMXCHAT_PORT=8000; a flag wins over the environment.",
    )
    parser.add_argument(
        "--host",
        help="address to listen on (default 127.0.0.1: only this computer can connect)",
    )
    parser.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a --host other computers can reach (every request still needs the token)",
    )
    parser.add_argument(
        "--port",
        help=f"port to listen on (default {PREFERRED_PORT}, or a free one if that is busy; "
        "0 lets the system choose)",
    )
    parser.add_argument(
        "--no-browser", action="store_true", help="do not open a browser, only print the URL"
    )
    parser.add_argument(
        "--data-dir", help="where chats are saved (default: your user data directory)"
    )
    desktop = parser.add_argument_group("desktop")
    desktop.add_argument(
        "--app",
        action="store_true",
        help="open the chat in its own window (Chrome, Chromium, Edge or Brave in app mode); "
        "htmxchat then stops by itself once the window is closed",
    )
    desktop.add_argument(
        "--app-grace",
        metavar="SECONDS",
        help="with --app: how long to wait after the last page closed before stopping "
        f"(default {DEFAULT_APP_GRACE:g}; a reload or reconnect within it cancels the stop)",
    )
    desktop.add_argument(
        "--idle-exit",
        metavar="MINUTES",
        help="without --app: stop when no page has been open for this long (default: never)",
    )
    parser.add_argument(
        "--word-delay",
        metavar="SECONDS",
        help="pause between the demo bot's words (default 0.1; 0 for no pause)",
    )
    bots = parser.add_argument_group(
        "bots",
        "Chat with any server speaking the OpenAI-compatible API (Ollama, llama.cpp, vLLM, "
        "LM Studio, OpenAI). The API key is read only from HTMXCHAT_API_KEY (or "
        "OPENAI_API_KEY, for api.openai.com only).",
    )
    bots.add_argument(
        "--bot",
        choices=BOT_CHOICES,
        help="auto (default): a local model server if one runs, else the demo bot; "
        "demo: the built-in demo bot; openai: the server at --base-url (default OpenAI)",
    )
    bots.add_argument("--base-url", help="the server's API URL, e.g. http://127.0.0.1:11434/v1")
    bots.add_argument("--model", help="model to use (default: the server's first)")
    bots.add_argument("--system-prompt", help="instructions sent before every conversation")
    bots.add_argument("--temperature", help="sampling temperature, 0 to 2")
    bots.add_argument(
        "--stall-timeout",
        metavar="SECONDS",
        help="give a reply up after this long without a byte from the server (default 60)",
    )
    bots.add_argument(
        "--mcp-config",
        metavar="PATH",
        help="the MCP servers the model may call as tools (default: mcp.json in your user "
        "config dir)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log more (also to stderr)")
    parser.add_argument(
        "--version", action=_VersionAction, help="show the version, where chats and the log are"
    )
    return parser


async def serve(settings: Settings, listener: Listener) -> None:
    """Run the server on `listener` until it is stopped. The server (aiohttp, the chat
    core, the page's code) is imported only now: `--version` and `--help` need none of it,
    and the URL is printed and the browser started before it loads."""
    from htmxchat.server import serve as run_server

    await run_server(settings, listener=listener)


def main(argv: Sequence[str] | None = None) -> int:
    """Run htmxchat; returns the process exit code."""
    words = list(sys.argv[1:] if argv is None else argv)
    if commands.is_command(words):  # `htmxchat logs …`; flags alone start the server
        return commands.run(words)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = resolve_settings(args, os.environ)
    except SettingsError as exc:
        parser.error(str(exc))
    setup_logging(settings.log_dir, verbose=args.verbose)
    problem = check_data_dir(settings.data_dir)
    if problem:
        print(f"htmxchat: {problem}", file=sys.stderr)
        return EXIT_USAGE
    if not is_loopback_host(settings.host):
        print(
            f"htmxchat: warning: listening on {settings.host}, which other computers can reach; "
            "anyone with the link (it holds the access token) can read your chats, and "
            "traffic is not encrypted.",
            file=sys.stderr,
            flush=True,
        )

    lock = InstanceLock(settings.data_dir)
    if not lock.acquire():
        return _reuse_running_server(settings.data_dir, settings.open_browser, settings.app)
    try:
        print(f"htmxchat {__version__}: chats are saved in {settings.data_dir}", flush=True)
        listener = announce(settings)
        return _run(settings, listener)
    except PortInUseError as exc:
        print(f"htmxchat: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except OSError as exc:  # e.g. --host with an address this machine does not have
        print(f"htmxchat: cannot start: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:  # Ctrl+C before the server's own handler is in place
        return EXIT_OK
    finally:
        lock.release()


def _run(settings: Settings, listener: Listener) -> int:
    """Load the server and serve on `listener` (announced already) until stopped; the exit
    code, with the reason printed when it is not a clean stop."""
    import asyncio

    from htmxchat.server import NotSavedError
    from htmxchat.store import StoreError

    try:
        asyncio.run(serve(settings, listener))
    except NotSavedError as exc:
        # Stopping itself worked (exit 0 as after any stop); say what is missing, in one line.
        print(
            f"htmxchat: stopped, but the chat log could not be saved completely ({exc}); "
            f"replies written in the last moments may be missing (details: {settings.log_dir})",
            file=sys.stderr,
        )
        return EXIT_OK
    except StoreError as exc:
        print(f"htmxchat: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"htmxchat: cannot start: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:  # platforms without signal handlers in the loop
        pass
    return EXIT_OK


def check_data_dir(path: Path) -> str | None:
    """Create the data dir if needed; a one-line problem description if it is unusable."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)  # chat logs are private
        with tempfile.TemporaryFile(dir=path):
            pass
    except FileExistsError:
        return f"the data dir {path} is a file, not a directory; choose another with --data-dir"
    except OSError as exc:
        reason = exc.strerror or str(exc)
        return f"cannot use the data dir {path} ({reason}); choose another with --data-dir"
    return None


def _reuse_running_server(data_dir: Path, open_browser: bool, app: bool) -> int:
    import webbrowser

    from htmxchat.server import open_window

    # The other instance may still be starting: give it a moment to write its runtime file.
    deadline = time.monotonic() + 5
    while True:
        server = find_running_server(data_dir)
        if server is not None:
            break
        if time.monotonic() > deadline:
            print(
                f"htmxchat: another htmxchat is using {data_dir} but does not answer; "
                "stop it, or use another --data-dir",
                file=sys.stderr,
            )
            return EXIT_FAILURE
        time.sleep(0.2)
    print(f"htmxchat is already running for {data_dir}", flush=True)
    url = login_url(server.url, load_or_create_token(data_dir))
    print(url, flush=True)
    if open_browser and app:
        # Our profile's browser hands the new window to its running process, if there is one.
        open_window(data_dir, url, webbrowser.open)
    elif open_browser:
        open_login(data_dir, url, webbrowser.open)
    return EXIT_OK


def app_main() -> int:
    """The windowed entry point (`htmxchat-app`, no console): `htmxchat --app`."""
    return main(["--app", *sys.argv[1:]])


def version_text() -> str:
    """`htmxchat --version`: the version, and where the chats and the log are."""
    try:
        settings = resolve_settings(argparse.Namespace(), os.environ)
    except SettingsError as exc:
        return f"htmxchat {__version__} ({exc})"
    return (
        f"htmxchat {__version__}\nchats: {settings.data_dir}\n"
        f"log: {settings.log_dir / LOG_FILENAME}"
    )
