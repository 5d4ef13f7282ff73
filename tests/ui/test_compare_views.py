"""The Compare page's shaping (grokviz.ui.views.compare) and its chart, without Streamlit: phase
alignment against a plain per-step reference, milestones read off small hand-made logs, config
differences, and the chart's layers."""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd
import pytest

from grokviz.analysis.progress import Phases
from grokviz.ui.charts.compare import compare_curves
from grokviz.ui.views import compare as cv


def reference_align(step: float, anchors, reference) -> float:
    """The alignment written out per step: find the segment, interpolate; slope 1 past the last anchor."""
    pairs = []
    for own, ref in zip(anchors, reference):
        if pairs and (own <= pairs[-1][0] or ref <= pairs[-1][1]):
            continue
        pairs.append((own, ref))
    if step >= pairs[-1][0]:
        return pairs[-1][1] + (step - pairs[-1][0])
    for (a0, r0), (a1, r1) in zip(pairs, pairs[1:]):
        if a0 <= step <= a1:
            return r0 + (step - a0) * (r1 - r0) / (a1 - a0)
    return pairs[0][1] + (step - pairs[0][0])


@pytest.mark.parametrize(
    "anchors, reference",
    [
        ([0, 100, 400, 900], [0, 1380, 7340, 10000]),  # all phases
        ([0, 100], [0, 1380, 7340, 10000]),  # memorised only: aligned on memorisation, then own steps
        ([0, 200, 200, 900], [0, 1000, 3000, 5000]),  # a phase of zero length is skipped
        ([0], [0, 50]),  # never fit: unchanged
    ],
)
def test_align_steps_matches_a_per_step_reference(anchors, reference):
    steps = np.array([0, 1, 50, 99, 100, 101, 250, 400, 650, 900, 901, 2000, 30000])
    got = cv.align_steps(steps, anchors, reference)
    expected = [reference_align(float(s), anchors, reference) for s in steps]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9)
    # Anchors land on the reference's, and the map keeps the order of steps.
    own, ref = cv.matched_anchors(anchors, reference)
    np.testing.assert_allclose(cv.align_steps(own, anchors, reference), ref)
    assert np.all(np.diff(got) > 0)


def test_phase_anchors_stop_at_the_first_phase_not_reached():
    assert cv.phase_anchors(Phases(140, 7340, 10000)) == [0, 140, 7340, 10000]
    assert cv.phase_anchors(Phases(140, None, None)) == [0, 140]
    assert cv.phase_anchors(Phases(None, None, None)) == [0]


def make_log(steps, train_accuracy, test_accuracy, test_loss=None) -> pd.DataFrame:
    n = len(steps)
    return pd.DataFrame(
        {
            "step": steps,
            "train_loss": np.linspace(4, 0.01, n),
            "train_accuracy": train_accuracy,
            "test_loss": np.linspace(5, 0.1, n) if test_loss is None else test_loss,
            "test_accuracy": test_accuracy,
        }
    )


def run_data(label, log, phases, key_counts=None, config=None, timeline=None) -> cv.RunData:
    return cv.RunData(
        label=label,
        config=config or {"p": 31, "lr": 0.001},
        log=log,
        timeline=timeline,
        phases=phases,
        key_counts=key_counts,
        last_step=int(log["step"].max()) if log is not None else None,
    )


def two_runs() -> list[cv.RunData]:
    slow = make_log(
        [0, 10, 20, 30, 40, 50], [0.1, 0.995, 1, 1, 1, 1], [0.0, 0.01, 0.5, 0.991, 0.9995, 1.0]
    )  # memorised at 10, grokked (99%) at 30, 99.9% at 40
    fast = make_log([0, 10, 20, 30], [0.2, 1, 1, 1], [0.0, 0.999, 1, 1])  # everything at 10
    return [
        run_data("slow", slow, Phases(10, 20, 40), {8: 144, 1: 96}, {"p": 31, "lr": 0.001, "grokfast": None}),
        run_data(
            "fast",
            fast,
            Phases(5, 8, 10),
            {2: 7},
            {"p": 31, "lr": 0.001, "grokfast": {"kind": "ema", "alpha": 0.98, "lamb": 2.0}},
        ),
    ]


def test_milestones_are_read_off_the_logs():
    table = cv.milestone_table(two_runs())
    c = cv.MILESTONE_COLUMNS
    slow, fast = table.iloc[0], table.iloc[1]
    assert (slow[c["memorised"]], slow[c["grokked"]], slow[c["full"]]) == (10, 30, 40)
    assert (fast[c["memorised"]], fast[c["grokked"]], fast[c["full"]]) == (10, 10, 10)
    assert (slow[c["memorisation"]], slow[c["circuit formation"]], slow[c["cleanup"]]) == (10, 20, 40)
    assert slow[c["key"]] == "1 (96), 8 (144)"  # sorted by frequency
    assert slow[c["final_test_accuracy"]] == 1.0 and slow[c["last"]] == 50
    assert cv.speedups(table) == ["fast: step 10 against 40 for slow, 4× fewer steps."]
    shown = cv.milestone_display(table)
    assert list(shown.columns) == ["milestone", "slow", "fast"]
    assert shown.set_index("milestone").loc[c["final_test_accuracy"], "slow"] == "100.0%"


