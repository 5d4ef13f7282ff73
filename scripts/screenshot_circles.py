"""Screenshots of the Circles tab for the bundled runs at three steps (memorisation, circuit formation,
after cleanup): starts the app headless, opens each view by URL in the system Chromium, saves PNGs.

    python scripts/screenshot_circles.py --out docs/screenshots

Needs /usr/bin/chromium and the playwright package (no browser is downloaded). Not a test.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from screenshots import REPO, app_server, shoot  # noqa: E402

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
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    planned = [
        (
            {"run": run, "step": step, "a": a, "b": b, "tab": "Circles"},
            "Embedding (W_E)",
            out / f"circles-{run}-{label}.png",
        )
        for run, step, (a, b), label in VIEWS
    ]
    with app_server(REPO / "checkpoints") as port:
        shoot(port, planned, args.width)
    return 0


if __name__ == "__main__":
    sys.exit(main())
