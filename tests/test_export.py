"""The export formats: Markdown for people, JSON that `htmxchat import` reads back."""

from __future__ import annotations

import json

import pytest

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


def test_markdown_reads_like_a_transcript() -> None:
    text = to_markdown(CONVERSATION, MESSAGES)
    assert text.startswith("# Trip: Rome & <kids>\n")
    assert f"- id: `{CONVERSATION.id}`" in text and "- messages: 2" in text
    assert "## You · 2023-11-14 22:13:20 UTC\n\nPlan it\n" in text
    assert "## Demo bot (llama3) · " in text and "*Stopped*" in text


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
