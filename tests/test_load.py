"""Scaled-down load and leak checks (the full run: `python -m tests.benchmarks.ws_load`)."""

from __future__ import annotations

from pathlib import Path

from tests.benchmarks.ws_load import cycles, load


async def test_50_clients_chat_at_once_and_every_reply_is_complete_and_stored(
    data_dir: Path,
) -> None:
    report = await load(50, word_delay=0.01, data_dir=data_dir, seconds=30)
    assert report.errors == []
    assert report.completed == report.stored_ok == 50
    assert report.words > 50
    # nothing left behind once the tabs are gone, and memory stays modest
    assert report.tasks_after <= report.tasks_before
    assert report.fds_after <= report.fds_before
    assert report.rss_peak_mib - report.rss_before_mib < 64


async def test_100_connect_disconnect_cycles_leave_nothing_behind(data_dir: Path) -> None:
    report = await cycles(100, data_dir=data_dir)
    assert report.errors == []
    assert report.tasks_after <= report.tasks_before
    assert report.fds_after <= report.fds_before
    assert report.sockets_after == 0 and report.live_conversations_after == 0
