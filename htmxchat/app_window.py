"""Open the chat in an app window (a Chromium-family browser in --app mode) and close it."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from htmxchat.access import OPEN_FILENAME, write_open_file
from htmxchat.browsers import (
    PROFILE_NAME,
    app_command,
    find_browser,
    profile_base,
    windows_registry,
)

log = logging.getLogger(__name__)


class AppWindow:
    """The browser process we started, and the redirect file it opened."""

    def __init__(self, process: subprocess.Popen[bytes], redirect: Path) -> None:
        self.process = process
        self.redirect = redirect

    def close(self) -> None:
        """End the browser if it is still the process we started, and remove the file."""
        # poll() is None means the child is alive and unreaped, so its pid is still ours. A
        # browser that handed its window to an already running one has exited by now.
        if self.process.poll() is None:
            log.info("closing the app browser (pid %d)", self.process.pid)
            try:
                if os.name == "posix":  # its own session: helpers (zygote, crashpad) go too
                    os.killpg(self.process.pid, signal.SIGTERM)
                else:
                    self.process.terminate()
                self.process.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired) as exc:
                log.warning("could not end the app browser: %s", exc)
        with contextlib.suppress(FileNotFoundError):
            self.redirect.unlink()


def open_app_window(
    data_dir: Path,
    url: str,
    *,
    environ: Mapping[str, str] = os.environ,
    platform: str = sys.platform,
) -> AppWindow | None:
    """Start an app window on the tokenized `url`; None when no suitable browser exists.

    The browser opens a 0600 redirect file, never the tokenized URL itself: a command line
    is visible to every user of the machine.
    """
    browser = find_browser(platform, environ, shutil.which, os.path.exists, windows_registry)
    if browser is None:
        log.warning("no Chromium-family browser found for the app window")
        return None
    base = Path(profile_base(browser, str(data_dir), str(Path.home())))
    try:
        base.mkdir(mode=0o700, parents=True, exist_ok=True)
        redirect = write_open_file(base, url)
        command = app_command(
            browser,
            redirect.as_uri(),
            str(base / PROFILE_NAME),
            platform=platform,
            extra_args=environ.get("HTMXCHAT_BROWSER_ARGS", ""),
        )
        log.info("opening an app window with %s", browser.path)
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,  # browsers are chatty; their problems are not ours
            start_new_session=True,
        )
    except OSError as exc:
        log.warning("could not start %s: %s", browser.path, exc)
        return None
    return AppWindow(process, redirect)


def remove_redirect(data_dir: Path) -> None:
    """Remove the data dir's redirect file (it holds the token)."""
    with contextlib.suppress(FileNotFoundError):
        (data_dir / OPEN_FILENAME).unlink()
