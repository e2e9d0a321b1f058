"""Large renders in a separate process, so they never hold up the event loop.

Rendering is pure Python: in a thread it still competes with the event loop for the GIL
(and its garbage collections pause the loop too), so a costly answer would slow down every
other tab while it renders. Large renders (`offload.py` decides which) go to one render
process instead, one at a time; their HTML is put into the cache the templates read.

The process is started at the first large render, not with the app, and stopped when the
app stops. A render that takes longer than `RENDER_SECONDS` is ended by replacing the
process: its text is shown as plain text, saying why. If the process dies, the next render
starts another; if it cannot be started at all, renders fall back to a thread (logged).
It is a plain `python -c` child (multiprocessing's "spawn" would run the app's main script
again in it), talking over a private socket pair.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

from htmxchat.limits import RENDER_SECONDS

from .jobs import RenderJob

if TYPE_CHECKING:
    import subprocess
    from multiprocessing.connection import Connection

log = logging.getLogger(__name__)

# The child inherits its end of the socket pair as a file descriptor, and is made nicer
# (POSIX both): elsewhere (Windows) large renders stay in a thread, as they were.
POSIX = os.name == "posix"
START_SECONDS = 30.0  # for the process to import the renderer and say it is ready
RETRY_START_SECONDS = 60.0  # after a failed start, renders use a thread this long
MAX_QUEUED = 64  # renders waiting for the process; more go to a thread


class StartError(Exception):
    """The render process did not start."""


class RenderWorker:
    """One render process, started when first needed, fed one job at a time by one thread."""

    def __init__(self) -> None:
        self.time_limit = RENDER_SECONDS
        self._lock = threading.Lock()  # guards the three below
        self._executor: ThreadPoolExecutor | None = None
        self._queued: dict[RenderJob, Future[bool]] = {}
        self._generation = 0  # bumped by stop(): jobs from before then are not run
        # Only the executor's thread touches these (stop() only signals the process).
        self._process: subprocess.Popen[bytes] | None = None
        self._conn: Connection | None = None
        self._failed_at = float("-inf")

    @property
    def pid(self) -> int | None:
        """The render process's id, while there is one."""
        process = self._process
        return process.pid if process is not None else None

    async def render(self, jobs: Sequence[RenderJob]) -> list[RenderJob]:
        """Render `jobs` in the process, their HTML into the caches. Returns the jobs it
        did not take (no process, or too many waiting), for the caller to render in a
        thread. A job already waiting (another tab opening the same answer) is shared."""
        waiting: list[tuple[RenderJob, Future[bool]]] = []
        left: list[RenderJob] = []
        with self._lock:
            for job in jobs:
                future = self._queued.get(job)
                if future is None or future.done():
                    if len(self._queued) >= MAX_QUEUED:
                        left.append(job)
                        continue
                    if self._executor is None:
                        self._executor = ThreadPoolExecutor(1, thread_name_prefix="render")
                    future = self._executor.submit(self._render_one, job, self._generation)
                    self._queued[job] = future
                waiting.append((job, future))
        for job, future in waiting:
            # shield: a page closed while waiting must not cancel a render others share
            if not await asyncio.shield(asyncio.wrap_future(future)):
                left.append(job)
        return left

    async def stop(self) -> None:
        """End the process (a render in progress at once) and reap it: no process is left."""
        with self._lock:
            self._generation += 1
            executor, self._executor = self._executor, None
        self._failed_at = float("-inf")  # the next app tries to start one again
        if executor is None:
            return
        process = self._process
        if process is not None:
            process.kill()  # the job in flight sees the end of its socket and returns
        await asyncio.wrap_future(executor.submit(self._discard))
        executor.shutdown(wait=False)

    # In the executor's thread

    def _render_one(self, job: RenderJob, generation: int) -> bool:
        """Render one job in the process. False: not rendered (the caller uses a thread)."""
        try:
            # Another page may have had it rendered since this one looked.
            return job.cached() or self._in_process(job, generation)
        finally:
            with self._lock:
                self._queued.pop(job, None)

    def _in_process(self, job: RenderJob, generation: int) -> bool:
        for _attempt in range(2):  # a process that died is replaced once
            conn = self._connection(generation)
            if conn is None:
                return False
            try:
                conn.send(job)
                if not conn.poll(self.time_limit):
                    log.warning("a render took over %g s: ending it", self.time_limit)
                    self._discard()
                    job.remember(job.plain(self._too_long(job)))
                    return True
                ok, html = conn.recv()
            except (EOFError, OSError) as exc:
                self._discard()
                if generation != self._generation:
                    return False  # stopped
                log.warning("the render process ended unexpectedly (%r)", exc)
                continue
            if not ok:
                log.error("rendering failed in the render process: %s", html)
                html = job.plain(f"{_what(job)} could not be formatted (an error in the formatter)")
            job.remember(html)
            return True
        job.remember(
            job.plain(f"{_what(job)} could not be formatted (the formatter stopped twice)")
        )
        return True

    def _too_long(self, job: RenderJob) -> str:
        return f"{_what(job)} took more than {self.time_limit:g} seconds to format"

    def _connection(self, generation: int) -> Connection | None:
        """The live process's socket, starting a process if there is none."""
        if generation != self._generation:
            return None
        if self._process is not None and self._process.poll() is not None:
            self._discard()  # died while idle
        if self._conn is not None:
            return self._conn
        if not POSIX or time.monotonic() - self._failed_at < RETRY_START_SECONDS:
            return None
        try:
            return self._start()
        except Exception as exc:  # whatever stops it starting, a thread renders instead
            self._discard()
            self._failed_at = time.monotonic()
            log.warning(
                "could not start the render process (%r); large Markdown is rendered in a "
                "thread for the next %g s",
                exc,
                RETRY_START_SECONDS,
            )
            return None

    def _start(self) -> Connection:
        import socket
        import subprocess
        from multiprocessing.connection import Connection

        ours, theirs = socket.socketpair()
        try:
            # The app's own import path, as multiprocessing's "spawn" passes it: the same
            # htmxchat, installed or run from a source tree.
            self._process = subprocess.Popen(
                [sys.executable, "-c", _CHILD, str(theirs.fileno()), json.dumps(sys.path)],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
            )
        finally:
            theirs.close()
        conn = self._conn = Connection(ours.detach())
        if not conn.poll(START_SECONDS):
            raise StartError(f"it did not say it was ready within {START_SECONDS:g} s")
        conn.recv()  # "ready" (EOFError: it exited while importing)
        return conn

    def _discard(self) -> None:
        """Kill and reap the process, if any (no zombie is left)."""
        process, conn = self._process, self._conn
        self._process = self._conn = None
        if conn is not None:
            conn.close()
        if process is not None:
            process.kill()  # no-op if it has exited
            process.wait()


