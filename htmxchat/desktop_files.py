"""What a menu entry consists of on each platform, as pure functions (text in, text out).

desktop.py writes these files; keeping them pure lets every platform be tested anywhere.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePath, PurePosixPath, PureWindowsPath

from htmxchat.browsers import WM_CLASS

APP_ID = "io.github.htmxchat.htmxchat"  # reverse-DNS: the desktop file's and icons' name
APP_NAME = "htmxchat"
COMMENT = "A lightweight local chat app"
ICON_SIZES = (128, 256)


@dataclass(frozen=True, slots=True)
class PlannedFile:
    """One file to write: where, what (text, or the name of a packaged icon), its mode."""

    path: PurePath
    text: str = ""
    icon_size: int = 0  # nonzero: copy the packaged PNG of this size instead of `text`
    mode: int = 0o644


def _exec_quote(word: str) -> str:
    """Quote one Exec argument as the Desktop Entry spec wants (only when needed)."""
    if word and not any(c in word for c in " \t\n\"'\\><~|&;$*?#()`"):
        return word
    escaped = "".join("\\" + c if c in '"`$\\' else c for c in word)
    return f'"{escaped}"'


def exec_line(command: Sequence[str]) -> str:
    """An Exec= value (a literal % must be doubled)."""
    return " ".join(_exec_quote(word) for word in command).replace("%", "%%")


def linux_entry(command: str, extra: Sequence[str] = ()) -> str:
    """The XDG desktop entry: `htmxchat --app`, with a Quit action running `htmxchat stop`."""
    run = exec_line([command, *extra, "--app"])
    stop = exec_line([command, *extra, "stop"])
    return (
        "[Desktop Entry]\n"
        "Type=Application\n"
        "Version=1.0\n"
        f"Name={APP_NAME}\n"
        f"Comment={COMMENT}\n"
        f"Exec={run}\n"
        f"TryExec={command}\n"
        f"Icon={APP_ID}\n"
        "Terminal=false\n"
        "Categories=Network;Chat;\n"
        "Keywords=chat;LLM;AI;\n"
        "StartupNotify=true\n"
        f"StartupWMClass={WM_CLASS}\n"
        "Actions=quit;\n"
        "\n"
        "[Desktop Action quit]\n"
        "Name=Quit\n"
        f"Exec={stop}\n"
    )


def linux_plan(
    data_home: PurePosixPath, command: str, extra: Sequence[str] = ()
) -> list[PlannedFile]:
    """The desktop entry and the hicolor icons under `data_home` ($XDG_DATA_HOME)."""
    files = [
        PlannedFile(data_home / "applications" / f"{APP_ID}.desktop", linux_entry(command, extra))
    ]
    for size in ICON_SIZES:
        folder = data_home / "icons" / "hicolor" / f"{size}x{size}" / "apps"
        files.append(PlannedFile(folder / f"{APP_ID}.png", icon_size=size))
    return files


def mac_info_plist() -> str:
    """Info.plist of the small ~/Applications/htmxchat.app bundle."""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
  <key>CFBundleName</key><string>{APP_NAME}</string>
  <key>CFBundleDisplayName</key><string>{APP_NAME}</string>
  <key>CFBundleIdentifier</key><string>{APP_ID}</string>
  <key>CFBundleExecutable</key><string>{APP_NAME}</string>
  <key>CFBundlePackageType</key><string>APPL</string>
  <key>CFBundleVersion</key><string>1.0</string>
  <key>LSUIElement</key><false/>
</dict>
</plist>
"""


def mac_launcher(command: str, extra: Sequence[str] = ()) -> str:
    """The bundle's executable: a shell script that runs `htmxchat --app`."""
    words = " ".join(shlex.quote(word) for word in [command, *extra, "--app"])
    return f'#!/bin/sh\nexec {words} "$@"\n'


def mac_plan(home: PurePosixPath, command: str, extra: Sequence[str] = ()) -> list[PlannedFile]:
    """The files of ~/Applications/htmxchat.app."""
    contents = home / "Applications" / f"{APP_NAME}.app" / "Contents"
    return [
        PlannedFile(contents / "Info.plist", mac_info_plist()),
        PlannedFile(contents / "MacOS" / APP_NAME, mac_launcher(command, extra), mode=0o755),
    ]


def _ps_quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def windows_shortcut_script(link: PureWindowsPath, target: str, extra: Sequence[str] = ()) -> str:
    """PowerShell that makes the Start-menu shortcut to the windowed `htmxchat-app`."""
    arguments = " ".join(f'"{word}"' if " " in word else word for word in extra)
    return (
        "$shell = New-Object -ComObject WScript.Shell\n"
        f"$link = $shell.CreateShortcut({_ps_quote(str(link))})\n"
        f"$link.TargetPath = {_ps_quote(target)}\n"
        f"$link.Arguments = {_ps_quote(arguments)}\n"
        f"$link.Description = {_ps_quote(COMMENT)}\n"
        "$link.Save()\n"
    )


def windows_link(appdata: str) -> PureWindowsPath:
    """Where the Start-menu shortcut goes."""
    programs = PureWindowsPath(appdata, "Microsoft", "Windows", "Start Menu", "Programs")
    return programs / f"{APP_NAME}.lnk"
