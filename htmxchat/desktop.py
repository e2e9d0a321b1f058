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
    raise DesktopError(
        f"cannot find the installed {name} command; install htmxchat with pipx first"
    )


def _data_home(environ: Mapping[str, str]) -> PurePosixPath:
    value = environ.get("XDG_DATA_HOME", "")
    if value.startswith("/"):  # the spec ignores relative values
        return PurePosixPath(value)
    return PurePosixPath(environ.get("HOME", str(Path.home()))) / ".local" / "share"


def install(
    data_dir: Path, extra: Sequence[str] = (), environ: Mapping[str, str] = os.environ
) -> list[Path]:
    """Write the menu entry for this platform; returns the files written.

    The record of what was written lives in the data dir, which may not exist yet on an
    account where htmxchat never ran: it is created (and recorded, so uninstall removes it
    again when nothing else was put there). The record is written before the first file and
    after every one, so an install that fails half-way can still be undone.
    """
    if (data_dir / RECORD_FILENAME).exists():
        uninstall(data_dir)  # replace, never leave the old entry's files behind
    created_dirs = _make_dirs(data_dir)
    written: list[Path] = []
    _save_record(data_dir, written, created_dirs)
    if sys.platform == "win32":
        written.append(_install_windows(environ, extra))
        _save_record(data_dir, written, created_dirs)
        return written
    if sys.platform == "darwin":
        home = PurePosixPath(environ.get("HOME", str(Path.home())))
        plan = mac_plan(home, find_command(), extra)
    else:
        plan = linux_plan(_data_home(environ), find_command(), extra)
    try:
        for planned in plan:
            written.append(_write(planned, created_dirs))
    finally:
        _save_record(data_dir, written, created_dirs)
    # No update-desktop-database or icon cache runs: menus watch these folders, and the
    # caches those tools leave behind would outlive an uninstall.
    return written


def _make_dirs(folder: Path, mode: int = 0o700) -> list[Path]:
    """Create `folder` and its missing parents; returns the ones created, outermost first."""
    missing = [p for p in [*reversed(folder.parents), folder] if not p.exists()]
    folder.mkdir(mode=mode, parents=True, exist_ok=True)
    return missing


def _save_record(data_dir: Path, files: list[Path], dirs: list[Path]) -> None:
    record = {"files": [str(p) for p in files], "dirs": [str(p) for p in dirs]}
    write_private(data_dir / RECORD_FILENAME, json.dumps(record, indent=2))


def _write(planned: PlannedFile, created_dirs: list[Path]) -> Path:
    path = Path(planned.path)
    created_dirs.extend(_make_dirs(path.parent, mode=0o755))
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


def _planned_paths(environ: Mapping[str, str]) -> list[Path]:
    """Where install puts its files on this platform (the names carry htmxchat's own id)."""
    if sys.platform == "win32":
        return [Path(str(windows_link(environ.get("APPDATA", ""))))]
    if sys.platform == "darwin":
        home = PurePosixPath(environ.get("HOME", str(Path.home())))
        return [Path(p.path) for p in mac_plan(home, "htmxchat")]
    return [Path(p.path) for p in linux_plan(_data_home(environ), "htmxchat")]


def uninstall(data_dir: Path, environ: Mapping[str, str] = os.environ) -> list[Path]:
    """Remove what install recorded; returns the files removed.

    Without a record (an install by an older htmxchat that failed before writing it), the
    files at install's own paths are removed: their names are htmxchat's, nobody else's.
    """
    record_path = data_dir / RECORD_FILENAME
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
        files = [Path(p) for p in record["files"]]
        dirs = [Path(p) for p in record["dirs"]]
    except FileNotFoundError:
        leftovers = [path for path in _planned_paths(environ) if path.is_file()]
        if not leftovers:
            raise DesktopError("there is no htmxchat menu entry to remove") from None
        for path in leftovers:
            path.unlink()
        return leftovers
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DesktopError(f"cannot read {record_path}: {exc}") from None
    removed = []
    for path in files:
        if path.is_file():
            path.unlink()
            removed.append(path)
    record_path.unlink()  # first: the data dir itself may be among the folders install made
    for folder in sorted(dirs, key=lambda p: len(p.parts), reverse=True):
        if folder.is_dir() and not any(folder.iterdir()):  # never remove what others added
            folder.rmdir()
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
            print("htmxchat is no longer in your applications menu.")
    except (DesktopError, OSError) as exc:
        reason = str(exc)
        if isinstance(exc, OSError) and exc.strerror:
            reason = f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
        print(f"htmxchat desktop {action}: {reason}", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK
