"""Markdown for replies: one sanitised renderer, and block-by-block streaming of a reply.

Nothing is imported here: the parser (markdown-it, math, highlighting, the sanitiser) is
loaded by the first message that needs it, not at start (docs/design.md, "Start-up").
Only `ops` (the operations a stream publishes) is light and imported by the chat core.
"""
