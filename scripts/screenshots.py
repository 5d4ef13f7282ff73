"""Screenshots of app views: starts the app headless, opens each view by URL in the system
Chromium and saves full-page PNGs (128-colour palette, so they stay small enough to commit).

    python scripts/screenshots.py --out docs/screenshots torch-encoder-p97:6000:Training torch-encoder-p97:6000:Ablation:site=neurons

Each view is RUN:STEP:TAB[:KEY=VALUE,...] (extra URL query parameters). Needs /usr/bin/chromium
and the playwright package (no browser is downloaded). Not a test.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@contextlib.contextmanager
def app_server(runs: Path) -> Iterator[int]:
    """`streamlit run app.py` on a free localhost port, serving ``runs``; yields the port."""
    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true"]
        + ["--server.port", str(port), "--browser.gatherUsageStats", "false"],
        cwd=REPO,
        env=dict(os.environ, GROKVIZ_RUNS=str(runs)),
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
        yield port
    finally:
        server.terminate()
        server.wait(timeout=20)


def shoot(port: int, views: list[tuple[dict[str, str], str, Path]], width: int = 1500) -> None:
    """Each (query, text to wait for, PNG path): open the view, wait for the text and the charts, save."""
    from PIL import Image
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        page = browser.new_page(viewport={"width": width, "height": 1400})
        for query, wait_for, path in views:
            page.goto(f"http://localhost:{port}/?{urllib.parse.urlencode(query)}")
            page.wait_for_selector(f'text="{wait_for}"', timeout=120_000)
            page.wait_for_timeout(3000)  # let every chart draw
            page.screenshot(path=str(path), full_page=True)
            image = Image.open(path)
            image.convert("P", palette=Image.ADAPTIVE, colors=128).save(path, optimize=True)
            print(f"{path}: {image.size[0]}x{image.size[1]}, {path.stat().st_size // 1024} KB")
        browser.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("views", nargs="+", help="RUN:STEP:TAB[:KEY=VALUE,...]")
    parser.add_argument("--out", default="docs/screenshots")
    parser.add_argument("--runs", default=str(REPO / "checkpoints"), help="folder of runs the app serves")
    parser.add_argument("--width", type=int, default=1500)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    planned = []
    for text in args.views:
        run, step, tab, *extra = text.split(":")
        query = {"run": run, "step": step, "tab": tab}
        for pair in ",".join(extra).split(",") if extra else []:
            key, _, value = pair.partition("=")
            query[key] = value
        name = "-".join(
            [run, tab.split()[0].lower(), step, *(v for k, v in query.items() if k not in ("run", "step", "tab"))]
        )
        planned.append((query, "Test accuracy", out / f"{name}.png"))
    with app_server(Path(args.runs)) as port:
        shoot(port, planned, args.width)
    return 0


if __name__ == "__main__":
    sys.exit(main())
