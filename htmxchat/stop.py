"""`htmxchat stop`: stop the server running for a data dir, as its Quit control does."""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from htmxchat.access import read_token
from htmxchat.instance import RunningServer, find_running_server, pid_alive, read_runtime_file

EXIT_OK, EXIT_FAILURE = 0, 1
STOP_WAIT = 15.0  # replies are saved within a few seconds; the process then exits


def _running(data_dir: Path, server: RunningServer) -> bool:
    # The server removes its runtime file after saving, as the last thing before exiting
    # (its process may linger a moment longer as a zombie of whoever started it).
    current = read_runtime_file(data_dir)
    ours = current is not None and current.instance == server.instance
    return ours and pid_alive(server.pid)


def stop_server(data_dir: Path) -> int:
    """POST /quit (confirmed) to the running instance, wait for it to exit, report."""
    server = find_running_server(data_dir)
    token = read_token(data_dir)
    if server is None or token is None:
        print(f"htmxchat stop: no htmxchat is running for {data_dir}", file=sys.stderr)
        return EXIT_FAILURE
    request = urllib.request.Request(
        server.url.rstrip("/") + "/quit",
        data=b"confirm=1&by=command",  # so the server's log says who stopped it
        method="POST",
        headers={
            "Authorization": f"Bearer {token}",
            "Origin": server.url.rstrip("/"),  # the guard wants our own Origin on changes
            "Accept": "application/json",
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            replies = int(json.loads(response.read()).get("replies", 0))
    except (OSError, ValueError, urllib.error.URLError) as exc:
        print(f"htmxchat stop: the server at {server.url} did not answer: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    deadline = time.monotonic() + STOP_WAIT
    while _running(data_dir, server) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _running(data_dir, server):
        print(
            f"htmxchat stop: asked htmxchat (pid {server.pid}) to stop, but it still runs",
            file=sys.stderr,
        )
        return EXIT_FAILURE
    saved = f"; {replies} reply being written was saved as it was" if replies == 1 else ""
    if replies > 1:
        saved = f"; {replies} replies being written were saved as they were"
    print(f"Stopped htmxchat for {data_dir} (pid {server.pid}){saved}.")
    return EXIT_OK
