"""How fast the explorer answers, on this machine: prints a table (a measurement, not a test).

    python scripts/bench_app.py [--runs checkpoints] [--run add-p113] [--no-browser]

* Server time of one rerun (Streamlit's AppTest runs the script in-process, as the server
  does): after moving the step slider to a step not seen before, per tab, and after changing the
  ablation (frequencies, mode, site) on the Ablation tab. Budgets: 300 ms and 150 ms.
* First chart: seconds from starting ``streamlit run app.py`` until headless Chromium has drawn
  the first chart (budget 4 s; the explorer draws the log's charts before it imports torch), and
  until the whole first page is there (its headline metrics); skipped without /usr/bin/chromium.
* Every interaction: the median of all the reruns above (budget 100 ms).

Run it on the machine you care about (the budgets are for a 2-core CPU at p = 113) with nothing
else busy; the table says how many cores there were and the load when it started.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
APP = REPO / "app.py"
TABS = ["Training", "Fourier", "Ablation", "Neurons", "Prediction & attention"]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
STEP_BUDGET_MS, ABLATION_BUDGET_MS, FIRST_CHART_BUDGET_S, INTERACTION_BUDGET_MS = 300, 150, 4.0, 100


def timed_run(at) -> float:
    start = time.perf_counter()
    at.run()
    elapsed = (time.perf_counter() - start) * 1000
    if at.exception:
        raise RuntimeError(f"the app raised: {[e.value for e in at.exception]}")
    return elapsed


def bench_steps(steps: list[int], per_tab: int) -> list[tuple[str, list[float]]]:
    """Move the slider to steps never shown before, one tab at a time."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(APP), default_timeout=600)
    at.run()  # imports, the run's log and progress measures: the start-up cost, not measured here
    rows = []
    # Spread the steps over the run and give each tab its own, so every move is a first visit.
    pool = steps[::-1][1:]
    for index, tab in enumerate(TABS):
        at.session_state["tab"] = tab
        at.run()  # open the tab at the current step (its one-off work for the run)
        mine = pool[index :: len(TABS)][:per_tab]
        times = []
        for step in mine:
            at.select_slider(key="step").set_value(step)
            times.append(timed_run(at))
        rows.append((f"step slider, {tab} tab", times))
    return rows


