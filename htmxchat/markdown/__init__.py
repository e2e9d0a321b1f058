"""Markdown for replies: one sanitised renderer, and block-by-block streaming of a reply."""

from htmxchat.markdown.render import render_markdown

__all__ = ["render_markdown"]
