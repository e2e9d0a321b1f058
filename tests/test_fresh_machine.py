"""A new user's first steps on an account where htmxchat never ran: an empty home, no data,
config, log or cache dir. Every command works, and what stays behind is what htmxchat says
it keeps (the chats and their token in the data dir, the log in the log dir)."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from htmxchat.export import to_json
from htmxchat.ids import new_id
from htmxchat.models import Conversation, Message
from tests.helpers import ROOT


def fresh_environment(home: Path) -> dict[str, str]:
    """The test run's environment with a new HOME and nothing pointing elsewhere."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("HTMXCHAT_", "XDG_")) and name not in ("OPENAI_API_KEY",)
    }
    # The demo bot and no local servers: a model server on this machine changes nothing.
    env.update(HOME=str(home), HTMXCHAT_BOT="demo", HTMXCHAT_LOCAL_SERVERS="off")
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def files_under(home: Path) -> list[str]:
    return sorted(str(p.relative_to(home)) for p in home.rglob("*") if not p.is_dir())


def test_a_fresh_account_from_install_to_uninstall(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = fresh_environment(home)
    data = home / ".local/share/htmxchat"
    log = home / ".local/state/htmxchat/log/htmxchat.log"

    def htmxchat(*words: str, code: int = 0) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "htmxchat", *words],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == code, (words, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr, result.stderr
        return result

    # Looking around creates nothing.
    version = htmxchat("--version").stdout
    assert f"chats: {data}\n" in version and f"log: {log}" in version
    assert htmxchat("logs").stdout == "No conversations yet.\n"
    assert json.loads(htmxchat("logs", "--json").stdout) == []
    missing = htmxchat("export", "nosuchid", "-o", str(tmp_path / "none.md"), code=1)
    assert missing.stderr == f"htmxchat export: there are no saved chats in {data} yet\n"
    assert files_under(home) == [] and list(home.iterdir()) == []

    # The menu entry, on an account with no ~/.local at all.
    installed = htmxchat("desktop", "install").stdout
    entry = home / ".local/share/applications/io.github.htmxchat.htmxchat.desktop"
    assert f"wrote {entry}\n" in installed and entry.is_file()

    # A conversation from elsewhere comes in, is listed and goes out again as Markdown.
    conversation = Conversation(new_id(), "Hello from elsewhere", time.time(), time.time())
    messages = [
        Message(new_id(), conversation.id, "user", "Hello?", created_at=time.time()),
        Message(new_id(), conversation.id, "assistant", "# Hi\n\nThere.", model="demo"),
    ]
    document = tmp_path / "chat.json"
    document.write_text(to_json(conversation, messages))
    imported = htmxchat("import", str(document)).stdout
    assert imported == f"Imported 2 messages as conversation {conversation.id}\n"
    assert "Skipped" in htmxchat("import", str(document)).stdout
    assert [c["id"] for c in json.loads(htmxchat("logs", "--json").stdout)] == [conversation.id]
    markdown = tmp_path / "chat.md"
    htmxchat("export", conversation.id, "-o", str(markdown))
    assert markdown.read_text().startswith("# Hello from elsewhere\n")

    # Start it, open the page, stop it from another terminal.
    server = subprocess.Popen(
        [sys.executable, "-m", "htmxchat", "--no-browser", "--port", "0"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        url = ""
        while not url:
            line = server.stdout.readline()
            assert line, server.stderr.read() if server.stderr else "no output"
            if re.fullmatch(r"http://\S+\?token=[\w-]+\n", line):
                url = line.strip()
        base, _, token = url.partition("?token=")
        request = urllib.request.Request(base, headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request, timeout=30) as response:
            assert "Hello from elsewhere" in response.read().decode()
        stopped = htmxchat("stop").stdout
        assert stopped.startswith(f"Stopped htmxchat for {data}")
        assert server.wait(timeout=30) == 0
    finally:
        if server.poll() is None:
            server.kill()
        server.communicate(timeout=10)

    # The menu entry goes, and with it everything install made.
    removed = htmxchat("desktop", "uninstall").stdout
    assert f"removed {entry}\n" in removed and not entry.exists()
    assert not (home / ".local/share/applications").exists()
    assert not (home / ".local/share/icons").exists()

    # What is left is what htmxchat says it keeps: the chats, their access token, the lock
    # file, the log and the compiled templates, each named in the README.
    cached = home / ".cache/htmxchat/templates"
    assert all(p.name.endswith(".cache") for p in cached.iterdir())
    assert stat.S_IMODE(cached.stat().st_mode) == 0o700
    left = [f for f in files_under(home) if not f.startswith(".cache/htmxchat/templates/")]
    assert left == [
        ".local/share/htmxchat/chats.sqlite3",
        ".local/share/htmxchat/htmxchat.lock",
        ".local/share/htmxchat/token",
        ".local/state/htmxchat/log/htmxchat.log",
    ]
    assert sorted(p.name for p in home.iterdir()) == [".cache", ".local"]  # no config dir
    assert sorted(p.name for p in (home / ".local").iterdir()) == ["share", "state"]
    assert [p.name for p in (home / ".local/share").iterdir()] == ["htmxchat"]
    readme = (ROOT / "README.md").read_text()
    kept = readme[readme.index("## Where chats are saved") : readme.index("## Security")]
    assert all(f"`{Path(name).name}`" in kept for name in left)
