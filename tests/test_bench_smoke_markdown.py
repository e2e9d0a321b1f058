"""The Markdown benchmark's logic on small answers, in seconds, in the default run."""

from __future__ import annotations

from htmxchat.markdown.html import render_ops
from htmxchat.markdown.render import render_markdown
from htmxchat.markdown.stream import MarkdownStream
from tests.benchmarks.bench_markdown import answers, measure
from tests.oob_dom import Page, parse, serialise, unchunked


def test_small_answers_stream_to_the_full_render_faster_than_rerendering() -> None:
    for name, text in answers(600).items():
        stream = MarkdownStream()
        page = Page('<div id="m-B-body"><div id="m-B-body-tail" class="md-tail"></div></div>')
        step = 32
        for chunk in [*(text[i : i + step] for i in range(0, len(text), step)), None]:
            ops = stream.feed(chunk) if chunk is not None else stream.finish()
            page.apply(render_ops("m-B-body", ops))
        body = page.find("m-B-body")
        assert body is not None
        assert serialise(unchunked(body.children), drop_ids="m-B-body-") == serialise(
            parse(render_markdown(text))
        ), name
        result = measure(name, text)
        assert result.flushes > 50
        assert result.incremental < result.rerender, name
