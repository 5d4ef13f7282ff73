"""The app in a real browser: headless Chromium opens it, moves the step slider, saves screenshots.

Runs by default (CI installs Chromium); skipped, with the reason, where /usr/bin/chromium or the
``playwright`` package is missing. Playwright drives the system Chromium: no browser is ever
downloaded. Screenshots go to screenshots/ (git-ignored) for a person to look at.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.ui.page_steps import move_step_slider, step_metric

REPO = Path(__file__).resolve().parents[2]
SHOTS = REPO / "screenshots"

pytestmark = pytest.mark.browser


def test_open_move_step_and_screenshot(server: str, browser) -> None:
    page = browser.new_page(viewport={"width": 1500, "height": 1000})
    page.goto(server, wait_until="domcontentloaded")
    page.wait_for_selector('[data-testid="stMetric"]', timeout=45_000)
    page.wait_for_selector('[data-testid="stVegaLiteChart"]', timeout=45_000)
    page.wait_for_timeout(1500)  # let the charts draw
    first = step_metric(page)
    page.screenshot(path=str(SHOTS / "browser-1-opened.png"))

    move_step_slider(page, 6, first)
    second = step_metric(page)
    page.screenshot(path=str(SHOTS / "browser-2-step-moved.png"))
    assert second != first
    # The step is part of the URL, so the view can be shared.
    assert "step=" in page.url, page.url
    assert page.locator('[data-testid="stException"]').count() == 0


def test_adder_page_in_a_browser(server: str, browser) -> None:
    """The Adder page answers 5 + 7 digit by digit, draws the attention, and follows the step slider."""
    if not (REPO / "checkpoints" / "adder-777" / "run.json").is_file():
        pytest.skip("checkpoints/adder-777 is not in this checkout")
    page = browser.new_page(viewport={"width": 1500, "height": 1000})
    page.goto(f"{server}/adder?adder_tab=Try%20a%20%2B%20b&adder_a=5&adder_b=7", wait_until="domcontentloaded")
    page.wait_for_selector('[data-testid="stVegaLiteChart"]', timeout=60_000)
    page.wait_for_timeout(1500)
    assert page.get_by_text("5 + 7 = 12: right").count() == 1
    first = step_metric(page)
    page.screenshot(path=str(SHOTS / "browser-adder-1-answer.png"))
    move_step_slider(page, 40, first)
    page.screenshot(path=str(SHOTS / "browser-adder-2-step-moved.png"))
    assert step_metric(page) != first and "adder_step=" in page.url
    assert page.locator('[data-testid="stException"]').count() == 0
