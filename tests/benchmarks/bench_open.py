"""How long a conversation takes to open, for 10 and for 10,000 messages.

Run from the repository root:

    python -m tests.benchmarks.bench_open            # server-side timings (HTTP page, socket sync)
    python -m tests.benchmarks.bench_open --browser  # plus page-open time in Chromium

The full run is not part of the test suite (the numbers depend on the machine); a smoke run
with small sizes is (`tests/test_benchmark_smoke.py`), so the benchmark cannot rot. A long
conversation should open about as fast as a short one: only the newest messages are rendered.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from aiohttp.test_utils import TestClient, TestServer

from htmxchat.access import load_or_create_token
from htmxchat.app import create_app
from htmxchat.config import Settings
from htmxchat.ids import new_id
from htmxchat.models import Conversation, Message
from htmxchat.store import DB_FILENAME, ChatStore

SIZES = (10, 10_000)
RUNS = 15


async def seed(store: ChatStore, count: int) -> str:
    """One conversation of `count` messages of ordinary length, written in one transaction."""
    now = time.time() - count
    conversation = Conversation(new_id(), f"{count} messages", now, now + count)
    messages = [
        Message(
            new_id(),
            conversation.id,
            "user" if n % 2 == 0 else "assistant",
            f"Message {n}. " + "Some ordinary words to make it a realistic length. " * 4,
            created_at=now + n,
        )
        for n in range(count)
    ]
    return (await store.import_conversation(conversation, messages)).id


async def server_side(
    data_dir: Path, sizes: tuple[int, ...] = SIZES, runs: int = RUNS
) -> dict[int, str]:
    """Time the HTTP page and the socket's snapshot per size; returns the conversation ids."""
    store = await ChatStore.open(data_dir / DB_FILENAME)
    ids = {size: await seed(store, size) for size in sizes}
    app = create_app(Settings(data_dir=data_dir, open_browser=False), store=store)
    server = TestServer(app)
    await server.start_server()
    # Log in as the browser does (token for cookie), and send the page's Origin.
    client = TestClient(server, headers={"Origin": f"http://127.0.0.1:{server.port}"})
    await client.start_server()
    await client.get(f"/?token={load_or_create_token(data_dir)}", allow_redirects=False)
    try:
        for size, conversation in ids.items():
            page_ms, sync_ms, page_bytes = [], [], 0
            for _ in range(runs):
                start = time.perf_counter()
                response = await client.get(f"/c/{conversation}")
                page_bytes = len(await response.read())
                page_ms.append((time.perf_counter() - start) * 1000)
                ws = await client.ws_connect("/ws")
                start = time.perf_counter()
                await ws.send_json({"action": "sync", "conversation": conversation})
                snapshot = (await ws.receive()).data
                if not snapshot.startswith("<!--frame kind=snapshot "):
                    raise RuntimeError(f"the socket answered a sync with {snapshot[:200]!r}")
                sync_ms.append((time.perf_counter() - start) * 1000)
                await ws.close()
            print(
                f"{size:>6} messages: page {statistics.median(page_ms):6.1f} ms "
                f"({page_bytes / 1024:.0f} KiB), socket sync {statistics.median(sync_ms):6.1f} ms"
                f"  (median of {runs})"
            )
    finally:
        await client.close()
        await store.close()
    return ids


def browser_side(data_dir: Path, ids: dict[int, str], runs: int = 5) -> None:
    """Time opening each conversation in Chromium until connected and shown."""
    from playwright.sync_api import sync_playwright

    from tests.conftest import CHROMIUM_ARGS
    from tests.helpers import ServerProcess

    server = ServerProcess(data_dir, "--port", "0")
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
            )
            page = browser.new_page(viewport={"width": 1100, "height": 760})
            for size, conversation in ids.items():
                times = []
                for _ in range(runs):
                    start = time.perf_counter()
                    page.goto(f"{server.base_url}c/{conversation}?token={server.token}")
                    page.wait_for_selector('#connection[data-state="open"]')
                    page.wait_for_function(
                        "() => document.querySelectorAll('#messages .msg').length"
                    )
                    times.append((time.perf_counter() - start) * 1000)
                shown = page.eval_on_selector_all("#messages .msg", "e => e.length")
                print(
                    f"{size:>6} messages: browser open to connected and synced "
                    f"{statistics.median(times):6.1f} ms ({shown} messages rendered)"
                )
            browser.close()
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--browser", action="store_true", help="also time Chromium")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ids = asyncio.run(server_side(Path(tmp)))
        if args.browser:
            browser_side(Path(tmp), ids)


if __name__ == "__main__":
    main()