def bench_ablation(repeats: int) -> list[tuple[str, list[float]]]:
    """Change the ablation at one step (the step's logits and activations already computed)."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(APP), default_timeout=600)
    at.query_params["tab"] = "Ablation"
    at.run()
    options = at.multiselect(key="freqs").options
    key_freqs = list(at.multiselect(key="freqs").value)
    rows = []
    for site in ("logits", "neurons", "embedding"):
        at.radio(key="site").set_value(site)
        at.run()  # the site's per-step work (for neurons: the activations' 2-D transform)
        times = []
        for repeat in range(repeats):
            # Each change is new: a mode flip, then a different frequency set.
            at.radio(key="mode").set_value("keep" if repeat % 2 == 0 else "remove")
            times.append(timed_run(at))
            extra = int(options[(repeat * 7) % len(options)])
            chosen = sorted(set(key_freqs[: max(1, len(key_freqs) - 1 - repeat % 2)]) | {extra})
            at.multiselect(key="freqs").set_value(chosen)
            times.append(timed_run(at))
        rows.append((f"change ablation, site={site}", times))
    return rows


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        return sock.getsockname()[1]


def bench_first_page() -> tuple[tuple[float, float] | None, str]:
    """Seconds from `streamlit run` to the first chart drawn in headless Chromium, and to the
    whole first page (its headline metrics)."""
    if not CHROMIUM.is_file():
        return None, f"skipped: no Chromium at {CHROMIUM}"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None, "skipped: the playwright package is not installed"
    port = _free_port()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        start = time.perf_counter()  # the browser is already open, as a person's would be
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamlit",
                "run",
                str(APP),
                "--server.headless",
                "true",
                "--server.port",
                str(port),
            ],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            while True:
                try:
                    with urllib.request.urlopen(f"http://localhost:{port}/_stcore/health", timeout=1):
                        break
                except OSError:
                    if server.poll() is not None or time.perf_counter() - start > 120:
                        return None, "failed: the server did not start"
                    time.sleep(0.05)
            page.goto(f"http://localhost:{port}", wait_until="commit")
            # A chart drawn at its size (the explorer first draws 1-pixel empty charts, only to have
            # the browser load its chart renderer early: those are not charts to a person).
            page.wait_for_function(
                """() => [...document.querySelectorAll(
                    '[data-testid="stVegaLiteChart"] canvas, [data-testid="stVegaLiteChart"] svg')]
                    .some(e => e.getBoundingClientRect().height > 50)""",
                timeout=120_000,
            )
            first_chart = time.perf_counter() - start
            page.wait_for_selector('[data-testid="stMetric"]', timeout=120_000)
            return (first_chart, time.perf_counter() - start), ""
        finally:
            server.terminate()
            server.wait(timeout=20)
            browser.close()


def verdict(value: float, budget: float) -> str:
    return "ok" if value <= budget else "OVER"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--runs",
        default=os.environ.get("GROKVIZ_RUNS", str(REPO / "checkpoints")),
        help="folder of runs the app reads (default: $GROKVIZ_RUNS or checkpoints/)",
    )
    parser.add_argument("--run", default="add-p113", help="the run to measure (the app's default run)")
    parser.add_argument("--steps-per-tab", type=int, default=5, help="slider moves measured per tab")
    parser.add_argument("--repeats", type=int, default=3, help="ablation changes per site (two timings each)")
    parser.add_argument("--no-browser", action="store_true", help="skip the first-page measurement")
    parser.add_argument("--starts", type=int, default=3, help="app starts measured in the browser")
    args = parser.parse_args(argv)

    os.environ["GROKVIZ_RUNS"] = str(Path(args.runs).resolve())
    sys.path.insert(0, str(REPO))
    from grokviz.storage.runs import open_run

    run = open_run(Path(args.runs) / args.run)
    steps = run.steps()
    print(
        f"run {run.path} (p = {run.config.p}, {len(steps)} checkpoints); {os.cpu_count()} CPUs, "
        f"load average at start {os.getloadavg()[0]:.2f}"
    )

    rows = []
    if not args.no_browser:
        starts, note = [], ""
        for _ in range(args.starts):  # the first while no server has warmed the disk caches
            seconds, note = bench_first_page()
            if seconds is None:
                break
            starts.append(seconds)
        first_charts = [chart for chart, _ in starts] or None
        whole_pages = [whole for _, whole in starts] or None
        rows.append(("first chart in the browser (s)", len(starts), first_charts, FIRST_CHART_BUDGET_S, note))
        rows.append(("whole first page in the browser (s)", len(starts), whole_pages, None, note))
    every = []
    for name, times in bench_steps(steps, args.steps_per_tab):
        rows.append((name + " (ms)", len(times), times, STEP_BUDGET_MS, ""))
        every += times
    for name, times in bench_ablation(args.repeats):
        rows.append((name + " (ms)", len(times), times, ABLATION_BUDGET_MS, ""))
        every += times
    rows.append(("every interaction above (ms)", len(every), every, INTERACTION_BUDGET_MS, ""))

    print()
    print(f"| {'measurement':<44} | {'n':>7} | {'median':>8} | {'max':>8} | {'budget':>6} | verdict |")
    print(f"|{'-' * 46}|{'-' * 9}|{'-' * 10}|{'-' * 10}|{'-' * 8}|---------|")
    for name, n, values, budget, note in rows:
        shown = f"{budget:>6g}" if budget is not None else f"{'-':>6}"
        if not values:
            print(f"| {name:<44} | {n:>7} | {'-':>8} | {'-':>8} | {shown} | {note} |")
            continue
        median, worst = statistics.median(values), max(values)
        fmt = "{:8.2f}" if "(s)" in name else "{:8.0f}"
        judged = verdict(median, budget) if budget is not None else "-"
        print(f"| {name:<44} | {n:>7} | {fmt.format(median)} | {fmt.format(worst)} | {shown} | {judged:<7} |")
    print("\nverdict: by the median (the max shows the worst case).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
