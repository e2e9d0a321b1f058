"""The top bar as a person sees it: one row at every width (the model picker, the title and
one menu), the menu's choices, one model choice, and no keyboard hint on a touch screen."""

from __future__ import annotations

import pytest

from tests.helpers import TIMEOUT, chat_in_page

pytestmark = pytest.mark.browser


def chat(page, url: str) -> None:
    chat_in_page(page, url, "A question with a rather long title to cut short")


# The boxes of what the top bar shows, and the bar's own height.
ROW = """() => {
  const bar = document.querySelector(".topbar");
  const shown = [...bar.children].filter((e) => e.getClientRects().length)
    .map((e) => { const r = e.getBoundingClientRect();
                  return { name: e.id || e.className, top: r.top, bottom: r.bottom,
                           left: r.left, right: r.right }; });
  return { height: bar.getBoundingClientRect().height, shown };
}"""


@pytest.mark.parametrize("width", [360, 768, 1280, 1920])
def test_the_top_bar_is_one_row_at_every_width(page, two_models: str, width: int) -> None:
    page.set_viewport_size({"width": width, "height": 740})
    chat(page, two_models)
    bar = page.evaluate(ROW)
    names = " ".join(item["name"] for item in bar["shown"])
    for needed in ("model-picker", "conversation-title", "page-menu"):
        assert needed in names, names
    assert bar["height"] < 60, bar  # ~105 px when it wrapped to three rows
    middles = [(item["top"] + item["bottom"]) / 2 for item in bar["shown"]]
    assert max(middles) - min(middles) < 4, bar  # side by side, not stacked
    assert all(item["right"] <= width for item in bar["shown"]), bar
    # the title gives way with an ellipsis, never pushing the menu off the screen
    title = page.locator("#conversation-title")
    assert title.evaluate("t => getComputedStyle(t).textOverflow") == "ellipsis"


def test_the_menu_holds_the_rest_and_closes_on_esc_and_outside(page, two_models: str) -> None:
    page.set_viewport_size({"width": 360, "height": 740})
    chat(page, two_models)
    assert not page.is_visible("text=Download as Markdown")
    page.click(".menu-button")
    for item in (
        "Download as Markdown",
        "Download as JSON",
        "Chat settings",
        "Servers",
        "Keyboard shortcuts",
    ):
        assert page.get_by_text(item, exact=False).first.is_visible(), item
    panel = page.locator(".menu-panel").bounding_box()
    assert panel and panel["x"] >= 0 and panel["x"] + panel["width"] <= 360  # on the screen
    page.keyboard.press("Escape")
    assert not page.is_visible(".menu-panel")
    assert "menu-button" in page.evaluate("document.activeElement.className")
    page.click(".menu-button")
    page.mouse.click(180, 400)  # outside it
    assert not page.is_visible(".menu-panel")
    # a download is a real link to this conversation's export
    assert "json" in (page.get_attribute(".export a >> nth=1", "href") or "")


def test_the_model_is_chosen_once_and_saving_chat_settings_keeps_it(page, two_models: str) -> None:
    chat(page, two_models)
    assert page.locator("select").count() == 1  # the top bar's picker, nothing else
    page.click(".menu-button")
    page.click(".chat-settings-button")
    page.wait_for_selector(".chat-settings-form", timeout=TIMEOUT)
    assert page.locator(".chat-settings-form select").count() == 0
    assert page.locator("select").count() == 1
    # the form fits the menu: nothing runs off its side (the bar's no-wrap stays outside)
    assert page.locator(".menu-panel").evaluate("p => p.scrollWidth <= p.clientWidth")
    chosen = page.input_value("#model")
    assert chosen
    posted: list[str] = []
    page.on("request", lambda r: r.method == "POST" and posted.append(r.post_data or ""))
    page.fill("textarea[name=system_prompt]", "Be brief.")
    page.click(".btn-save")
    page.wait_for_selector(".settings-saved", timeout=TIMEOUT)
    # saving sends the picker's choice along, so the chat's model is not reset
    assert any("model=" + chosen.replace("|", "%7C") in body for body in posted), posted


def test_a_touch_screen_shows_no_enter_hint(browser, two_models: str) -> None:
    phone = browser.new_context(
        viewport={"width": 360, "height": 740}, has_touch=True, is_mobile=True
    )
    desk = browser.new_context(viewport={"width": 1100, "height": 740})
    try:
        for context, shown in ((phone, False), (desk, True)):
            page = context.new_page()
            page.goto(two_models)
            page.wait_for_selector("#composer", timeout=TIMEOUT)
            assert page.is_visible("text=Enter to send") is shown
    finally:
        phone.close()
        desk.close()
