"""The export formats: Markdown for people, JSON that `htmxchat import` reads back."""

from __future__ import annotations

import html
import json
import time
from collections.abc import Iterator

import pytest
from markdown_it import MarkdownIt

from htmxchat.export import ImportFormatError, filename, parse_export, to_json, to_markdown
from htmxchat.models import Conversation, Message

CONVERSATION = Conversation("0mx1abcdefghijklmnop", "Trip: Rome & <kids>", 1_700_000_000.0, 1.75e9)
MESSAGES = [
    Message("0mx1aaaaaaaaaaaaaaaa", CONVERSATION.id, "user", "Plan it", created_at=1.7e9),
    Message(
        "0mx1bbbbbbbbbbbbbbbb", CONVERSATION.id, "assistant", "Day one…", status="stopped",
        bot="Demo bot", model="llama3", created_at=1.7e9 + 5, piece_count=2,
    ),
]  # fmt: skip


@pytest.fixture
def zone(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The local time zone is Central European Time (a POSIX rule: no tz database needed)."""
    monkeypatch.setenv("TZ", "CET-1")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_markdown_reads_like_a_transcript(zone: None) -> None:
    text = to_markdown(CONVERSATION, MESSAGES)
    assert text.startswith("# Trip: Rome & \\<kids\\>\n")  # a viewer shows <kids>, as typed
    assert f"- id: `{CONVERSATION.id}`" in text and "- messages: 2" in text
    # Local time, saying which zone it is in.
    assert "## You · 2023-11-14 23:13:20 CET (UTC+01:00)\n\nPlan it\n" in text
    # Answers are headed by the model that wrote them, not the server.
    assert "## llama3 · 2023-11-14 23:13:25 CET (UTC+01:00)\n" in text and "*Stopped*" in text
    assert "Demo bot" not in text


def test_markdown_keeps_its_outline_when_answers_have_headings() -> None:
    answer = (
        "# Overview\n\nText.\n\n## Details\n\n```md\n# inside code\n```\n\n"
        "Summary\n=======\n\n###### Deep"
    )
    messages = [
        MESSAGES[0],
        Message("0mx1cccccccccccccccc", CONVERSATION.id, "assistant", answer, model="qwen3"),
    ]
    text = to_markdown(CONVERSATION, messages)
    viewer = MarkdownIt("commonmark")
    tokens = viewer.parse(text)
    headings = [  # as a viewer shows them: level and text
        (int(t.tag[1]), html.unescape(viewer.renderInline(tokens[i + 1].content)))
        for i, t in enumerate(tokens)
        if t.type == "heading_open"
    ]
    assert [(level, title.split(" · ")[0]) for level, title in headings] == [
        (1, "Trip: Rome & <kids>"),
        (2, "You"),
        (2, "qwen3"),
        (3, "Overview"),
        (4, "Details"),
        (3, "Summary"),
        (6, "Deep"),
    ]
    assert "```md\n# inside code\n```" in text  # code is never changed


def test_json_round_trips_exactly() -> None:
    conversation, messages = parse_export(to_json(CONVERSATION, MESSAGES))
    assert conversation == CONVERSATION and messages == MESSAGES


def test_streaming_replies_import_as_interrupted_and_titles_are_derived() -> None:
    document = json.loads(to_json(CONVERSATION, MESSAGES))
    document["conversation"]["title"] = ""
    document["messages"][1]["status"] = "streaming"
    conversation, messages = parse_export(json.dumps(document))
    assert conversation.title == "Plan it" and messages[1].status == "interrupted"


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (lambda d: d["messages"][0].update(surprise=1), "unknown fields: surprise"),
        (lambda d: d["messages"][0].update(created_at="yesterday"), "created_at must be a number"),
        (lambda d: d["messages"][0].update(status="odd"), "status 'odd' is unknown"),
        (lambda d: d.update(messages={}), '"messages" must be a list'),
        (lambda d: d.update(conversation=[]), '"conversation" must be a JSON object'),
    ],
)
def test_bad_documents_name_the_problem(change, error: str) -> None:
    document = json.loads(to_json(CONVERSATION, MESSAGES))
    change(document)
    with pytest.raises(ImportFormatError, match=error.replace("(", r"\(")):
        parse_export(json.dumps(document))


def test_file_names_are_safe() -> None:
    assert filename(CONVERSATION, "md") == f"trip-rome-kids-{CONVERSATION.id}.md"
    untitled = Conversation(CONVERSATION.id, '../../etc/passwd"\n', 0.0, 0.0)
    assert filename(untitled, "json") == f"etc-passwd-{CONVERSATION.id}.json"
    assert filename(Conversation(CONVERSATION.id, "日本語", 0, 0), "md").startswith("conversation-")
