"""Server time of the Compare page (Streamlit's AppTest; no browser), and the cold cost of the
progress measures it computes for a run without a timeline cache. Prints a table.

    python scripts/bench_compare.py [--rounds 5]

The page compares the bundled add-p113 with the sweep member wd1_frac0.6 (p = 31). Interactions
are measured interleaved, round by round, in one process: the first full run (timelines cached
beside the runs), switching the alignment, toggling the log step axis, adding a third run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
MEMBERS = ["sweep-p31/wd1_frac0.6_lr0.003_seed0", "sweep-p31/wd5_frac0.4_lr0.003_seed0"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    os.environ.setdefault("GROKVIZ_RUNS", str(REPO / "checkpoints"))
    os.chdir(REPO)  # run keys (and so URLs) are relative to the folder the app starts in
    import torch
    from streamlit.testing.v1 import AppTest

    from grokviz.storage.runs import open_run
    from grokviz.storage.timeline import timeline

    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    base = open_run(REPO / "checkpoints" / "add-p113")
    timeline(base)  # warm the cache beside the run (the page then reads it)
    times: dict[str, list[float]] = {}

    def timed(name: str, action) -> None:
        start = time.perf_counter()
        at = action()
        times.setdefault(name, []).append(time.perf_counter() - start)
        assert not at.exception and not at.error, [e.value for e in at.exception] + [e.value for e in at.error]

    cold = []
    for _ in range(args.rounds):
        at = AppTest.from_file(str(REPO / "app.py"), default_timeout=300)
        at.switch_page("grokviz/ui/pages/compare.py")
        at.query_params["compare"] = ["add-p113", MEMBERS[0]]
        timed("open the page on two runs (first run of a session)", at.run)
        timed("align by phase boundaries", lambda: at.radio(key="align").set_value("phase boundaries").run())
        timed("toggle the log step axis", lambda: at.toggle(key="log_x").set_value(True).run())
        timed("back to alignment by step", lambda: at.radio(key="align").set_value("step").run())
        keys = at.multiselect(key="compare").value
        timed(
            "add a third run",
            lambda: at.multiselect(key="compare").set_value(keys + [f"checkpoints/{MEMBERS[1]}"]).run(),
        )
        start = time.perf_counter()
        timeline(base, use_cache=False)
        cold.append(time.perf_counter() - start)

    print(f"Compare page, {args.rounds} rounds, torch {torch.__version__}, {os.cpu_count()} CPUs\n")
    print("| interaction | median | worst |")
    print("|---|---|---|")
    for name, values in times.items():
        print(f"| {name} | {statistics.median(values) * 1000:.0f} ms | {max(values) * 1000:.0f} ms |")
    n = len(base.steps())
    print(
        f"| progress measures of add-p113 without a cache ({n} checkpoints, p = 113) | "
        f"{statistics.median(cold):.1f} s | {max(cold):.1f} s |"
    )


if __name__ == "__main__":
    main()
