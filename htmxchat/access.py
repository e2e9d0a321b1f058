"""The access token: kept 0600 in the data dir, put in the login URL the launcher opens.

The token stops other local users (and anything else without it): every request needs it,
or the HttpOnly cookie the first request exchanges it for (see guard.py).
"""

from __future__ import annotations

import html
import logging
import os
import re
import secrets
import stat
from pathlib import Path

from htmxchat.private_file import write_private

log = logging.getLogger(__name__)

TOKEN_FILENAME = "token"
OPEN_FILENAME = "open.html"
TOKEN_PARAM = "token"
_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{32,128}")


def read_token(data_dir: Path) -> str | None:
    """The token in the data dir, or None when missing, malformed or readable by others."""
    path = data_dir / TOKEN_FILENAME
    try:
        mode = path.stat().st_mode
        token = path.read_text(encoding="utf-8").strip()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except (OSError, UnicodeDecodeError) as exc:
        log.warning("ignoring an unreadable token file %s: %s", path, exc)
        return None
    if os.name == "posix" and stat.S_IMODE(mode) & 0o077:
        # Someone else may have read it: treat it as spent and make a new one.
        log.warning("the token file %s was readable by others; replacing it", path)
        return None
    return token if _TOKEN_RE.fullmatch(token) else None


def load_or_create_token(data_dir: Path) -> str:
    """The data dir's access token, created (0600) on first use.

    Kept across restarts so open tabs keep working when the server comes back.
    """
    token = read_token(data_dir)
    if token is None:
        token = secrets.token_urlsafe(32)  # 256 bits
        write_private(data_dir / TOKEN_FILENAME, token + "\n")
    return token


def login_url(base_url: str, token: str) -> str:
    """The URL the launcher prints and opens: the base URL plus the token."""
    return f"{base_url}?{TOKEN_PARAM}={token}"


def write_open_file(data_dir: Path, url: str) -> Path:
    """A 0600 page that redirects the browser to `url` (Jupyter's browser-open file).

    The browser is opened on this file instead of the tokenized URL, so the token never
    appears on a command line (other users can read those with `ps`).
    """
    quoted = html.escape(url, quote=True)
    path = data_dir / OPEN_FILENAME
    write_private(
        path,
        '<!doctype html>\n<html><head><meta charset="utf-8">\n'
        f'<meta http-equiv="refresh" content="0;url={quoted}">\n'
        "<title>Opening htmxchat…</title></head>\n"
        f'<body><p>Opening htmxchat… If nothing happens, <a href="{quoted}">click here</a>.'
        "</p></body></html>\n",
    )
    return path
