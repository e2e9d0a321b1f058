"""The row under an answer: its actions at the start, "Answer details" and the stats at the
end under the bubble's edge, wherever the hidden actions are, on a desktop and a phone."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import TwoModels, served_in_thread

pytestmark = pytest.mark.browser
TIMEOUT = 15_000
DONE = "article.msg-assistant[data-status=complete]"


@pytest.fixture
def echo(data_dir: Path) -> Iterator[str]:
    with served_in_thread(data_dir, TwoModels()) as url:
        yield url


@pytest.mark.parametrize("width", [360, 1100])
def test_answer_details_sit_at_the_end_of_the_row(page, echo: str, width: int) -> None:
    page.set_viewport_size({"width": width, "height": 740})
    page.goto(echo)
    page.wait_for_selector('#connection[data-state="open"]', state="attached", timeout=TIMEOUT)
    page.fill("#composer-input", "Hello there")
    page.press("#composer-input", "Enter")
    page.wait_for_selector(DONE, timeout=TIMEOUT)
    page.mouse.move(1, 1)  # nothing hovered: the actions are faded out but keep their room
    body = page.locator(f"{DONE} .msg-body").bounding_box()
    details = page.locator(f"{DONE} .answer-details summary").bounding_box()
    assert body and details
    assert abs((body["x"] + body["width"]) - (details["x"] + details["width"])) < 8
