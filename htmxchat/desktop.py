"""`htmxchat desktop install|uninstall`: a menu entry that opens htmxchat in its own window.

Install records every file and directory it created in the data dir; uninstall removes
exactly those (directories only when empty), and nothing else.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path, PurePosixPath

from htmxchat.desktop_files import (
    PlannedFile,
    linux_plan,
    mac_plan,
    windows_link,
    windows_shortcut_script,
)
from htmxchat.private_file import write_private

RECORD_FILENAME = "desktop-install.json"
EXIT_OK, EXIT_FAILURE = 0, 1


class DesktopError(Exception):
    """The menu entry cannot be installed or removed; the message says why."""


def find_command(name: str = "htmxchat") -> str:
    """The absolute path of the installed command (pipx puts it on PATH, e.g. ~/.local/bin)."""
    found = shutil.which(name)
    if found:
        return str(Path(found).absolute())
    launched = Path(sys.argv[0])
    if launched.name == name and launched.exists():
        return str(launched.absolute())
    beside = Path(sys.executable).parent / name  # a venv's bin/ without being on PATH
    if beside.exists():
        return str(beside)
    raise DesktopError(f"cannot find the installed `{name}` command; install htmxchat with pipx")


def _data_home(environ: Mapping[str, str]) -> PurePosixPath:
    value = environ.get("XDG_DATA_HOME", "")
    if value.startswith("/"):  # the spec ignores relative values
        return PurePosixPath(value)
    return PurePosixPath(environ.get("HOME", str(Path.home()))) / ".local" / "share"


def install(
    data_dir: Path, extra: Sequence[str] = (), environ: Mapping[str, str] = os.environ
) -> list[Path]:
    """Write the menu entry for this platform; returns the files written."""
    if (data_dir / RECORD_FILENAME).exists():
        uninstall(data_dir)  # replace, never leave the old entry's files behind
    created_dirs: list[Path] = []
    written: list[Path] = []
    try:
        if sys.platform == "win32":
            written.append(_install_windows(environ, extra))
        else:
            if sys.platform == "darwin":
                home = PurePosixPath(environ.get("HOME", str(Path.home())))
                plan = mac_plan(home, find_command(), extra)
            else:
                plan = linux_plan(_data_home(environ), find_command(), extra)
            for planned in plan:
                written.append(_write(planned, created_dirs))
    finally:
        record = {"files": [str(p) for p in written], "dirs": [str(p) for p in created_dirs]}
        write_private(data_dir / RECORD_FILENAME, json.dumps(record, indent=2))
    # No update-desktop-database or icon cache runs: menus watch these folders, and the
    # caches those tools leave behind would outlive an uninstall.
    return written


def _write(planned: PlannedFile, created_dirs: list[Path]) -> Path:
    path = Path(planned.path)
    missing = [p for p in reversed(path.parents) if not p.exists()]
    path.parent.mkdir(parents=True, exist_ok=True)
    created_dirs.extend(missing)
    if planned.icon_size:
        icon = resources.files("htmxchat") / "icons" / f"htmxchat-{planned.icon_size}.png"
        path.write_bytes(icon.read_bytes())
    else:
        path.write_text(planned.text, encoding="utf-8")
    path.chmod(planned.mode)
    return path


def _install_windows(environ: Mapping[str, str], extra: Sequence[str]) -> Path:
    link = windows_link(environ.get("APPDATA", ""))
    script = windows_shortcut_script(link, find_command("htmxchat-app"), extra)
    try:
        subprocess.run(
            ["powershell", "-NoProfile", "-NonInteractive", "-Command", script],
            check=True,
            capture_output=True,
            timeout=60,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise DesktopError(f"could not create the Start-menu shortcut: {exc}") from None
    return Path(str(link))


def uninstall(data_dir: Path) -> list[Path]:
    """Remove what install recorded; returns the files removed."""
    record_path = data_dir / RECORD_FILENAME
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
        files = [Path(p) for p in record["files"]]
        dirs = [Path(p) for p in record["dirs"]]
    except FileNotFoundError:
        raise DesktopError("no menu entry was installed from this data dir") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DesktopError(f"cannot read {record_path}: {exc}") from None
    removed = []
    for path in files:
        if path.is_file():
            path.unlink()
            removed.append(path)
    for folder in sorted(dirs, key=lambda p: len(p.parts), reverse=True):
        if folder.is_dir() and not any(folder.iterdir()):  # never remove what others added
            folder.rmdir()
    record_path.unlink()
    return removed


def run(action: str, data_dir: Path, extra: Sequence[str] = ()) -> int:
    """`htmxchat desktop install|uninstall`; returns the exit code."""
    try:
        if action == "install":
            for path in install(data_dir, extra):
                print(f"wrote {path}")
            print("htmxchat is in your applications menu; it opens in its own window.")
        else:
            for path in uninstall(data_dir):
                print(f"removed {path}")
    except (DesktopError, OSError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        print(f"htmxchat desktop {action}: {reason}", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK
