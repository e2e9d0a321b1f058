"""Find an installed Chromium-family browser for the app window, and build its command line.

Discovery is a pure function of the platform, the environment and a few look-up callables,
so every platform's rules can be tested on any machine.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath, PureWindowsPath

# The window class Chromium sets with --class (X11); the desktop entry's StartupWMClass.
WM_CLASS = "htmxchat"
PROFILE_NAME = "browser-profile"

LINUX_NAMES = (
    "google-chrome-stable",
    "google-chrome",
    "chromium",
    "chromium-browser",
    "microsoft-edge",
    "brave-browser",
)
SNAP_NAMES = ("chromium", "brave")
FLATPAK_IDS = (
    "com.google.Chrome",
    "org.chromium.Chromium",
    "com.microsoft.Edge",
    "com.brave.Browser",
    "io.github.ungoogled_software.ungoogled_chromium",
)
MAC_APPS = (
    ("Google Chrome", "Google Chrome"),
    ("Chromium", "Chromium"),
    ("Microsoft Edge", "Microsoft Edge"),
    ("Brave Browser", "Brave Browser"),
)
WINDOWS_EXES = ("chrome.exe", "msedge.exe", "brave.exe")
WINDOWS_INSTALLS = (
    ("ProgramFiles(x86)", r"Microsoft\Edge\Application\msedge.exe"),
    ("ProgramFiles", r"Microsoft\Edge\Application\msedge.exe"),
    ("ProgramFiles", r"Google\Chrome\Application\chrome.exe"),
    ("ProgramFiles(x86)", r"Google\Chrome\Application\chrome.exe"),
    ("LOCALAPPDATA", r"Google\Chrome\Application\chrome.exe"),
)


@dataclass(frozen=True, slots=True)
class Browser:
    """A browser executable, and how it is sandboxed (which decides where it may write)."""

    path: str
    kind: str = "plain"  # "plain", "snap" or "flatpak"
    package: str = ""  # the snap name or the Flatpak application id


Which = Callable[[str], str | None]
Exists = Callable[[str], bool]
RegistryReader = Callable[[str], str | None]  # exe name -> App Paths default value


def _classify(path: str) -> Browser:
    posix = PurePosixPath(path)
    if path.startswith("/snap/bin/"):
        return Browser(path, "snap", posix.name.split(".")[0])
    if posix.parent.name == "bin" and posix.parent.parent.name == "exports":
        return Browser(path, "flatpak", posix.name)  # Flatpak exports are named by app id
    return Browser(path)


def find_browser(
    platform: str,
    environ: Mapping[str, str],
    which: Which,
    exists: Exists,
    registry: RegistryReader | None = None,
) -> Browser | None:
    """The first Chromium-family browser found, in a fixed order; None when there is none.

    `platform` is `sys.platform`; HTMXCHAT_BROWSER (a name on PATH or a path) comes first.
    """
    chosen = environ.get("HTMXCHAT_BROWSER", "").strip()
    if chosen:
        found = which(chosen) or (chosen if exists(chosen) else None)
        return _classify(found) if found else None
    home = environ.get("HOME", "")
    if platform.startswith("linux") or "bsd" in platform:
        for name in LINUX_NAMES:
            path = which(name)
            if path:
                return _classify(path)
        candidates = [f"/snap/bin/{name}" for name in SNAP_NAMES]
        for exports in ("/var/lib/flatpak/exports/bin", f"{home}/.local/share/flatpak/exports/bin"):
            candidates += [f"{exports}/{app_id}" for app_id in FLATPAK_IDS]
        return next((_classify(c) for c in candidates if exists(c)), None)
    if platform == "darwin":
        for root in ("/Applications", f"{home}/Applications"):
            for app, binary in MAC_APPS:
                path = f"{root}/{app}.app/Contents/MacOS/{binary}"
                if exists(path):
                    return Browser(path)
        return None
    if platform == "win32":
        for exe in WINDOWS_EXES:
            path = registry(exe) if registry else None
            if path and exists(path.strip('"')):
                return Browser(path.strip('"'))
        for variable, tail in WINDOWS_INSTALLS:
            base = environ.get(variable)
            if base and exists(str(PureWindowsPath(base, tail))):
                return Browser(str(PureWindowsPath(base, tail)))
    return None


def windows_registry(exe: str) -> str | None:
    """The App Paths entry for `exe` (per user first, then machine-wide); None elsewhere."""
    try:
        import winreg
    except ImportError:  # not Windows
        return None
    key = rf"SOFTWARE\Microsoft\Windows\CurrentVersion\App Paths\{exe}"
    for hive in (winreg.HKEY_CURRENT_USER, winreg.HKEY_LOCAL_MACHINE):  # type: ignore[attr-defined,unused-ignore]
        try:
            with winreg.OpenKey(hive, key) as handle:  # type: ignore[attr-defined,unused-ignore]
                value = winreg.QueryValue(handle, None)  # type: ignore[attr-defined,unused-ignore]
        except OSError:
            continue
        if isinstance(value, str) and value:
            return value
    return None


def profile_base(browser: Browser, data_dir: str, home: str) -> str:
    """Where this browser can keep our profile and read our redirect file.

    Snap browsers cannot read hidden paths in the home directory (the data dir usually is
    one) and Flatpak browsers see only their own ~/.var/app/<id>, so those get a directory
    inside their own sandbox; any other browser uses the data dir.
    """
    if browser.kind == "snap":
        return f"{home}/snap/{browser.package}/common/htmxchat"
    if browser.kind == "flatpak":
        return f"{home}/.var/app/{browser.package}/data/htmxchat"
    return data_dir


def app_command(
    browser: Browser,
    url: str,
    profile: str,
    *,
    platform: str,
    extra_args: str = "",
) -> list[str]:
    """The command line that opens `url` as an app window with our own persistent profile.

    `extra_args` (HTMXCHAT_BROWSER_ARGS) is for tests and unusual setups, e.g. `--no-sandbox`
    when running as root; nothing weakens the browser by default.
    """
    command = [
        browser.path,
        f"--app={url}",
        f"--user-data-dir={profile}",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-sync",
        "--password-store=basic",
        f"--class={WM_CLASS}",
        "--window-size=1100,760",
    ]
    if platform == "darwin":
        command.append("--use-mock-keychain")  # no Keychain prompt for a profile of our own
    extra: Sequence[str] = shlex.split(extra_args) if extra_args else ()
    return [*command, *extra]
