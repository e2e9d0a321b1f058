"""Launcher plumbing: private files, and settings that load without a bot backend."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from htmxchat.instance import RUNTIME_FILENAME, RunningServer, read_runtime_file, write_runtime_file
from htmxchat.private_file import write_private
from tests.helpers import ROOT


def test_config_is_a_leaf_module() -> None:
    code = "import sys, htmxchat.config; print(sorted(m for m in sys.modules if 'htmxchat' in m))"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "['htmxchat', 'htmxchat.config']"


def test_private_file_replaces_a_wider_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    (tmp_path := tmp_path / "files").mkdir()
    target = tmp_path / "secret"
    target.write_text("old")
    target.chmod(0o644)
    write_private(target, "new")
    assert target.read_text() == "new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["secret"]


def test_private_file_keeps_the_old_content_when_writing_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path := tmp_path / "files").mkdir()
    target = tmp_path / "secret"
    write_private(target, "old")

    def full_disk(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError):
        write_private(target, "new")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["secret"]


def test_runtime_file_is_private_and_round_trips(data_dir: Path) -> None:
    server = RunningServer("http://127.0.0.1:1/", 1, 2, "abc")
    write_runtime_file(data_dir, server)
    path = data_dir / RUNTIME_FILENAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text())["instance"] == "abc"
    assert read_runtime_file(data_dir) == server
