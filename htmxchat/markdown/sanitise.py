"""The last line of defence: every fragment of rendered Markdown goes through nh3.

The allow-list holds exactly what the renderer, Pygments and latex2mathml produce. Raw HTML is
off in the parser, but latex2mathml copies `\\text{...}` into its output unescaped, so nothing
is trusted without passing through here.
"""

from __future__ import annotations

import nh3
from markupsafe import Markup
from pygments.token import STANDARD_TYPES

_HTML_TAGS = {
    "a", "blockquote", "br", "button", "code", "del", "div", "em", "h1", "h2", "h3", "h4",
    "h5", "h6", "hr", "input", "li", "ol", "p", "pre", "s", "span", "strong", "table",
    "tbody", "td", "th", "thead", "tr", "ul",
}  # fmt: skip

# MathML Core elements that latex2mathml emits (plus their near relatives).
_MATHML_TAGS = {
    "math", "menclose", "merror", "mfrac", "mi", "mmultiscripts", "mn", "mo", "mover",
    "mpadded", "mphantom", "mprescripts", "mroot", "mrow", "ms", "mspace", "msqrt", "mstyle",
    "msub", "msubsup", "msup", "mtable", "mtd", "mtext", "mtr", "munder", "munderover",
    "none", "semantics", "annotation",
}  # fmt: skip

_MATHML_ATTRIBUTES = {
    "accent", "accentunder", "columnalign", "columnlines", "columnspacing", "depth",
    "display", "displaystyle", "fence", "form", "frame", "height", "largeop", "linethickness",
    "lspace", "mathbackground", "mathcolor", "mathsize", "mathvariant", "maxsize", "minsize",
    "movablelimits", "notation", "rowlines", "rowspacing", "rspace", "scriptlevel",
    "separator", "stretchy", "symmetric", "voffset", "width", "xmlns",
}  # fmt: skip

ATTRIBUTES: dict[str, set[str]] = {
    "a": {"href", "title", "target"},
    "ol": {"start"},
    "input": {"type", "checked", "disabled"},
    "button": {"type", "aria-label"},
    "code": set(),
    **{tag: set(_MATHML_ATTRIBUTES) for tag in _MATHML_TAGS},
}

# `class` is only ever one of these values; anything else is dropped by nh3.
_PYGMENTS_CLASSES = {name for name in STANDARD_TYPES.values() if name}
CLASSES: dict[str, set[str]] = {
    "span": _PYGMENTS_CLASSES | {"math", "inline", "code-lang"},
    "div": {"code-block", "code-header", "math", "block", "inline"},
    "code": {"math-error"},
    "pre": {"math-error"},
    "button": {"copy-code"},
    "a": {"image-link"},
    "li": {"task-list-item"},
    "input": {"task-list-item-checkbox"},
    "th": {"align-left", "align-center", "align-right"},
    "td": {"align-left", "align-center", "align-right"},
}

TAGS = _HTML_TAGS | _MATHML_TAGS
URL_SCHEMES = {"http", "https", "mailto"}

# Forced values: a link always opens in a new tab, a checkbox is always a disabled checkbox,
# a code block or a table (either may scroll sideways) can be reached and scrolled with the
# keyboard.
_FORCED = {
    "a": {"target": "_blank"},
    "pre": {"tabindex": "0"},
    "table": {"tabindex": "0"},
    "input": {"type": "checkbox", "disabled": "disabled"},
    "button": {"type": "button"},
}


_CLEANER = nh3.Cleaner(
    tags=TAGS,
    attributes=ATTRIBUTES,
    allowed_classes=CLASSES,
    url_schemes=URL_SCHEMES,
    url_relative="deny",
    link_rel="noopener noreferrer",
    set_tag_attribute_values=_FORCED,
    strip_comments=True,
)


def sanitise(html: str) -> Markup:
    """Clean `html` with the allow-list; the result is safe to put in a page as is."""
    return Markup(_CLEANER.clean(html))
