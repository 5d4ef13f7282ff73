"""The Compare page in a real browser: headless Chromium opens two bundled runs from a link, draws
the six charts, switches to phase alignment (which the URL then carries), and saves screenshots
to screenshots/ (git-ignored) for a person to look at. Skipped like tests/ui/test_browser.py."""

from __future__ import annotations

from pathlib import Path

import pytest

SHOTS = Path(__file__).resolve().parents[2] / "screenshots"
pytestmark = pytest.mark.browser

MEMBER = "sweep-p31/wd1_frac0.6_lr0.003_seed0"
CHARTS = 6


def _wait_for_charts(page) -> None:
    page.wait_for_function(
        f"""() => document.querySelectorAll(
            '[data-testid="stVegaLiteChart"] canvas, [data-testid="stVegaLiteChart"] svg').length >= {CHARTS}""",
        timeout=90_000,
    )
    page.wait_for_timeout(1500)  # let the charts draw


def test_compare_two_runs_then_align_by_phase(server: str, browser) -> None:
    page = browser.new_page(viewport={"width": 1500, "height": 2800})
    page.goto(f"{server}/compare?compare=add-p113&compare={MEMBER}", wait_until="domcontentloaded")
    _wait_for_charts(page)
    assert page.get_by_text("Milestones").count() == 1
    page.screenshot(path=str(SHOTS / "compare-1-by-step.png"))

    page.get_by_text("phase boundaries", exact=True).click()
    page.wait_for_function("() => location.search.includes('align=')", timeout=30_000)
    page.wait_for_selector("text=Onto the phases of", timeout=30_000)
    _wait_for_charts(page)
    page.screenshot(path=str(SHOTS / "compare-2-by-phase.png"))
    # The comparison is in the URL, so the view can be shared.
    assert "compare=add-p113" in page.url and "align=phase" in page.url, page.url
    assert page.locator('[data-testid="stException"]').count() == 0
