"""Limits that keep the app bounded whatever a model server, an import or an upload sends.

One event loop serves every tab, so no single input may make it do unbounded work, hold
unbounded memory or persist something that breaks the next start. Each figure here is
written down, with what it guarantees, in docs/limits.md.
"""

from __future__ import annotations

# -- a model server's reply ------------------------------------------------------------------

MAX_ANSWER_CHARS = 1_000_000
"""Answer plus reasoning text of one reply, in characters (about 250,000 tokens). A reply
that reaches it is ended and says why."""

MAX_STREAM_BYTES = 256 * 1024 * 1024
"""Bytes of one streamed reply after decompression (a gzip bomb inflates to this at most)."""

MAX_IDLE_LINES = 100_000
"""Lines and events of one reply that carry no text (blank lines, comments, empty deltas).
Real servers send a handful, or one keep-alive every few seconds."""

SLICE_BYTES = 8 * 1024
"""The SSE decoder takes a read in slices of this size and lets the loop run between them."""

MAX_REPLY_SECONDS = 3600.0
"""The longest a reply may stream, however slowly its text trickles in."""

MAX_RENDERED_CHARS = 2 * 1024 * 1024
"""A finished message whose formatted HTML would be larger than this (tens of thousands of
formulas expand about 25 times) is shown as plain text instead, with a note: the browser
never has to lay out more than a few megabytes for one message."""

INLINE_SOURCE_CHARS = 64 * 1024
"""A finished answer's Markdown travels with its HTML (for Copy) only up to this size;
a bigger one is fetched when Copy is pressed, so it never goes out twice in one frame."""

RENDER_SECONDS = 20.0
"""The longest one render may take in the render process (markdown/worker.py). A render
that takes longer is stopped (the process is replaced) and its text shown as plain text,
saying why. Ordinary answers, even of a million characters, take a few seconds."""

# -- checkpoints -------------------------------------------------------------------------------

CHECKPOINT_BYTES_PER_SECOND = 256 * 1024
"""A streaming reply is checkpointed at most as often as rewriting it stays under this rate:
every second while it is small, every (size / this) seconds once it is large."""

# -- HTTP ----------------------------------------------------------------------------------------

HEADER_TIMEOUT = 15.0
"""Seconds a connection may take to send a request's headers (and stay idle between
requests) before it is closed."""

MAX_PENDING_UPLOADS = 60
"""Files waiting, unsent, in all conversations together (each conversation has its own,
smaller cap)."""

MAX_UPLOADS_AT_ONCE = 2
"""Uploads read at the same time (each holds up to 101 MiB while it is checked); more get
"try again in a moment"."""
