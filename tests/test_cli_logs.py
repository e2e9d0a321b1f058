"""`htmxchat logs / export / import`: in-process, and once against a running server."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from htmxchat.cli import main
from htmxchat.store import DB_FILENAME
from tests.helpers import ROOT, ServerProcess, seed_conversation


def make_conversation(data_dir: Path, texts: list[str]) -> str:
    """A conversation with alternating user/assistant messages, written synchronously."""
    return seed_conversation(data_dir, texts)


def test_logs_lists_and_prints(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first = make_conversation(data_dir, ["Plan a trip to Rome", "Sure: day one…"])
    second = make_conversation(data_dir, ["What is <b>bold</b>?", "Markup."])
    assert main(["logs"]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in listing] == [second, first]
    assert "Plan a trip to Rome" in listing[1] and "2 msgs" in listing[1]

    assert main(["logs", first]) == 0
    markdown = capsys.readouterr().out
    assert markdown.startswith("# Plan a trip to Rome\n")
    assert "## You · " in markdown and "## Demo bot · " in markdown
    assert markdown.index("Plan a trip") < markdown.index("Sure: day one…")

    assert main(["logs", second, "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["conversation"]["id"] == second
    assert [m["content"] for m in document["messages"]] == ["What is <b>bold</b>?", "Markup."]

    assert main(["logs", "--json"]) == 0
    assert [row["id"] for row in json.loads(capsys.readouterr().out)] == [second, first]


def test_unknown_id_and_empty_data_dir(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fresh = tmp_path / "never-used"
    assert main(["logs", "--data-dir", str(fresh)]) == 0
    assert capsys.readouterr().out == "No conversations yet.\n"
    assert main(["logs", "--json", "--data-dir", str(fresh)]) == 0
    assert json.loads(capsys.readouterr().out) == []  # a script reading it works from day one
    assert not fresh.exists()  # reading the list created nothing
    assert main(["logs", "someid", "--data-dir", str(fresh)]) == 1
    assert "no saved chats" in capsys.readouterr().err
    make_conversation(data_dir, ["hi"])
    assert main(["logs", "nosuchconversation0"]) == 1
    assert "no conversation has the id" in capsys.readouterr().err


def test_export_then_import_round_trips(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    original = make_conversation(data_dir, ["question one", "answer one", "question two"])
    exported = tmp_path / "out.json"
    assert main(["export", original, "-o", str(exported)]) == 0
    # an existing file is only replaced on purpose
    assert main(["export", original, "-o", str(exported)]) == 1
    assert "already exists" in capsys.readouterr().err
    assert main(["export", original, "-o", str(exported), "--force"]) == 0
    markdown = tmp_path / "out.md"
    assert main(["export", original, "-o", str(markdown)]) == 0
    assert markdown.read_text().startswith("# question one")

    # importing into the same data dir: it is there already, so nothing is added...
    capsys.readouterr()
    assert main(["import", str(exported)]) == 0
    assert capsys.readouterr().out == (
        f"Skipped {exported}: it is already in your chats as conversation {original} "
        "(question one). Add --copy to import it again as a copy.\n"
    )
    assert main(["logs", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 1
    # ...unless a copy is asked for: the ids are taken, so new ones are made
    assert main(["import", "--copy", str(exported)]) == 0
    out = capsys.readouterr().out
    assert "new id" in out
    copy_id = out.split("conversation ")[1].split()[0]
    assert copy_id != original

    # into another data dir the ids are kept
    other = tmp_path / "other"
    assert main(["--data-dir", str(other), "import", str(exported)]) == 0
    assert f"conversation {original}" in capsys.readouterr().out
    assert main(["logs", "--data-dir", str(other), original, "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    before = json.loads(exported.read_text())
    assert again == before


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("not json", "not valid JSON"),
        ("[]", "must hold a JSON object"),
        ('{"format": "other"}', "not an htmxchat export"),
        ('{"format": "htmxchat-conversation", "version": 99}', "version 99"),
        (
            '{"format": "htmxchat-conversation", "version": 1, "conversation": {}, '
            '"messages": [{"role": "wizard", "content": "x"}]}',
            "messages[0].role must be one of",
        ),
        (
            '{"format": "htmxchat-conversation", "version": 1, "conversation": {}, '
            '"messages": [{"role": "user", "content": 5}]}',
            "messages[0].content must be text",
        ),
        (
            '{"format": "htmxchat-conversation", "version": 1, '
            '"conversation": {"updated_at": Infinity}, "messages": []}',
            "conversation.updated_at must be a number from 0",
        ),
        (
            '{"format": "htmxchat-conversation", "version": 1, "conversation": {}, '
            '"messages": [{"role": "user", "content": "x", "piece_count": 1e300}]}',
            "piece_count must be a number from 0",
        ),
        ("[" * 100_000, "nests JSON too deeply"),
    ],
    ids=["junk", "array", "format", "version", "role", "content", "inf", "huge", "deep"],
)
def test_import_rejects_bad_files_clearly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, expected: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    assert main(["import", str(path)]) == 1
    assert expected in capsys.readouterr().err
    assert main(["import", str(tmp_path / "missing.json")]) == 1
    assert "cannot read" in capsys.readouterr().err
    assert not (tmp_path / "data" / DB_FILENAME).exists(), "a bad file creates no chat log"


def test_import_keeps_text_with_lone_surrogates_readable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "odd.json"
    path.write_text(
        '{"format": "htmxchat-conversation", "version": 1, "conversation": {}, '
        '"messages": [{"role": "user", "content": "half \\ud800 pair"}]}'
    )
    assert main(["import", str(path)]) == 0
    conversation = capsys.readouterr().out.split("conversation ")[1].split()[0]
    assert main(["logs", conversation]) == 0
    assert "half \ufffd pair" in capsys.readouterr().out


def test_commands_work_while_the_server_runs(data_dir: Path, tmp_path: Path) -> None:
    conversation = make_conversation(data_dir, ["saved before the server started"])
    server = ServerProcess(data_dir, "--port", "0")
    try:
        command = [sys.executable, "-m", "htmxchat", "--data-dir", str(data_dir)]
        listing = subprocess.run(
            [*command, "logs"], cwd=ROOT, capture_output=True, text=True, timeout=30
        )
        assert listing.returncode == 0, listing.stderr
        assert conversation in listing.stdout
        export = tmp_path / "live.json"
        result = subprocess.run(
            [*command, "export", conversation, "-o", str(export)],
            cwd=ROOT, capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        result = subprocess.run(
            [*command, "import", str(export)], cwd=ROOT, capture_output=True, text=True, timeout=30
        )
        assert result.returncode == 0, result.stderr
        imported = result.stdout.split("conversation ")[1].split()[0]
        # the running server sees the imported conversation at once
        request = urllib.request.Request(f"{server.base_url}c/{imported}", headers=server.headers)
        with urllib.request.urlopen(request) as response:
            assert "saved before the server started" in response.read().decode()
    finally:
        code, _, err = server.stop()
    assert code == 0, err


def test_only_a_leading_command_word_selects_a_subcommand() -> None:
    from htmxchat.commands import is_command

    assert is_command(["logs"]) and is_command(["--data-dir", "d", "export", "x", "-o", "f"])
    assert is_command(["--data-dir=d", "import", "f"])
    assert not is_command([]) and not is_command(["--port", "0"])
    assert not is_command(["--data-dir", "logs"]) and not is_command(["--host", "logs"])
