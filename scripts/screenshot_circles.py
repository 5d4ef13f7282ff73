"""Screenshots of the Circles tab for the bundled runs at three steps (memorisation, circuit formation,
after cleanup): starts the app headless, opens each view by URL in the system Chromium, saves PNGs.

    python scripts/screenshot_circles.py --out docs/screenshots

Needs /usr/bin/chromium and the playwright package (no browser is downloaded). Not a test.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
# run, step, (a, b), label: the steps sit in each run's memorisation, circuit formation and after cleanup.
VIEWS = [
    ("add-p113", 1000, (5, 17), "memorisation"),
    ("add-p113", 7000, (5, 17), "circuit-formation"),
    ("add-p113", 25000, (5, 17), "after-cleanup"),
    ("mul-p97", 1000, (5, 17), "memorisation"),
    ("mul-p97", 8000, (5, 17), "circuit-formation"),
    ("mul-p97", 20000, (5, 17), "after-cleanup"),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/screenshots")
    parser.add_argument("--width", type=int, default=1500)
    args = parser.parse_args()
    from PIL import Image
    from playwright.sync_api import sync_playwright

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        port = sock.getsockname()[1]
    env = dict(os.environ, GROKVIZ_RUNS=str(REPO / "checkpoints"))
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true"]
        + ["--server.port", str(port), "--browser.gatherUsageStats", "false"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(150):
            try:
                urllib.request.urlopen(f"http://localhost:{port}/_stcore/health", timeout=1)
                break
            except OSError:
                time.sleep(0.2)
        with sync_playwright() as driver:
            browser = driver.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
            page = browser.new_page(viewport={"width": args.width, "height": 1400})
            for run, step, (a, b), label in VIEWS:
                page.goto(f"http://localhost:{port}/?run={run}&step={step}&a={a}&b={b}&tab=Circles")
                page.wait_for_selector('text="Embedding (W_E)"', timeout=90_000)
                page.wait_for_timeout(2500)  # let every chart draw
                path = out / f"circles-{run}-{label}.png"
                page.screenshot(path=str(path), full_page=True)
                image = Image.open(path)
                image.convert("P", palette=Image.ADAPTIVE, colors=128).save(path, optimize=True)
                print(f"{path}: step {step}, {image.size[0]}x{image.size[1]}, {path.stat().st_size // 1024} KB")
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=20)
    return 0


if __name__ == "__main__":
    sys.exit(main())
