"""Shared helpers of the app tests: start the app under AppTest, and check it showed no error.

Both are fixtures, so every app test asks for what it uses. The app reads its runs from
$GROKVIZ_RUNS (each test points it at the runs it needs).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

REPO = Path(__file__).resolve().parents[2]
APP = str(REPO / "app.py")  # AppTest resolves a relative path against the caller: pass it absolute
TIMEOUT = 180  # the first run imports torch and may compute a run's progress measures


def _new_app(timeout: float = TIMEOUT, **query) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=timeout)
    for key, value in query.items():
        at.query_params[key] = value
    return at


def _check(at: AppTest) -> AppTest:
    """No uncaught exception and no error box."""
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


@pytest.fixture
def new_app():
    """``new_app(**query)``: an AppTest of app.py with these URL query parameters (not run yet)."""
    return _new_app


@pytest.fixture
def check():
    """``check(at)``: assert the app showed no exception and no error box; returns ``at``."""
    return _check
