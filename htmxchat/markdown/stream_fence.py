"""An open top-level code fence, streamed as plain text until its closing line arrives.

A fence can grow without end (a long program), so the stream never parses it again: only the
lines that arrived since the last look are checked for the closing fence, and the text that
cannot become the closing line is sent at once. It is highlighted once, when it closes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from markdown_it.token import Token

from .rules import closes_fence


@dataclass
class OpenFence:
    """The fence's opener and how far its text has been checked and sent (offsets into the
    stream's pending text, which starts at a line start)."""

    fence_id: int
    info: str
    char: str
    length: int
    indent: int
    scan: int  # offset of the next line to check for the closing fence
    sent: int  # offset up to which the text has been sent
    text: list[str] = field(default_factory=list)  # what was sent, piece by piece
    chunk: int = 0  # the chunk it was placed in on the page

    @classmethod
    def opened(cls, fence_id: int, token: Token, opener: str, body: int) -> OpenFence:
        """The fence `token` opens on the line `opener`; its text starts at offset `body`."""
        return cls(
            fence_id=fence_id,
            info=token.info,
            char=token.markup[0],
            length=len(token.markup),
            indent=len(opener) - len(opener.lstrip(" ")),
            scan=body,
            sent=body,
        )

    def closing(self, text: str, final: bool) -> int | None:
        """Where the fence ends in `text` (after its closing line; the whole text when the
        reply is `final`), or None while it is open. Looks only at lines not checked yet."""
        position = self.scan
        closed_at = len(text) if final else None
        while (newline := text.find("\n", position)) >= 0:
            if closes_fence(text[position:newline], self.char, self.length):
                closed_at = newline + 1
                break
            position = newline + 1
        self.scan = position
        return closed_at

    def take_new(self, text: str) -> str:
        """The fence's text in `text` that can be shown now and was not sent yet ("" if
        none), marked as sent. A last, unfinished line that may still become the closing
        fence waits; so do all unfinished lines of an indented fence, which go by lines."""
        cut = len(text)
        partial = text.rfind("\n") + 1
        if partial >= self.sent and (self.indent or not text[partial:].strip(" " + self.char)):
            cut = partial
        if cut <= self.sent:
            return ""
        chunk = text[self.sent : cut]
        if self.indent:  # content lines lose up to the opener's indentation
            chunk = "".join(_dedent(line, self.indent) for line in chunk.splitlines(True))
        self.text.append(chunk)
        self.sent = cut
        return chunk

    def moved(self, by: int) -> None:
        """The pending text it indexes lost its first `by` characters."""
        self.scan -= by
        self.sent -= by


def _dedent(line: str, indent: int) -> str:
    stripped = line.lstrip(" ")
    return line[min(indent, len(line) - len(stripped)) :]
