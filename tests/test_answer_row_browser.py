"""The row under an answer: its actions at the start, "Answer details" and the stats at the
end under the bubble's edge, wherever the hidden actions are, on a desktop and a phone."""

from __future__ import annotations

import pytest

from tests.helpers import DONE, chat_in_page

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("width", [360, 1100])
def test_answer_details_sit_at_the_end_of_the_row(page, two_models: str, width: int) -> None:
    page.set_viewport_size({"width": width, "height": 740})
    chat_in_page(page, two_models, "Hello there")
    page.mouse.move(1, 1)  # nothing hovered: the actions are faded out but keep their room
    body = page.locator(f"{DONE} .msg-body").bounding_box()
    details = page.locator(f"{DONE} .answer-details summary").bounding_box()
    assert body and details
    assert abs((body["x"] + body["width"]) - (details["x"] + details["width"])) < 8
