"""Server time of the Compare page (Streamlit's AppTest; no browser), and the cold cost of the
progress measures it computes for a run without a timeline cache. Prints a table.

    python scripts/bench_compare.py [--rounds 5]

The page compares the bundled add-p113 with the sweep member wd1_frac0.6 (p = 31). Interactions
are measured round by round in one process, each twice: the first time (chart caches cleared;
timelines cached beside the runs, as after a first visit) and when the view was seen before.
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
    import streamlit as st

    times: dict[tuple[str, str], list[float]] = {}

    def timed(kind: str, name: str, action) -> None:
        start = time.perf_counter()
        at = action()
        times.setdefault((name, kind), []).append(time.perf_counter() - start)
        assert not at.exception and not at.error, [e.value for e in at.exception] + [e.value for e in at.error]

    def session(kind: str) -> None:
        at = AppTest.from_file(str(REPO / "app.py"), default_timeout=300)
        at.switch_page("grokviz/ui/pages/compare.py")
        at.query_params["compare"] = ["add-p113", MEMBERS[0]]
        timed(kind, "open the page on two runs", at.run)
        timed(kind, "align by phase boundaries", lambda: at.radio(key="align").set_value("phase boundaries").run())
        timed(kind, "toggle the log step axis", lambda: at.toggle(key="log_x").set_value(True).run())
        timed(kind, "back to alignment by step", lambda: at.radio(key="align").set_value("step").run())
        keys = at.multiselect(key="compare").value
        more = keys + [f"checkpoints/{MEMBERS[1]}"]
        timed(kind, "add a third run", lambda: at.multiselect(key="compare").set_value(more).run())

    session("warm-up")  # imports, and the key frequencies of each run's last checkpoint (cached resources)
    cold = []
    for _ in range(args.rounds):
        st.cache_data.clear()  # charts, logs, phases: built again (timelines stay, as beside the runs)
        session("first time")
        session("seen before")
        start = time.perf_counter()
        timeline(base, use_cache=False)
        cold.append(time.perf_counter() - start)

    print(
        f"Compare page, server time per rerun (AppTest), median of {args.rounds} rounds; torch {torch.__version__}, "
        f"{os.cpu_count()} CPUs\n"
    )
    print("| interaction | first time (charts built) | seen before (cached specs) |")
    print("|---|---|---|")
    for name in dict.fromkeys(name for name, _ in times):
        first = statistics.median(times[(name, "first time")]) * 1000
        again = statistics.median(times[(name, "seen before")]) * 1000
        print(f"| {name} | {first:.0f} ms | {again:.0f} ms |")
    n = len(base.steps())
    print(
        f"\nProgress measures of add-p113 without a cache ({n} checkpoints, p = 113): "
        f"median {statistics.median(cold):.1f} s, worst {max(cold):.1f} s"
    )


if __name__ == "__main__":
    main()
