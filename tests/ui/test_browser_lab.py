"""The app as a laboratory, in a real browser: start a tiny run from the New run page, follow it in
the explorer while its checkpoints land, stop it, resume it to the end.

Headless Chromium (the system's, /usr/bin/chromium); skipped with the reason where it or the
``playwright`` package is missing (the ``server`` fixture of tests/ui/conftest.py).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from grokviz.storage import jobs

pytestmark = pytest.mark.browser

SHOTS = Path(__file__).resolve().parents[2] / "screenshots"
# Small enough to finish in seconds, long enough to be stopped half way (about 100 steps/s here).
# Long enough that the run is still training when Stop is clicked on an idle machine (1,500 steps
# once finished first there), short enough to finish after Resume within the wait below.
TINY = {"--p": "23", "--frac-train": "0.5", "--steps": "6000"}


@pytest.fixture
def lab_runs(tmp_path, monkeypatch) -> Path:
    """An empty runs folder for the served app (set before the ``server`` fixture reads it)."""
    root = tmp_path / "runs"
    root.mkdir()
    monkeypatch.setenv("GROKVIZ_RUNS", str(root))
    monkeypatch.delenv(jobs.READ_ONLY_ENV, raising=False)
    monkeypatch.delenv(jobs.MAX_JOBS_ENV, raising=False)
    return root


def _type(page, label: str, value: str) -> None:
    box = page.get_by_label(label, exact=True)
    box.fill(value)
    box.press("Enter")  # Streamlit takes a text box's value on Enter
    page.wait_for_timeout(300)


def _caption_step(page) -> int:
    """The step the explorer's sidebar says the run has reached ("last step 1,200 of 2,000")."""
    text = page.locator('[data-testid="stSidebar"]').inner_text()
    match = re.search(r"last step ([\d,]+) of", text)
    return int(match.group(1).replace(",", "")) if match else -1


def test_start_follow_stop_and_resume_a_run(lab_runs: Path, server: str, browser) -> None:
    page = browser.new_page(viewport={"width": 1500, "height": 1100})
    page.goto(f"{server}/new", wait_until="domcontentloaded")
    page.get_by_role("button", name="Start training").wait_for(timeout=60_000)
    _type(page, "Run name", "tiny")
    for label, value in TINY.items():
        _type(page, label, value)
    page.screenshot(path=str(SHOTS / "browser-lab-1-form.png"), full_page=True)
    page.get_by_role("button", name="Start training").click()

    follow = page.get_by_role("link", name="Follow tiny live")
    follow.wait_for(timeout=60_000)
    follow.click()
    page.wait_for_selector('[data-testid="stVegaLiteChart"]', timeout=60_000)
    first = _caption_step(page)
    page.wait_for_function(
        """(first) => {
            const m = document.querySelector('[data-testid="stSidebar"]').innerText.match(/last step ([\\d,]+) of/);
            return m && parseInt(m[1].replace(/,/g, '')) > first;
        }""",
        arg=first,
        timeout=60_000,
    )
    grown = _caption_step(page)
    assert grown > first >= 0
    assert page.get_by_role("heading", name=re.compile(r"^tiny: .* p = 23")).count() == 1
    page.screenshot(path=str(SHOTS / "browser-lab-2-following.png"))

    page.goto(f"{server}/new", wait_until="domcontentloaded")
    job = page.locator(".st-key-job_tiny")  # the job's box in the jobs list
    job.get_by_role("button", name="Stop").click(timeout=60_000)
    job.get_by_text(re.compile(r"tiny: stopped, step [\d,]+ of 6,000")).wait_for(timeout=60_000)
    stopped = jobs.list_jobs(lab_runs)[0]
    assert stopped.state == "stopped" and grown <= stopped.step < 6000

    job.get_by_role("button", name="Resume").click(timeout=30_000)
    job.get_by_text("tiny: finished, step 6,000 of 6,000").wait_for(timeout=240_000)
    page.screenshot(path=str(SHOTS / "browser-lab-3-finished.png"))
    assert page.locator('[data-testid="stException"]').count() == 0
    finished = jobs.list_jobs(lab_runs)[0]
    assert finished.state == "finished" and finished.job.action == "resume"
