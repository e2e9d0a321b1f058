"""Streaming Markdown: for any text and any chunking, the page ends as the full render."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from htmxchat.markdown.html import render_ops, render_state
from htmxchat.markdown.ops import Block, Done, FenceAppend, FenceClose, ListItem, ListLoose, Op
from htmxchat.markdown.render import render_markdown
from htmxchat.markdown.stream import CHUNK_BLOCKS, MarkdownStream
from tests.oob_dom import Page, parse, serialise, unchunked

TARGET = "m-T-body"
EXAMPLES = int(os.environ.get("HTMXCHAT_MD_EXAMPLES", "150"))

word = st.sampled_from(
    ["alpha", "beta", "*em*", "**bold**", "~~gone~~", "`x[i]`", "$x^2$", r"\(y\)",
     "[site](https://e.com)", "[t][r1]", "[r2]", "www.e.org", "2", "#", "a|b"]
)  # fmt: skip
line = st.lists(word, min_size=1, max_size=5).map(" ".join)
text_lines = st.lists(line, min_size=1, max_size=3).map("\n".join)


def _item(marker: str) -> st.SearchStrategy[str]:
    body = st.one_of(
        line,
        line.map(lambda s: f"[ ] {s}"),
        line.map(lambda s: f"[x] {s}"),
        st.tuples(line, line).map(lambda t: f"{t[0]}\n  - {t[1]}\n  - {t[1]}"),
        line.map(lambda s: f"{s}\n  ```\n  code {s}\n  ```"),
        st.tuples(line, line).map(lambda t: f"{t[0]}\n\n  {t[1]}"),
    )
    return body.map(lambda b: f"{marker} {b}")


def _list(ordered: bool) -> st.SearchStrategy[str]:
    marker = st.sampled_from(["1.", "3.", "2)"] if ordered else ["-", "*", "+"])
    return marker.flatmap(
        lambda m: st.tuples(
            st.lists(_item(m), min_size=1, max_size=5), st.sampled_from(["\n", "\n\n"])
        ).map(lambda t: t[1].join(t[0]))
    )


fence = st.tuples(
    st.sampled_from(["```", "~~~", "````"]),
    st.sampled_from(["", "python", "js", "nosuchlang"]),
    st.lists(st.sampled_from(["x = 1", "  if a < b:", "", "print('<b>')", "``", "~~"]), max_size=5),
).map(lambda t: f"{t[0]}{t[1]}\n" + "".join(f"{s}\n" for s in t[2]) + t[0])

block = st.one_of(
    text_lines,
    line.map(lambda s: f"# {s}"),
    line.map(lambda s: f"### {s} ###"),
    st.tuples(line, st.sampled_from(["===", "---", "-"])).map("\n".join),
    _list(False),
    _list(True),
    fence,
    st.just("    indented code\n    more < code"),
    st.just("| a | b |\n|---|:-:|\n| 1 | $x$ |\n| **2** | [t][r1] |"),
    text_lines.map(lambda s: "> " + s.replace("\n", "\n> ")),
    st.sampled_from(["$$\nx^2 + y\n$$", "\\[\na+b\n\\]", "$$ z_1 $$", "$$\n\\frac{1\n$$"]),
    st.sampled_from(["[r1]: https://e.com/1", '[r2]: https://e.com/2 "Two"']),
    st.sampled_from(["---", "***", "- - -"]),
    st.just("$$\nnot closed"),
)
document = st.tuples(
    st.lists(st.tuples(block, st.sampled_from(["\n\n", "\n\n", "\n", "\n\n\n"])), max_size=8),
    st.sampled_from(["", "\n"]),
).map(lambda t: "".join(b + sep for b, sep in t[0]).rstrip("\n") + t[1])


def _cuts(text: str, sizes: list[int]) -> list[str]:
    chunks, at, index = [], 0, 0
    while at < len(text):
        size = sizes[index % len(sizes)] if sizes else 1
        chunks.append(text[at : at + size])
        at, index = at + size, index + 1
    return chunks


def _page(ops: list[Op] | None = None) -> Page:
    return Page(f'<div id="{TARGET}">{render_state(TARGET, ops or [])}</div>')


def _body(page: Page) -> str:
    target = page.find(TARGET)
    assert target is not None
    return serialise(unchunked(target.children), drop_ids=f"{TARGET}-")


def _committed(ops: list[Op]) -> int:
    return sum(len(op.source) for op in ops if isinstance(op, Block | ListItem | FenceClose))


def check_stream(text: str, chunks: list[str], snapshot_at: int) -> None:
    stream = MarkdownStream()
    page = _page()
    late: Page | None = None
    all_ops: list[Op] = []
    for index, chunk in enumerate([*chunks, None]):
        if index == snapshot_at:
            late = _page(stream.snapshot())
        ops = stream.feed(chunk) if chunk is not None else stream.finish()
        all_ops += ops
        frame = render_ops(TARGET, ops)
        page.apply(frame)
        if late is not None:
            late.apply(frame)
    expected = serialise(parse(render_markdown(text)))
    assert _body(page) == expected  # (a) the page is the full render
    # (b) every character of the text is committed at most once: nothing is sent twice.
    assert _committed(all_ops) <= len(text)
    assert sum(isinstance(op, ListLoose) for op in all_ops) <= sum(
        isinstance(op, ListItem) for op in all_ops
    )
    if late is not None:  # (c) a tab that joined in the middle ends the same
        assert _body(late) == expected
    assert _body(_page(stream.snapshot())) == expected


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document, st.lists(st.integers(1, 40), min_size=1, max_size=6), st.integers(0, 60))
def test_any_chunking_ends_as_the_full_render(text: str, sizes: list[int], snap: int) -> None:
    chunks = _cuts(text, sizes)
    check_stream(text, chunks, snap % (len(chunks) + 1))


@settings(
    max_examples=max(EXAMPLES // 3, 10),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(document, st.integers(0, 400))
def test_one_character_at_a_time(text: str, snap: int) -> None:
    check_stream(text, list(text), snap % (len(text) + 1))


def _committed_sources(chunks: list[str]) -> list[list[str]]:
    """For each chunk fed, the sources committed by that feed (blocks, items, fences)."""
    stream = MarkdownStream()
    out = []
    for chunk in chunks:
        ops = stream.feed(chunk)
        out.append([op.source for op in ops if isinstance(op, Block | ListItem | FenceClose)])
    return out


def test_half_typed_heading_proves_nothing() -> None:
    # "#" could still become "#x" (a paragraph): the paragraph before it waits.
    assert _committed_sources(["text\n", "#", "x\n"]) == [[], [], []]
    assert _committed_sources(["text\n", "#", " h\n"]) == [[], [], ["text\n", "# h\n"]]
    assert _committed_sources(["# Title\n"]) == [["# Title\n"]]


def test_half_typed_number_does_not_finish_a_list() -> None:
    # "2" may become "2." (a new item of the same list, making it loose).
    assert _committed_sources(["1. a\n\n", "2", "."]) == [[], [], []]
    stream = MarkdownStream()
    stream.feed("1. a\n\n2. b\n")
    ops = stream.feed("3. c\n")
    assert any(isinstance(op, ListItem) and op.loose for op in ops)


def test_paragraph_waits_for_a_setext_underline() -> None:
    assert _committed_sources(["Title\n", "---\n"]) == [[], ["Title\n---\n"]]


def test_open_fence_streams_text_and_closes_once() -> None:
    stream = MarkdownStream()
    first = stream.feed("```python\nx = 1\n")
    assert [type(op).__name__ for op in first][:2] == ["FenceOpen", "FenceAppend"]
    more = stream.feed("y = 2\n")
    assert [op for op in more if isinstance(op, FenceAppend)] == [FenceAppend(1, "y = 2\n")]
    closed = stream.feed("```\n")
    assert [op.source for op in closed if isinstance(op, FenceClose)] == [
        "```python\nx = 1\ny = 2\n```\n"
    ]


def test_reference_defined_later_holds_the_paragraph() -> None:
    assert _committed_sources(["See [docs].\n\nNext.\n\n", "[docs]: https://e.com\n"]) == [
        [],
        ["See [docs].\n", "Next.\n"],
    ]


def test_list_turning_loose_renders_its_items_again_once() -> None:
    stream = MarkdownStream()
    ops = stream.feed("- a\n- b\n- c\n")
    assert [op.source for op in ops if isinstance(op, ListItem)] == ["- a\n", "- b\n"]
    ops = stream.feed("\n- d\n")
    assert [op for op in ops if isinstance(op, ListLoose)] == [ListLoose(1, ("- a\n", "- b\n"), ())]
    assert [op for op in ops if isinstance(op, ListItem)] == [ListItem(1, "- c\n\n", True, ())]


def test_math_opener_waits_for_a_blank_line() -> None:
    # "$$" without its closer may swallow the heading if "$$" comes before a blank line.
    assert _committed_sources(["$$\n", "# h\n", "$$\n"]) == [[], [], ["$$\n# h\n$$\n"]]
    assert _committed_sources(["$$\n", "# h\n", "\n"]) == [[], [], ["$$\n", "# h\n"]]


def test_finish_commits_everything_and_removes_the_tail() -> None:
    stream = MarkdownStream()
    stream.feed("- a\n- b")
    ops = stream.finish()
    assert ops[-1] == Done()
    assert stream.snapshot()[-1] == Done()
    assert render_state(TARGET, stream.snapshot()) == render_markdown("- a\n- b")


def test_a_long_answer_streams_in_chunks_of_blocks() -> None:
    """Top-level elements (blocks, streamed lists and fences alike) are grouped into chunks on
    the page (the browser then lays out and paints a chunk at a time), and the page still ends
    as the full render; so does a tab that joins at the end."""
    paragraphs = [f"Paragraph {n} with **bold** text." for n in range(3 * CHUNK_BLOCKS)]
    text = "\n\n".join([*paragraphs[:30], "- a\n- b\n- c", "```\ncode\n```", *paragraphs[30:]])
    stream, page = MarkdownStream(), _page()
    for chunk in _cuts(text + "\n", [7]):
        page.apply(render_ops(TARGET, stream.feed(chunk)))
    page.apply(render_ops(TARGET, stream.finish()))
    target = page.find(TARGET)
    assert target is not None
    chunks = [n for n in target.children if n.attr("class") == "md-chunk"]
    sizes = [len([x for x in c.children if x.tag]) for c in chunks]
    # 30 paragraphs, the list, the fence, 30 paragraphs: 62 elements, 20 to a chunk.
    assert sizes == [CHUNK_BLOCKS, CHUNK_BLOCKS, CHUNK_BLOCKS, 62 - 3 * CHUNK_BLOCKS]
    assert [n for n in target.children if n.tag] == chunks  # nothing outside a chunk
    second = [x.tag for x in chunks[1].children if x.tag]
    assert second[10:13] == ["ul", "div", "p"]  # the list and the code, in the chunk
    assert _body(page) == serialise(parse(render_markdown(text + "\n")))
    assert _body(_page(stream.snapshot())) == _body(page)


def test_plain_list_items_are_committed_without_parsing_each_line(monkeypatch) -> None:
    """A long list of plain one-line items (the common case) is judged line by line without
    the block parser; anything else in the list still goes to the parser."""
    from htmxchat.markdown import stream as stream_module

    parses = 0
    real_parse = stream_module.BLOCKS.parse

    def counting_parse(*args, **kwargs):  # type: ignore[no-untyped-def]
        nonlocal parses
        parses += 1
        return real_parse(*args, **kwargs)

    monkeypatch.setattr(stream_module.BLOCKS, "parse", counting_parse)
    items = [f"{n}. Step {n}: do the *thing* with `tool {n}` again.\n" for n in range(1, 201)]
    special = "201. See [the docs][d] and $x$.\n202. Last one.\n\n[d]: https://e.com/d\n"
    text = "".join(items) + special
    stream, page, all_ops = MarkdownStream(), _page(), []
    for chunk in _cuts(text, [13]):
        ops = stream.feed(chunk)
        all_ops += ops
        page.apply(render_ops(TARGET, ops))
    during = parses
    ops = stream.finish()
    page.apply(render_ops(TARGET, ops))
    all_ops += ops
    assert during < 10, f"{during} parses for 200 plain items"
    items_sent = [op.source for op in all_ops if isinstance(op, ListItem)]
    # Each once, in order; the last two went through the parser (a reference, math).
    assert items_sent == [*items, "201. See [the docs][d] and $x$.\n", "202. Last one.\n\n"]
    assert _body(page) == serialise(parse(render_markdown(text)))


def test_the_garbage_collector_stays_out_of_a_stream_parse(monkeypatch) -> None:
    """A parse's thousands of short-lived tokens must not trigger a full collection of the
    whole heap on the event loop (tens of ms, nearly every parse of a long open block):
    the collector is off while a flush is parsed, and on again after."""
    import gc

    from htmxchat.markdown import stream as stream_module

    seen: list[bool] = []
    parse = stream_module.BLOCKS.parse

    def recording(source: str, env: object = None) -> object:
        seen.append(gc.isenabled())
        return parse(source, env)  # type: ignore[arg-type]

    monkeypatch.setattr(stream_module.BLOCKS, "parse", recording)
    stream = MarkdownStream()
    assert gc.isenabled()
    stream.feed("| a | b |\n|---|---|\n| 1 | 2 |\n")
    stream.finish()
    assert seen and not any(seen)
    assert gc.isenabled()
    gc.disable()  # and it leaves a collector that was off, off
    try:
        MarkdownStream().feed("text\n\nmore\n")
        assert not gc.isenabled()
    finally:
        gc.enable()
