"""`htmxchat logs|export|import` (the chat log from the shell), `stop` and `desktop`.

They open the SQLite database directly; WAL mode lets them run while the server does.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from htmxchat.config import SettingsError, resolve_settings

if TYPE_CHECKING:
    from htmxchat.models import Conversation, Message
    from htmxchat.store import ChatStore

COMMANDS = ("logs", "export", "import", "stop", "desktop")
EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


class CommandError(Exception):
    """A command cannot do what was asked; the message says why."""


class UsageParser(argparse.ArgumentParser):
    """An argument parser whose errors end by naming the help of the command that was used."""

    def error(self, message: str) -> NoReturn:
        """Print the usage and the problem, then where to read more; exit 2."""
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n(see {self.prog} -h)\n")


def is_command(words: Sequence[str]) -> bool:
    """True for `[--data-dir DIR] COMMAND …`; anything else is the server's own flags."""
    index = 0
    while index < len(words) and words[index].startswith("--data-dir"):
        index += 1 if "=" in words[index] else 2
    return index < len(words) and words[index] in COMMANDS


def build_parser() -> UsageParser:
    """Parser for the log subcommands (the server's own flags live in `cli.py`)."""
    parser = UsageParser(prog="htmxchat", description="Read and move saved chats.")
    parser.add_argument("--data-dir", help="where chats are saved (default: as the server)")
    sub = parser.add_subparsers(dest="command", required=True)

    logs = sub.add_parser("logs", help="list conversations, or print one")
    logs.add_argument("id", nargs="?", help="the conversation to print (default: list them)")
    logs.add_argument("--json", action="store_true", help="print JSON instead of Markdown")
    logs.add_argument("--data-dir", default=argparse.SUPPRESS, help=argparse.SUPPRESS)

    export = sub.add_parser("export", help="write one conversation to a file")
    export.add_argument("id", help="the conversation to export")
    export.add_argument("-o", "--output", required=True, help="file to write ('-' for stdout)")
    export.add_argument(
        "--format",
        choices=("json", "md"),
        help="file format (default: from the file name's extension, else JSON)",
    )
    export.add_argument("--force", action="store_true", help="replace FILE if it exists")
    export.add_argument("--data-dir", default=argparse.SUPPRESS, help=argparse.SUPPRESS)

    imp = sub.add_parser("import", help="add a conversation from a JSON export")
    imp.add_argument("file", help="a file written by htmxchat export or the page's JSON link")
    imp.add_argument(
        "--copy",
        action="store_true",
        help="import it even if the conversation is already in your chats (as a copy)",
    )
    imp.add_argument("--data-dir", default=argparse.SUPPRESS, help=argparse.SUPPRESS)

    stop = sub.add_parser("stop", help="stop the htmxchat running for the data dir")
    stop.add_argument("--data-dir", default=argparse.SUPPRESS, help=argparse.SUPPRESS)

    desktop = sub.add_parser("desktop", help="add or remove the applications-menu entry")
    desktop.add_argument("action", choices=("install", "uninstall"))
    desktop.add_argument("--data-dir", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return parser


def run(argv: Sequence[str]) -> int:
    """Run one subcommand; returns the exit code."""
    # Imported here: `htmxchat --version` and `--help` (which build the parser) need none
    # of the chat log or export code.
    import asyncio

    from htmxchat import desktop
    from htmxchat.stop import stop_server
    from htmxchat.store import DB_FILENAME, StoreError

    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # report it as the subcommand's own error, with its help
        subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        subparsers.choices[args.command].error(f"unrecognized arguments: {' '.join(unknown)}")
    try:
        settings = resolve_settings(
            argparse.Namespace(data_dir=args.data_dir, no_browser=True), os.environ
        )
    except SettingsError as exc:
        parser.error(str(exc))
    if settings.data_dir.exists() and not settings.data_dir.is_dir():
        print(
            f"htmxchat {args.command}: the data dir {settings.data_dir} is a file, not a "
            "directory; choose another with --data-dir",
            file=sys.stderr,
        )
        return EXIT_FAILURE
    if args.command == "stop":
        return stop_server(settings.data_dir)
    if args.command == "desktop":
        # An entry for a data dir given explicitly starts htmxchat on that data dir.
        extra = ["--data-dir", str(settings.data_dir)] if args.data_dir else []
        return desktop.run(args.action, settings.data_dir, extra)
    path = settings.data_dir / DB_FILENAME
    actions: dict[str, Callable[[ChatStore, argparse.Namespace], Awaitable[None]]] = {
        "logs": _logs,
        "export": _export,
        "import": _import,
    }
    if args.command == "logs" and not args.id and not path.exists():
        # A fresh account has no chats yet: that is an empty list, not an error, and
        # reading it creates nothing.
        print("[]" if args.json else "No conversations yet.")
        return EXIT_OK
    try:
        if args.command != "import" and not path.exists():
            raise CommandError(f"there are no saved chats in {settings.data_dir} yet")
        if args.command == "import":
            # Read and check the file first: a bad file must not create an empty chat log.
            args.parsed = _read_export(Path(args.file))
        asyncio.run(_with_store(path, actions[args.command], args))
    except CommandError as exc:
        print(f"htmxchat {args.command}: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except StoreError as exc:
        print(f"htmxchat {args.command}: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK


async def _with_store(
    path: Path,
    action: Callable[[ChatStore, argparse.Namespace], Awaitable[None]],
    args: argparse.Namespace,
) -> None:
    from htmxchat.store import ChatStore

    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # chat logs are private
    except OSError as exc:
        raise CommandError(
            f"cannot use the data dir {path.parent} ({exc.strerror or exc}); "
            "choose another with --data-dir"
        ) from None
    # recover=False: a running server may be writing the replies still marked streaming.
    store = await ChatStore.open(path, recover=False)
    try:
        await action(store, args)
    finally:
        await store.close()


async def _document(store: ChatStore, conversation_id: str, as_json: bool) -> str:
    conversation = await store.conversation(conversation_id)
    if conversation is None:
        raise CommandError(
            f"no conversation has the id {conversation_id!r} (htmxchat logs lists them)"
        )
    # JSON keeps the whole tree with the files' bytes; Markdown is the branch shown
    # (docs/design.md, "Message tree").
    messages = await (store.export_messages if as_json else store.branch)(conversation_id)
    from htmxchat.export import to_json, to_markdown

    return (to_json if as_json else to_markdown)(conversation, messages)


async def _logs(store: ChatStore, args: argparse.Namespace) -> None:
    if args.id:
        sys.stdout.write(await _document(store, args.id, args.json))
        return
    conversations = await store.conversations()
    counts = await store.message_counts()
    if args.json:
        rows = [
            {
                "id": c.id,
                "title": c.title,
                "updated_at": c.updated_at,
                "messages": counts.get(c.id, 0),
            }
            for c in conversations
        ]
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    if not conversations:
        print("No conversations yet.")
        return
    for c in conversations:
        updated = datetime.fromtimestamp(c.updated_at).strftime("%Y-%m-%d %H:%M")
        title = " ".join(c.title.split()) or "(untitled)"  # one line per conversation
        print(f"{c.id}  {updated}  {counts.get(c.id, 0):>5} msgs  {title}")


async def _export(store: ChatStore, args: argparse.Namespace) -> None:
    as_json = args.format == "json" or (args.format is None and not args.output.endswith(".md"))
    text = await _document(store, args.id, as_json)
    if args.output == "-":
        sys.stdout.write(text)
        return
    import asyncio

    await asyncio.to_thread(_write, Path(args.output), text, args.force)
    print(f"Wrote {args.output}", file=sys.stderr)


def _write(path: Path, text: str, force: bool) -> None:
    if path.exists() and not force:
        raise CommandError(f"{path} already exists; add --force to replace it")
    # Write beside it, then rename: an interrupted export never leaves half a file.
    partial = path.with_name(f".{path.name}.partial")
    try:
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, path)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise CommandError(f"cannot write {path}: {exc.strerror or exc}") from None


def _read_export(path: Path) -> tuple[Conversation, list[Message]]:
    from htmxchat.export import ImportFormatError, parse_export

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise CommandError(f"cannot read {path}: {reason or exc}") from None
    try:
        return parse_export(text)
    except ImportFormatError as exc:
        raise CommandError(f"{path}: {exc}") from None


async def _import(store: ChatStore, args: argparse.Namespace) -> None:
    conversation, messages = args.parsed
    existing = await store.conversation(conversation.id)
    if existing is not None and not args.copy:  # importing a file twice makes no duplicate
        title = " ".join(existing.title.split()) or "untitled"
        print(
            f"Skipped {args.file}: it is already in your chats as conversation {existing.id} "
            f"({title}). Add --copy to import it again as a copy."
        )
        return
    stored = await store.import_conversation(conversation, messages)
    note = "" if stored.id == conversation.id else " (new id: the old one is in use)"
    print(f"Imported {len(messages)} messages as conversation {stored.id}{note}")