def test_milestones_of_a_run_that_never_grokked_are_blank():
    never = run_data("never", make_log([0, 10, 20], [0.1, 1, 1], [0, 0.1, 0.2]), Phases(20, None, None), None)
    table = cv.milestone_table([two_runs()[0], never])
    c = cv.MILESTONE_COLUMNS
    assert pd.isna(table.iloc[1][c["grokked"]]) and pd.isna(table.iloc[1][c["circuit formation"]])
    assert table.iloc[1][c["key"]] == "n/a"
    assert cv.speedups(table) == ["never never reached it (so far)."]
    shown = cv.milestone_display(table).set_index("milestone")
    assert shown.loc[c["grokked"], "never"] == "" and shown.loc[c["grokked"], "slow"] == "30"


def test_config_differences_list_only_the_fields_that_differ_and_flatten_nested_ones():
    diff = cv.config_differences({run.label: run.config for run in two_runs()})
    assert list(diff.columns) == ["setting", "slow", "fast"]
    assert list(diff["setting"]) == ["grokfast", "grokfast.kind", "grokfast.alpha", "grokfast.lamb"]
    rows = diff.set_index("setting")
    assert rows.loc["grokfast", "slow"] == "default" and rows.loc["grokfast", "fast"] == "n/a"
    assert rows.loc["grokfast.lamb", "fast"] == "2.0" and rows.loc["grokfast.lamb", "slow"] == "n/a"
    same = cv.config_differences({"a": {"p": 31}, "b": {"p": 31}})
    assert len(same) == 0


def test_default_selection_is_the_bundled_pair_when_both_are_there():
    labels = {"checkpoints/add-p113": "add-p113", "x/add-p113-grokfast": "add-p113-grokfast", "s/m": "s/m"}
    assert cv.default_selection(labels) == ["checkpoints/add-p113", "x/add-p113-grokfast"]
    assert cv.default_selection({"checkpoints/add-p113": "add-p113", "s/m": "s/m"}) == []


def test_curves_carry_each_runs_own_step_and_the_aligned_x():
    runs = two_runs()
    mappers = cv.x_mapper(runs, cv.ALIGN_PHASES, 0)
    frame = cv.run_curves(runs, "log", {"test_loss": "test", "train_loss": "train"}, mappers)
    assert set(frame["run"]) == {"slow", "fast"} and set(frame["series"]) == {"test", "train"}
    fast = frame[(frame["run"] == "fast") & (frame["series"] == "test")]
    # fast's phase ends (5, 8, 10) go onto slow's (10, 20, 40); after 10, its own steps.
    np.testing.assert_allclose(fast["x"], [0, 40, 50, 60])
    slow = frame[frame["run"] == "slow"]
    np.testing.assert_array_equal(slow["x"], slow["step"])  # the reference is not moved
    marks = cv.boundary_marks(runs, mappers).set_index(["run", "phase"])
    assert marks.loc[("fast", "cleanup ends"), "x"] == 40 and marks.loc[("fast", "cleanup ends"), "step"] == 10
    by_step = cv.run_curves(runs, "log", {"test_loss": "test"}, cv.x_mapper(runs, cv.ALIGN_STEP, None))
    np.testing.assert_array_equal(by_step["x"], by_step["step"])
    assert cv.reference_run([runs[1], run_data("n", runs[0].log, Phases(None, None, None))]) == 0


def test_long_curves_are_downsampled_per_run():
    log = make_log(np.arange(0, 20000, 10), np.ones(2000), np.ones(2000))
    runs = [run_data("a", log, Phases(None, None, None)), run_data("b", log.iloc[:50], Phases(None, None, None))]
    frame = cv.run_curves(runs, "log", {"test_loss": "test"}, cv.x_mapper(runs, cv.ALIGN_STEP, None), max_points=100)
    counts = frame.groupby("run").size()
    assert counts["a"] <= 102 and counts["b"] == 50
    a = frame[frame["run"] == "a"]
    assert a["step"].iloc[0] == 0 and a["step"].iloc[-1] == 19990  # first and last kept


def test_compare_chart_layers_and_log_axes_drop_what_they_cannot_show():
    runs = two_runs()
    mappers = cv.x_mapper(runs, cv.ALIGN_STEP, None)
    frame = cv.run_curves(runs, "log", {"test_loss": "test", "train_loss": "train"}, mappers)
    frame.loc[0, "value"] = 0.0  # no place on a log axis
    bands = pd.DataFrame({"phase": ["memorisation", "circuit formation"], "start": [0, 10], "end": [10, 20]})
    chart = compare_curves(
        frame,
        runs=["slow", "fast"],
        title="Loss",
        y_title="loss",
        log_y=True,
        log_x=True,
        boundaries=cv.boundary_marks(runs, mappers),
        bands=bands,
    )
    assert isinstance(chart, alt.LayerChart)
    spec = chart.to_dict()
    assert len(spec["layer"]) == 3  # bands, lines, phase-end rules
    datasets = list(spec["datasets"].values())
    lines = next(d for d in datasets if d and "series" in d[0])
    assert all(row["value"] > 0 and row["x"] > 0 for row in lines)  # step 0 and the zero loss dropped
    assert spec["layer"][1]["encoding"]["x"]["scale"]["type"] == "log"
    colours = spec["layer"][1]["encoding"]["color"]["scale"]
    assert colours["domain"] == ["slow", "fast"]
    assert spec["layer"][2]["encoding"]["color"]["scale"] == colours  # rules in the run's colour