def _what(job: RenderJob) -> str:
    return "This answer" if job.kind == "markdown" else "This part"


# Renders are background work: on a busy machine the app's own process (its event loop)
# gets the CPU first. Set before the renderer is imported, which is work too.
NICENESS = 5
_CHILD = (
    f"import json, os, sys; os.nice({NICENESS}); sys.path[:] = json.loads(sys.argv[2]); "
    "from htmxchat.markdown.worker import serve; serve(int(sys.argv[1]))"
)


WORKER = RenderWorker()
"""The one render process of this app (rendered HTML is cached process-wide too)."""


def serve(fd: int) -> None:
    """The render process: render each job it is sent, until the app closes the socket."""
    from multiprocessing.connection import Connection

    from .render import clear_caches

    # Ctrl+C in a terminal reaches the whole process group: the app stops us itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    conn = Connection(fd)
    conn.send(("ready", os.getpid()))
    while True:
        try:
            job: RenderJob = conn.recv()
        except EOFError:
            return
        try:
            html = str(job.run())
        except Exception as exc:  # a formatter bug: report it, stay up for the next job
            conn.send((False, f"{type(exc).__name__}: {exc}"))
        else:
            conn.send((True, html))
        finally:
            clear_caches()  # the app caches the result; a second copy here is only memory
