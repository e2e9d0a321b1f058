"""What a reader sees of formulas and tables: set in the vendored math font with TeX's
spacing, no scrollbar on a formula that fits, and tables on a phone that scroll sideways with
no word broken in two."""

from __future__ import annotations

import pytest

from tests.helpers import DONE, chat_in_page

pytestmark = pytest.mark.browser


def answer(page, url: str, markdown: str) -> None:
    """The echo bot answers with the user's text: the test writes the model's Markdown."""
    chat_in_page(page, url, markdown)
    # the math font, loaded (formulas are laid out again once it is)
    assert page.evaluate("document.fonts.load('16px \"STIX Two Math\"').then(f => f.length)") == 1


# Where every glyph of a formula is drawn, against the block that holds it.
INK_INSIDE = """b => {
  const box = b.getBoundingClientRect();
  let inside = true;
  for (const el of b.querySelectorAll("math *")) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) continue;
    if (r.top < box.top - 0.5 || r.bottom > box.bottom + 0.5) inside = false;
  }
  return inside;
}"""


def test_a_display_formula_that_fits_shows_no_scrollbar(page, echo: str) -> None:
    answer(
        page,
        echo,
        "$$\n\\sum_{i=1}^{n} \\frac{1}{i^2} = \\prod_{p} \\frac{1}{1 - p^{-2}}"
        " = \\int_0^1 \\frac{\\log x}{x - 1}\\,dx\n$$",
    )
    block = page.locator(f"{DONE} .math.block")
    # nothing to scroll either way, so no scrollbar, in a headed browser too
    assert block.evaluate(
        "b => [b.scrollWidth - b.clientWidth, b.scrollHeight - b.clientHeight]"
    ) == [
        0,
        0,
    ]
    assert block.evaluate(INK_INSIDE)  # and nothing of it is cut off
    # the limits of a display sum sit under and over it, as in TeX
    sign, below = block.evaluate(
        """b => { const s = b.querySelector("munderover");
                  const box = (i) => s.children[i].getBoundingClientRect();
                  return [box(0), box(1)]; }"""
    )
    assert below["top"] >= sign["bottom"] - 1


def test_formulas_use_the_math_font_and_space_function_names_as_tex_does(page, echo: str) -> None:
    answer(page, echo, "Sorting costs $O(n \\log n)$ and $\\sin x$ too.")
    family = page.locator(f"{DONE} math").first.evaluate("m => getComputedStyle(m).fontFamily")
    assert family.startswith('"STIX Two Math"')
    # "n log n", not "nlogn": a visible gap on each side of "log" (TeX's thin space)
    gaps = page.locator(f"{DONE} math").first.evaluate(
        """m => { const ids = [...m.querySelectorAll("mi")];
                  const log = ids.find(i => i.textContent === "log");
                  const before = ids[ids.indexOf(log) - 1], after = ids[ids.indexOf(log) + 1];
                  const r = (e) => e.getBoundingClientRect();
                  return [r(log).left - r(before).right, r(after).left - r(log).right]; }"""
    )
    assert all(gap >= 2 for gap in gaps), gaps


# Every word of every cell: a word split over two lines has two boxes.
BROKEN_WORDS = """t => {
  const broken = [];
  const walker = document.createTreeWalker(t, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    for (const m of n.data.matchAll(/\\S+/g)) {
      const range = document.createRange();
      range.setStart(n, m.index);
      range.setEnd(n, m.index + m[0].length);
      if (range.getClientRects().length > 1) broken.push(m[0]);
    }
  }
  return broken;
}"""

TABLE = """| call | returns | notes |
| --- | --- | --- |
| `list.sort()` | Returns None | sorts the list in place, keeping equal items in order |
| `sorted(items, key=len)` | Returns a new list | leaves the original alone |
"""


def test_a_table_on_a_phone_scrolls_sideways_with_no_word_broken(page, echo: str) -> None:
    page.set_viewport_size({"width": 360, "height": 740})
    answer(page, echo, TABLE)
    table = page.locator(f"{DONE} table")
    assert table.evaluate(BROKEN_WORDS) == []
    # the table scrolls inside the answer; the answer itself stays on the screen
    assert table.evaluate("t => t.scrollWidth > t.clientWidth")
    body = page.locator(f"{DONE} .msg-body").bounding_box()
    assert body and body["x"] >= 0 and body["x"] + body["width"] <= 360
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
