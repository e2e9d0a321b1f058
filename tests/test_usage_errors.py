"""What a person sees when they mistype: a usage error naming the right help, never a
traceback; an address without a scheme is taken as http://."""

from __future__ import annotations

from pathlib import Path

import pytest

from htmxchat.cli import build_parser, main
from htmxchat.config import SettingsError, resolve_settings
from htmxchat.export import to_json
from htmxchat.ids import new_id
from htmxchat.models import Conversation
from tests.helpers import run_cli


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("127.0.0.1:1234/v1", "http://127.0.0.1:1234/v1"),  # as LM Studio shows it
        ("localhost:8080", "http://localhost:8080"),
        (" https://example.com/v1 ", "https://example.com/v1"),
    ],
)
def test_a_base_url_without_scheme_is_http(typed: str, expected: str) -> None:
    args = build_parser().parse_args(["--bot", "openai", "--base-url", typed])
    assert resolve_settings(args, {}).base_url == expected


@pytest.mark.parametrize("typed", ["ftp://example.com", "http://", "http://a b/v1", " "])
def test_an_unusable_base_url_is_refused_in_words(typed: str) -> None:
    args = build_parser().parse_args(["--base-url", typed])
    expected = (
        f"--base-url must be a server's address such as http://127.0.0.1:11434/v1, not {typed!r}"
    )
    with pytest.raises(SettingsError) as info:
        resolve_settings(args, {})
    assert str(info.value) == expected


def test_an_unusable_base_url_is_a_short_usage_error(tmp_path: Path) -> None:
    result = run_cli("--data-dir", str(tmp_path / "d"), "--base-url", "ftp://x", timeout=60)
    assert result.returncode == 2
    assert result.stderr.splitlines()[-2:] == [
        "htmxchat: error: --base-url must be a server's address such as "
        "http://127.0.0.1:11434/v1, not 'ftp://x'",
        "(see htmxchat -h)",
    ]
    assert not (tmp_path / "d").exists()


def test_a_schemeless_base_url_starts_without_a_traceback(tmp_path: Path) -> None:
    # Nothing listens on port 9 (discard): the server starts, says the server is not
    # reachable, and stops by itself once idle; never a traceback.
    result = run_cli(
        "--data-dir",
        str(tmp_path / "d"),
        "--base-url",
        "127.0.0.1:9/v1",
        "--model",
        "m",
        "--idle-exit",
        "0.01",
    )
    assert "Traceback" not in result.stderr, result.stderr
    assert "http://127.0.0.1:9/v1" in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("words", "command"),
    [
        (["--bogus"], "htmxchat"),
        (["--port", "x"], "htmxchat"),
        (["logs", "--bogus"], "htmxchat logs"),
        (["export", "abc"], "htmxchat export"),
        (["import"], "htmxchat import"),
        (["desktop", "instal"], "htmxchat desktop"),
        (["--data-dir", "/tmp", "stop", "now"], "htmxchat stop"),
    ],
)
def test_usage_errors_name_the_help_of_the_command_used(
    words: list[str], command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(words)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"{command}: error: " in err
    assert err.endswith(f"(see {command} -h)\n")
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "words", [["logs"], ["logs", "--json"], ["import", "x.json"], ["desktop", "install"], ["stop"]]
)
def test_a_data_dir_that_is_a_file_is_said_in_one_line(
    words: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    not_a_dir = tmp_path / "chats"
    not_a_dir.write_text("a file")
    assert main(["--data-dir", str(not_a_dir), *words]) == 1
    assert capsys.readouterr().err == (
        f"htmxchat {words[0]}: the data dir {not_a_dir} is a file, not a directory; "
        "choose another with --data-dir\n"
    )


def test_a_data_dir_that_cannot_be_made_is_said_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "file").write_text("a file")
    document = tmp_path / "chat.json"
    document.write_text(to_json(Conversation(new_id(), "t", 1.0, 1.0), []))
    data_dir = tmp_path / "file" / "chats"  # its parent is a file
    assert main(["--data-dir", str(data_dir), "import", str(document)]) == 1
    assert capsys.readouterr().err == (
        f"htmxchat import: cannot use the data dir {data_dir} (Not a directory); "
        "choose another with --data-dir\n"
    )
