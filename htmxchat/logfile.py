"""Logging: always to a rotating file, to stderr only when someone can read it there.

An app window started from a menu has no terminal (a GUI entry point even has
`sys.stderr is None`), so the file is where problems can be found afterwards.
"""

from __future__ import annotations

import io
import logging
import logging.handlers
import os
import sys
from pathlib import Path

LOG_FILENAME = "htmxchat.log"


FILE_FORMAT = "%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"
MAX_BYTES = 1_000_000
BACKUPS = 3


class _Quiet(logging.Filter):
    """Drops records while `quiet` is on (the caller reports them in one line instead)."""

    def __init__(self) -> None:
        super().__init__()
        self.quiet = False

    def filter(self, record: logging.LogRecord) -> bool:
        return not self.quiet


_terminal_filter = _Quiet()


class PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """A rotating log whose files only their owner can read (0600), even in a shared
    directory: the log names servers, models and paths people would not share."""

    def _open(self) -> io.TextIOWrapper:
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        if hasattr(os, "fchmod"):  # not on Windows, where the mode bits mean nothing
            os.fchmod(fd, 0o600)  # a file left by an older version is made private too
        return open(fd, "a", encoding=self.encoding, errors=self.errors)


def setup_logging(log_dir: Path, *, verbose: bool) -> Path | None:
    """Log to `log_dir`/htmxchat.log (INFO, DEBUG with -v) and maybe stderr.

    Returns the log file, or None when it cannot be written (logging then goes on without).
    """
    root = logging.getLogger()
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for handler in list(root.handlers):  # main() may run twice in one process (tests)
        root.removeHandler(handler)
        handler.close()
    path: Path | None = log_dir / LOG_FILENAME
    try:
        log_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        file_handler = PrivateRotatingFileHandler(
            log_dir / LOG_FILENAME, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8"
        )
    except OSError as exc:
        path = None
        file_problem: str | None = f"cannot write the log in {log_dir}: {exc.strerror or exc}"
    else:
        file_problem = None
        file_handler.setFormatter(logging.Formatter(FILE_FORMAT))
        root.addHandler(file_handler)
    stderr = sys.stderr
    if stderr is not None and (verbose or stderr.isatty()):
        terminal = logging.StreamHandler(stderr)
        terminal.setLevel(logging.DEBUG if verbose else logging.WARNING)
        terminal.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        terminal.addFilter(_terminal_filter)
        root.addHandler(terminal)
    if not verbose:
        # aiohttp's access log is off without -v anyway; asyncio's debug chatter never helps.
        logging.getLogger("asyncio").setLevel(logging.WARNING)
    if file_problem:
        logging.getLogger("htmxchat").warning("%s", file_problem)
    return path


def quiet_terminal(quiet: bool) -> None:
    """While on, log records reach only the file (used while stopping: the launcher then
    says in one line what could not be saved, instead of showing tracebacks)."""
    _terminal_filter.quiet = quiet
