"""TeX's spacing around function names in latex2mathml's MathML (docs/markdown.md, "Math").

latex2mathml writes `\\log n` as `<mi>log</mi><mi>n</mi>`, which a browser sets as "logn", and
`\\lim`/`\\max` as `<mo>` elements the operator dictionary does not know, so they get wide
default spaces and their limits at the side even in a display formula. TeX treats these names
as operators (class Op): a thin space separates them from an ordinary neighbour, none from an
opening bracket. This pass adds those thin spaces, puts the limits of `\\lim`, `\\sum` and
friends under and over them (movable, so inline they still sit at the side, as in TeX), and
turns operator signs latex2mathml left as identifiers (`\\pm`) into operators.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

NS = "http://www.w3.org/1998/Math/MathML"
THIN = "0.1667em"  # TeX's \thinspace: 3mu

# TeX's operator names (\log, \sin, ...), as latex2mathml spells them.
FUNCTIONS = frozenset({
    "arccos", "arcsin", "arctan", "arg", "cos", "cosh", "cot", "coth", "csc", "deg", "det",
    "dim", "exp", "gcd", "hom", "inf", "ker", "lg", "lim", "liminf", "limsup", "ln", "log",
    "max", "min", "Pr", "sec", "sin", "sinh", "sup", "tan", "tanh",
})  # fmt: skip
# Those whose sub- and superscripts go under and over in a display formula: the names, and
# the big operators (sum, product, coproduct, n-ary intersection, union, circled and
# logical ones).
LIMITS = frozenset({"det", "gcd", "inf", "lim", "liminf", "limsup", "max", "min", "Pr", "sup"})
LIMITS |= frozenset("\u2211\u220f\u2210\u22c2\u22c3\u2a00\u2a01\u2a02\u2a04\u2a06\u22c0\u22c1")
# Binary operators latex2mathml may write as <mi>: plus-minus, minus-plus, times, divide,
# dot, middle dot, ring, asterisk operator.
SIGNS = frozenset("\u00b1\u2213\u00d7\u00f7\u22c5\u00b7\u2218\u2217")
OPENING = frozenset("([{\u27e8\u230a\u2308|\u2016")
CLOSING = frozenset(")]}\u27e9\u230b\u2309|\u2016")
# Elements whose children are laid out in a row (an implied <mrow>).
ROWS = frozenset({"math", "mrow", "msqrt", "mstyle", "mtd", "mpadded", "mphantom", "menclose"})
SCRIPTED = frozenset({"msub", "msup", "msubsup", "munder", "mover", "munderover"})
TO_LIMITS = {"msub": "munder", "msup": "mover", "msubsup": "munderover"}

ET.register_namespace("", NS)


def _name(el: ET.Element) -> str:
    return el.tag.removeprefix("{" + NS + "}")


def _text(el: ET.Element) -> str:
    return (el.text or "").strip()


def _kind(el: ET.Element) -> str:
    """TeX's class of an element, as far as spacing around operator names needs it."""
    name = _name(el)
    if name in SCRIPTED and len(el):
        return "op" if _kind(el[0]) == "op" else "ord"
    if name in ("mi", "mo") and _text(el) in FUNCTIONS:
        return "op"
    if name == "mo":
        text = _text(el)
        if text in OPENING and el.get("fence") != "false":
            return "open"
        if text in CLOSING:
            return "close"
        return "mo"  # its own spacing comes from the operator dictionary
    if name == "mspace":
        return "space"
    return "ord"


def _thin_space_between(left: str, right: str) -> bool:
    """TeX's spacing table, the entries with an operator name on one side."""
    if left == "op":
        return right in ("ord", "op")
    if right == "op":
        return left in ("ord", "close")
    return False


def _fix(el: ET.Element) -> None:
    for child in el:
        _fix(child)
    name = _name(el)
    if name == "mi" and _text(el) in SIGNS:
        el.tag = "{" + NS + "}mo"
    if name == "mo" and _text(el) in FUNCTIONS:
        # An unknown <mo> gets wide default spaces: the thin spaces below replace them.
        el.set("lspace", "0")
        el.set("rspace", "0")
    if name in TO_LIMITS and len(el) and _text(el[0]) in LIMITS and _name(el[0]) == "mo":
        el.tag = "{" + NS + "}" + TO_LIMITS[name]
        el[0].set("movablelimits", "true")
    if name in ROWS and len(el) > 1:
        children = list(el)
        kinds = [_kind(c) for c in children]
        for i in range(len(children) - 1, 0, -1):
            if _thin_space_between(kinds[i - 1], kinds[i]):
                el.insert(i, ET.Element("{" + NS + "}mspace", {"width": THIN}))


def tex_spacing(mathml: str) -> str:
    """`mathml` with TeX's spacing for operator names; unchanged if it does not parse."""
    try:
        root = ET.fromstring(mathml)
    except ET.ParseError:
        return mathml  # e.g. raw text copied from \\text{}: the sanitiser deals with it
    _fix(root)
    return ET.tostring(root, encoding="unicode", short_empty_elements=False)
