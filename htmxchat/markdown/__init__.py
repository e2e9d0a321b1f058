"""Markdown for replies: one sanitised renderer, and block-by-block streaming of a reply."""
