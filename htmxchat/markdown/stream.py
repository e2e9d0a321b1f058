"""Stream one reply's Markdown block by block: each finished block is sent once.

`MarkdownStream.feed` gets each flush's new text and returns operations (`ops.py`). After a
flush only the unfinished part of the text is parsed again, so the cost of a flush follows the
size of what is still open, not of the whole reply. Two kinds of blocks that can grow without
end are streamed in pieces: a top-level list sends each finished item, and an open top-level
code fence sends its text as it comes and is highlighted once, when it closes.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import accumulate, pairwise
from typing import Any

from markdown_it.token import Token

from .ops import (
    Block,
    Done,
    FenceAppend,
    FenceClose,
    FenceOpen,
    ListClose,
    ListLoose,
    ListOpen,
    Op,
    TailAppend,
    TailSet,
)
from .render import BLOCKS, new_env
from .rules import (
    TopBlock,
    closed_fence,
    finished_as_last,
    top_blocks,
    unresolved_label,
    waits_for_math,
)
from .stream_fence import OpenFence
from .stream_list import OpenList

log = logging.getLogger(__name__)
_LISTS = ("bullet_list_open", "ordered_list_open")
# An unfinished text longer than this is committed as it is (see `_force_commit`): parsing
# 16 KiB of table takes about 16 ms, so a flush never holds the loop for long (32 KiB,
# about 33 ms, let a parse stack up with other work to ~100 ms of delay for other tabs).
MAX_OPEN_CHARS = 16 * 1024
# Below this an unfinished text is parsed at every flush that brings a line break.
PARSE_EVERY_CHARS = 4 * 1024

# Committed blocks per chunk on the page (see ops.Block): enough that a 10,000-token answer
# is a few dozen chunks, few enough that a chunk is cheap to lay out again.
CHUNK_BLOCKS = 20


class MarkdownStream:
    """The Markdown of one reply as it is written, turned into operations."""

    def __init__(self) -> None:
        self._pending = ""  # text not yet committed; starts at a line start
        self._refs: dict[str, tuple[str, str]] = {}  # committed reference definitions
        self._done: list[Op] = []  # committed and closed, as blocks (for snapshots)
        self._list: OpenList | None = None
        self._fence: OpenFence | None = None
        self._tail = ""  # the tail as sent
        self._ids = 0
        # The chunk new top-level elements go into on the page, and how many it holds.
        self._chunk = 0
        self._chunk_blocks = 0
        self._finished = False
        self._final = False
        self._waiting = 0  # length of the text at the last parse that finished nothing

    def feed(self, new_text: str) -> list[Op]:
        """Take the text written since the last call; return what changes on the page."""
        if self._finished:
            raise RuntimeError("the stream is finished")
        self._pending += new_text
        ops: list[Op] = []
        # Without a new line break the complete lines are those parsed last time: nothing
        # can finish, only the tail (or an open fence's text) grows.
        if "\n" in new_text or self._fence is not None:
            self._advance(ops, final=False)
        self._sync_tail(ops)
        return ops

    def finish(self) -> list[Op]:
        """The reply is complete: commit everything that is left."""
        if self._finished:
            return []
        ops: list[Op] = []
        self._final = True
        self._advance(ops, final=True)
        self._finished = True
        self._tail = ""
        ops.append(Done())
        return ops

    def snapshot(self) -> list[Op]:
        """The fewest operations that build the current state from an empty body."""
        ops = list(self._done)
        if self._list is not None:
            ops += self._list.rebuilt()
        if self._fence is not None:
            ops.append(FenceOpen(self._fence.fence_id, self._fence.info, self._fence.chunk))
            if self._fence.text:
                ops.append(FenceAppend(self._fence.fence_id, "".join(self._fence.text)))
        if self._tail:
            ops.append(TailSet(self._tail))
        if self._finished:
            ops.append(Done())
        return ops

    # The work

    def _advance(self, ops: list[Op], final: bool) -> None:
        with _no_collection():
            while self._fence_step(ops, final) if self._fence else self._blocks_step(ops, final):
                pass

    def _new_id(self) -> int:
        self._ids += 1
        return self._ids

    def _blocks_step(self, ops: list[Op], final: bool) -> bool:
        """Parse the unfinished text once and commit what is finished. True: parse again
        (a fence opened and streams on its own now, or the list state was repaired)."""
        source = self._pending if final else self._pending[: self._pending.rfind("\n") + 1]
        if not source or (not final and self._plain_items(ops, source)):
            return False
        if not final and len(source) > MAX_OPEN_CHARS:
            self._force_commit(ops, source)
            self._waiting = 0
            return False
        if not final and self._parse_later(source):
            return False
        env = new_env(tuple((k, h, t) for k, (h, t) in self._refs.items()))
        known = set(env["references"])
        tokens = BLOCKS.parse(source, env)
        references: dict[str, Any] = env["references"]
        refs = tuple((label, ref["href"], ref["title"]) for label, ref in references.items())
        lines = source.splitlines(keepends=True)
        offsets = [0, *accumulate(len(line) for line in lines)]
        blocks = top_blocks(tokens)
        if self._list is not None and (
            not blocks or blocks[0].kind not in _LISTS or blocks[0].start_line != 0
        ):
            # Not expected: the text starts with the open list's last item. Close the list
            # and drop that item's text (it is on the page) rather than send it twice.
            log.warning("open list lost its context; closing it")
            ops.append(ListClose(self._list.list_id))
            self._pending = self._pending[self._list.context :]
            self._list = None
            return True
        keep = 0  # the line from which the text stays pending
        go_on = False
        for number, block in enumerate(blocks):
            followed = final or number + 1 < len(blocks)
            if block.kind in _LISTS:
                keep, closed = self._list_step(ops, tokens, block, lines, references, followed)
                if not closed:
                    break
                continue
            if not final and self._holds(tokens, block, lines, references):
                break
            opener = tokens[block.first]
            if not followed and block.kind == "fence" and not closed_fence(lines, opener):
                body = offsets[block.start_line + 1]
                self._open_fence(ops, opener, lines[block.start_line], body)
                keep, go_on = block.start_line, True
                break
            if not followed and not finished_as_last(block, tokens, lines):
                break
            self._commit(ops, Block("".join(lines[block.start_line : block.end_line]), refs))
            keep = block.end_line
        else:
            keep = len(lines) if final else keep
        for label, ref in references.items():
            if label not in known and ref["map"][1] <= keep:
                self._refs[label] = (ref["href"], ref["title"])
        # Nothing finished: a long text is parsed again only once it has grown (_parse_later).
        self._waiting = len(source) if keep == 0 and not go_on else 0
        self._pending = self._pending[offsets[keep] :]
        if self._fence is not None:
            self._fence.moved(offsets[keep])
        return go_on

    def _parse_later(self, source: str) -> bool:
        """Whether to skip this parse: the last one finished nothing, the text is long,
        it has grown by less than a quarter since, and no blank line (which ends blocks)
        came. Parses of one open block then grow geometrically, so streaming it costs
        linear time in all, not a parse of the whole block at every flush."""
        waited = self._waiting
        if waited < PARSE_EVERY_CHARS or len(source) >= waited * 5 // 4:
            return False
        return "\n\n" not in source[waited - 1 :]

    def _force_commit(self, ops: list[Op], source: str) -> None:
        """Commit the complete lines of an unfinished text that grew past MAX_OPEN_CHARS
        (a huge paragraph or table, or blocks held back for a label): parsing it again at
        every flush would make the stream quadratic. The page may show such a block cut in
        two while it streams; the finished answer's render replaces it (docs/limits.md)."""
        refs = tuple((label, href, title) for label, (href, title) in self._refs.items())
        start = 0
        if self._list is not None:  # the text starts with the open list's last item
            start = self._list.context
            close, whole = self._list.closed(refs)
            ops.append(close)
            self._done.append(whole)
            self._list = None
        if source[start:].strip():
            self._commit(ops, Block(source[start:], refs))
        self._pending = self._pending[len(source) :]

    def _place(self) -> tuple[int, bool]:
        """The chunk the next top-level element goes into, and whether it starts that chunk."""
        opens = not self._chunk or self._chunk_blocks >= CHUNK_BLOCKS
        if opens:
            self._chunk, self._chunk_blocks = self._new_id(), 0
        self._chunk_blocks += 1
        return self._chunk, opens

    def _commit(self, ops: list[Op], block: Block) -> None:
        block = Block(block.source, block.refs, *self._place())
        ops.append(block)
        self._done.append(block)

    def _holds(
        self, tokens: list[Token], block: TopBlock, lines: list[str], references: dict[str, Any]
    ) -> bool:
        """A math opener or an unresolved `[label]` keeps the block back (see rules.py)."""
        return waits_for_math(block, lines) or unresolved_label(
            tokens, block.first, block.end, references
        )

    def _plain_items(self, ops: list[Op], source: str) -> bool:
        """An open list whose new lines are all plain items of it (`PLAIN_ITEM`), the common
        case of a long list: commit every item but the last, each ended by the next, without
        parsing. False: anything else, for the parser to judge."""
        open_list = self._list
        lines = open_list.plain_lines(source) if open_list is not None else None
        if open_list is None or lines is None:
            return False
        refs = tuple((label, href, title) for label, (href, title) in self._refs.items())
        ops += [open_list.add(line, refs) for line in lines[:-1]]
        if len(lines) >= 2:
            self._pending = self._pending[open_list.context + sum(map(len, lines[:-2])) :]
            open_list.context = len(lines[-2])
        return True

    def _list_step(
        self,
        ops: list[Op],
        tokens: list[Token],
        block: TopBlock,
        lines: list[str],
        references: dict[str, Any],
        followed: bool,
    ) -> tuple[int, bool]:
        """Commit the finished items of a top-level list. Returns the line from which the
        text stays pending, and whether the list is closed."""
        final = self._final
        refs = tuple((label, ref["href"], ref["title"]) for label, ref in references.items())
        firsts = [
            index
            for index in range(block.first, block.end)
            if tokens[index].type == "list_item_open" and tokens[index].level == 1
        ]
        bounds = [(tokens[index].map or (0, 0))[0] for index in firsts] + [block.end_line]
        sources = ["".join(lines[a:b]) for a, b in pairwise(bounds)]
        item_blocks = [
            TopBlock("list_item_open", first, end, a, b)
            for first, end, a, b in zip(
                firsts, [*firsts[1:], block.end - 1], bounds[:-1], bounds[1:], strict=True
            )
        ]
        open_list = self._list
        if open_list is None:
            if followed and (final or not self._holds(tokens, block, lines, references)):
                self._commit(ops, Block("".join(sources), refs))  # arrived whole: one block
                return block.end_line, True
            if len(sources) < 2 or (
                not final and self._holds(tokens, item_blocks[0], lines, references)
            ):
                return block.start_line, False
            opener = tokens[block.first]
            start = opener.attrGet("start")
            open_list = self._list = OpenList(
                self._new_id(),
                opener.type == "ordered_list_open",
                int(start) if start is not None else None,
            )
            open_list.chunk, opens = self._place()
            ops.append(
                ListOpen(
                    open_list.list_id, open_list.ordered, open_list.start, open_list.chunk, opens
                )
            )
            done = 0
        else:
            done = 1  # the text starts with the last item committed, kept for context
        # Decided on complete lines only; a list never turns tight again.
        loose = any(
            t.type == "paragraph_open" and t.level == 2 and not t.hidden
            for t in tokens[block.first : block.end]
        )
        if loose and not open_list.loose:
            open_list.loose = True
            if open_list.items:
                ops.append(ListLoose(open_list.list_id, tuple(open_list.items), refs))
        upto = done
        for index in range(done, len(sources) if followed else len(sources) - 1):
            if not final and self._holds(tokens, item_blocks[index], lines, references):
                break
            ops.append(open_list.add(sources[index], refs))
            upto = index + 1
        if followed and upto == len(sources):
            close, whole = open_list.closed(refs)
            ops.append(close)
            self._done.append(whole)
            self._list = None
            return block.end_line, True
        open_list.context = len(sources[upto - 1])
        return bounds[upto - 1], False

    def _open_fence(self, ops: list[Op], token: Token, opener: str, body: int) -> None:
        """Stream a top-level fence that has not closed yet as plain text."""
        fence = self._fence = OpenFence.opened(self._new_id(), token, opener, body)
        fence.chunk, opens = self._place()
        ops.append(FenceOpen(fence.fence_id, fence.info, fence.chunk, opens))

    def _fence_step(self, ops: list[Op], final: bool) -> bool:
        """Look only at the new lines of an open fence: closed, or more text to send."""
        fence = self._fence
        assert fence is not None
        text = self._pending
        closed_at = fence.closing(text, final)
        if closed_at is not None:
            self._fence = None
            self._pending = text[closed_at:]
            ops.append(FenceClose(fence.fence_id, text[:closed_at]))
            self._done.append(Block(text[:closed_at], chunk=fence.chunk))
            return True
        chunk = fence.take_new(text)
        if chunk:
            ops.append(FenceAppend(fence.fence_id, chunk))
        return False

    def _sync_tail(self, ops: list[Op]) -> None:
        """Send the unfinished text: only what was added when possible, else all of it."""
        if self._fence is not None:
            tail = ""
        else:
            tail = self._pending[self._list.context if self._list else 0 :].lstrip("\n")
        if tail == self._tail:
            return
        if self._tail and tail.startswith(self._tail):
            ops.append(TailAppend(tail[len(self._tail) :]))
        else:
            ops.append(TailSet(tail))
        self._tail = tail


@contextmanager
def _no_collection() -> Iterator[None]:
    """Keep the cyclic garbage collector out of a parse. A parse makes thousands of tokens
    that live until the step ends and are then freed by reference counting (they form no
    cycles); with the collector on, they are promoted to the oldest generation mid-parse,
    which soon triggers a full collection of the whole heap: 25-40 ms on the event loop,
    nearly every parse of a long open block."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
