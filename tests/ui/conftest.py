"""Shared helpers of the app tests: start the app under AppTest and check it showed no error; serve it
with `streamlit run` and open it in the system's headless Chromium (never a downloaded browser).

All are fixtures, so every app test asks for what it uses. The app reads its runs from
$GROKVIZ_RUNS (each test points it at the runs it needs).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
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


# --- a real browser ---------------------------------------------------------------------------

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
SHOTS = REPO / "screenshots"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        return sock.getsockname()[1]


def _wait_healthy(port: int, server: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"streamlit exited early with code {server.returncode}")
        try:
            with urllib.request.urlopen(f"http://localhost:{port}/_stcore/health", timeout=1) as reply:
                if reply.read().strip() == b"ok":
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"streamlit did not answer on port {port} within {timeout} s")


@pytest.fixture
def server(bundled_run_path: Path, tmp_path: Path):
    if not CHROMIUM.is_file():
        pytest.skip(f"no Chromium at {CHROMIUM} (CI installs it with apt; browsers are never downloaded)")
    pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    port = _free_port()
    env = dict(os.environ)
    env.setdefault("GROKVIZ_RUNS", str(bundled_run_path.parent))
    log = open(tmp_path / "streamlit.log", "w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            "app.py",
            "--server.headless",
            "true",
            "--server.port",
            str(port),
            "--browser.gatherUsageStats",
            "false",
        ],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_healthy(port, process)
        yield f"http://localhost:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@pytest.fixture
def browser(server: str):
    """A headless Chromium (the system's, /usr/bin/chromium), closed after the test; screenshots go to SHOTS."""
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()
