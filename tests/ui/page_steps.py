"""Steps a person takes in a real browser, shared by the browser tests: read the Step metric, and
move a sidebar step slider with the keyboard until the page shows another step."""

from __future__ import annotations


def step_metric(page) -> str:
    metric = page.locator('[data-testid="stMetric"]').filter(has_text="Step").first
    return metric.locator('[data-testid="stMetricValue"]').inner_text().strip()


def move_step_slider(page, presses: int, before: str) -> None:
    """Press the sidebar's step slider left ``presses`` times and wait until the Step metric changes."""
    slider = page.locator('[data-testid="stSidebar"] [data-testid="stSlider"] input[type="range"]').first
    slider.focus()
    for _ in range(presses):
        slider.press("ArrowLeft")
    page.wait_for_function(
        """(before) => {
            const m = [...document.querySelectorAll('[data-testid="stMetric"]')]
                .find(e => e.innerText.includes('Step'));
            const v = m && m.querySelector('[data-testid="stMetricValue"]');
            return v && v.innerText.trim() !== before;
        }""",
        arg=before,
        timeout=30_000,
    )
    page.wait_for_timeout(1500)
