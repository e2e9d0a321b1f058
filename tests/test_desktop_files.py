"""Browser discovery on every platform, and the menu entry's files (pure functions)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path, PurePosixPath, PureWindowsPath

import pytest

from htmxchat import desktop
from htmxchat.browsers import Browser, app_command, find_browser, profile_base
from htmxchat.desktop_files import (
    APP_ID,
    exec_line,
    linux_entry,
    mac_info_plist,
    mac_launcher,
    mac_plan,
    windows_link,
    windows_shortcut_script,
)


def only(*paths: str) -> Callable[[str], bool]:
    return lambda path: path in paths


def on_path(**names: str) -> Callable[[str], str | None]:
    return lambda name: names.get(name.replace("-", "_"))


def nothing(_: str) -> None:
    return None


HOME = {"HOME": "/home/u"}


@pytest.mark.parametrize(
    ("which", "exists", "expected"),
    [
        (on_path(chromium="/usr/bin/chromium"), only(), Browser("/usr/bin/chromium")),
        (
            on_path(chromium="/usr/bin/chromium", google_chrome="/opt/gc"),
            only(),
            Browser("/opt/gc"),
        ),
        (
            on_path(brave_browser="/usr/bin/brave-browser"),
            only(),
            Browser("/usr/bin/brave-browser"),
        ),
        (nothing, only("/snap/bin/chromium"), Browser("/snap/bin/chromium", "snap", "chromium")),
        (
            nothing,
            only("/var/lib/flatpak/exports/bin/com.google.Chrome"),
            Browser(
                "/var/lib/flatpak/exports/bin/com.google.Chrome", "flatpak", "com.google.Chrome"
            ),
        ),
        (
            nothing,
            only("/home/u/.local/share/flatpak/exports/bin/org.chromium.Chromium"),
            Browser(
                "/home/u/.local/share/flatpak/exports/bin/org.chromium.Chromium",
                "flatpak",
                "org.chromium.Chromium",
            ),
        ),
        (nothing, only(), None),
    ],
)
def test_linux_discovery_order(which, exists, expected) -> None:  # type: ignore[no-untyped-def]
    assert find_browser("linux", HOME, which, exists) == expected


def test_the_environment_variable_comes_first() -> None:
    which = on_path(chromium="/usr/bin/chromium", mybrowser="/opt/my/browser")
    assert find_browser("linux", {"HTMXCHAT_BROWSER": "mybrowser"}, which, only()) == Browser(
        "/opt/my/browser"
    )
    chosen = {"HTMXCHAT_BROWSER": "/x/chrome"}
    assert find_browser("darwin", chosen, nothing, only("/x/chrome")) == Browser("/x/chrome")
    assert find_browser("linux", {"HTMXCHAT_BROWSER": "/missing"}, which, only()) is None


def test_macos_discovery() -> None:
    edge = "/Applications/Microsoft Edge.app/Contents/MacOS/Microsoft Edge"
    mine = "/home/u/Applications/Chromium.app/Contents/MacOS/Chromium"
    assert find_browser("darwin", HOME, nothing, only(edge, mine)) == Browser(edge)
    assert find_browser("darwin", HOME, nothing, only(mine)) == Browser(mine)
    assert find_browser("darwin", HOME, nothing, only()) is None


def test_windows_discovery_registry_then_program_files() -> None:
    chrome = r"C:\Google\chrome.exe"
    registry = {"chrome.exe": f'"{chrome}"'}.get
    assert find_browser("win32", {}, nothing, only(chrome), registry) == Browser(chrome)
    environ = {"ProgramFiles(x86)": r"C:\Program Files (x86)"}
    edge = r"C:\Program Files (x86)\Microsoft\Edge\Application\msedge.exe"
    assert find_browser("win32", environ, nothing, only(edge), nothing) == Browser(edge)
    assert find_browser("win32", environ, nothing, only(), nothing) is None


def test_profiles_live_where_sandboxed_browsers_can_write() -> None:
    assert profile_base(Browser("/usr/bin/chromium"), "/d", "/h") == "/d"
    snap = Browser("/snap/bin/chromium", "snap", "chromium")
    assert profile_base(snap, "/d", "/h") == "/h/snap/chromium/common/htmxchat"
    flatpak = Browser("/x/exports/bin/com.brave.Browser", "flatpak", "com.brave.Browser")
    assert profile_base(flatpak, "/d", "/h") == "/h/.var/app/com.brave.Browser/data/htmxchat"


def test_app_command_line() -> None:
    command = app_command(Browser("/b"), "file:///d/open.html", "/d/p", platform="darwin")
    assert command[:3] == ["/b", "--app=file:///d/open.html", "--user-data-dir=/d/p"]
    for flag in ("--no-first-run", "--disable-sync", "--class=htmxchat", "--use-mock-keychain"):
        assert flag in command
    assert "--no-sandbox" not in command
    linux = app_command(Browser("/b"), "u", "/p", platform="linux", extra_args="--no-sandbox")
    assert linux[-1] == "--no-sandbox" and "--use-mock-keychain" not in linux


def test_exec_line_quotes_as_the_spec_wants() -> None:
    assert exec_line(["/a b/htmxchat", "--app"]) == '"/a b/htmxchat" --app'
    assert exec_line(["/x/50%", "a$b"]) == '/x/50%% "a\\$b"'


@pytest.mark.skipif(not shutil.which("desktop-file-validate"), reason="needs desktop-file-utils")
def test_linux_entry_is_valid(tmp_path: Path) -> None:
    entry = tmp_path / f"{APP_ID}.desktop"
    entry.write_text(linux_entry("/home/u/.local/bin/htmxchat", ["--data-dir", "/my data"]))
    result = subprocess.run(["desktop-file-validate", str(entry)], capture_output=True, text=True)
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout
    text = entry.read_text()
    assert 'Exec=/home/u/.local/bin/htmxchat --data-dir "/my data" --app\n' in text
    assert "StartupWMClass=htmxchat\n" in text and "Exec=/home/u/.local/bin/htmxchat" in text


def test_install_then_uninstall_leaves_the_folder_as_it_was(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_home = tmp_path / "share"
    (data_home / "applications").mkdir(parents=True)
    (data_home / "applications" / "other.desktop").write_text("[Desktop Entry]\n")
    monkeypatch.setattr(desktop.sys, "platform", "linux")
    monkeypatch.setattr(desktop, "find_command", lambda name="htmxchat": "/opt/bin/htmxchat")

    def listing() -> list[str]:
        return sorted(str(p.relative_to(data_home)) for p in data_home.rglob("*"))

    before = listing()
    written = desktop.install(data_dir, environ={"XDG_DATA_HOME": str(data_home)})
    assert data_home / "applications" / f"{APP_ID}.desktop" in written
    assert (data_home / "icons/hicolor/256x256/apps" / f"{APP_ID}.png").read_bytes()[:4] == (
        b"\x89PNG"
    )
    if shutil.which("desktop-file-validate"):
        entry = data_home / "applications" / f"{APP_ID}.desktop"
        assert subprocess.run(["desktop-file-validate", str(entry)]).returncode == 0
    desktop.uninstall(data_dir)
    assert listing() == before
    assert not (data_dir / desktop.RECORD_FILENAME).exists()
    with pytest.raises(desktop.DesktopError):
        desktop.uninstall(data_dir)


def test_macos_bundle_files() -> None:
    plan = mac_plan(PurePosixPath("/Users/u"), "/Users/u/.local/bin/htmxchat")
    paths = [str(p.path) for p in plan]
    assert paths == [
        "/Users/u/Applications/htmxchat.app/Contents/Info.plist",
        "/Users/u/Applications/htmxchat.app/Contents/MacOS/htmxchat",
    ]
    assert plan[1].mode == 0o755
    assert "<key>CFBundleExecutable</key><string>htmxchat</string>" in mac_info_plist()
    assert mac_launcher("/a b/htmxchat") == "#!/bin/sh\nexec '/a b/htmxchat' --app \"$@\"\n"


def test_windows_shortcut_script() -> None:
    link = windows_link(r"C:\Users\u\AppData\Roaming")
    assert link == PureWindowsPath(
        r"C:\Users\u\AppData\Roaming\Microsoft\Windows\Start Menu\Programs\htmxchat.lnk"
    )
    script = windows_shortcut_script(link, r"C:\Users\u's\htmxchat-app.exe")
    assert "New-Object -ComObject WScript.Shell" in script
    assert r"$link.TargetPath = 'C:\Users\u''s\htmxchat-app.exe'" in script
    assert script.endswith("$link.Save()\n")


def test_install_on_a_fresh_account_creates_the_data_dir_and_uninstall_removes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    data_dir = home / ".local/share/htmxchat"  # where htmxchat never ran: nothing exists
    monkeypatch.setattr(desktop.sys, "platform", "linux")
    monkeypatch.setattr(desktop, "find_command", lambda name="htmxchat": "/opt/bin/htmxchat")
    written = desktop.install(data_dir, environ={"HOME": str(home)})
    assert home / ".local/share/applications" / f"{APP_ID}.desktop" in written
    assert (data_dir / desktop.RECORD_FILENAME).is_file()
    desktop.uninstall(data_dir, environ={"HOME": str(home)})
    assert list(home.iterdir()) == []


def test_a_failed_install_is_undone_by_uninstall(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_home = tmp_path / "share"
    monkeypatch.setattr(desktop.sys, "platform", "linux")
    monkeypatch.setattr(desktop, "find_command", lambda name="htmxchat": "/opt/bin/htmxchat")
    (data_home / "icons/hicolor").mkdir(parents=True)
    (data_home / "icons/hicolor/256x256").write_text("a file where a folder should be")
    environ = {"XDG_DATA_HOME": str(data_home)}
    with pytest.raises(OSError):
        desktop.install(data_dir, environ=environ)
    assert (data_home / "applications" / f"{APP_ID}.desktop").exists()  # written before
    assert [p.name for p in desktop.uninstall(data_dir, environ=environ)] == [
        f"{APP_ID}.desktop",
        f"{APP_ID}.png",
    ]
    assert sorted(str(p.relative_to(data_home)) for p in data_home.rglob("*")) == [
        "icons",
        "icons/hicolor",
        "icons/hicolor/256x256",
    ]


def test_uninstall_without_a_record_removes_the_entry_by_its_own_names(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_home = tmp_path / "share"
    monkeypatch.setattr(desktop.sys, "platform", "linux")
    monkeypatch.setattr(desktop, "find_command", lambda name="htmxchat": "/opt/bin/htmxchat")
    environ = {"XDG_DATA_HOME": str(data_home)}
    desktop.install(data_dir, environ=environ)
    (data_dir / desktop.RECORD_FILENAME).unlink()  # as an older htmxchat's failed install
    (data_home / "applications" / "other.desktop").write_text("[Desktop Entry]\n")
    assert len(desktop.uninstall(data_dir, environ=environ)) == 3
    assert [p.name for p in data_home.rglob("*") if p.is_file()] == ["other.desktop"]
    with pytest.raises(desktop.DesktopError, match="no htmxchat menu entry"):
        desktop.uninstall(data_dir, environ=environ)
