"""grokviz.charts and grokviz.views: every chart builds a valid Vega-Lite spec from small data,
and the shaping functions the app relies on do what they say."""

from __future__ import annotations

import json
from types import SimpleNamespace

import altair as alt
import numpy as np
import pandas as pd
import pytest
import torch

from grokviz.analysis.attention import attention_to
from grokviz.analysis.baseline import SplitMetrics
from grokviz.analysis.fourier import fourier_2d, fourier_basis
from grokviz.core.config import Config
from grokviz.core.tasks import make_dataset
from grokviz.storage.runs import write_run_file
from grokviz.ui import catalog, charts
from grokviz.ui.views import (
    circles,
    config,
    curves,
    frequencies,
    grids,
    headline,
    metrics,
    neurons,
    phases,
    prediction,
    spectra,
    stepping,
)


def spec(chart) -> dict:
    """The chart's Vega-Lite dict (Altair validates it against the schema on the way)."""
    return chart.to_dict()


def find(obj, key):
    """Every value stored under ``key`` anywhere in a nested spec."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k == key:
                yield v
            yield from find(v, key)
    elif isinstance(obj, list):
        for item in obj:
            yield from find(item, key)


def all_data(chart) -> list[dict]:
    d = chart.to_dict()
    return [row for rows in d.get("datasets", {}).values() for row in rows]


PHASES = pd.DataFrame({"phase": ["memorisation", "circuit formation"], "start": [0, 100], "end": [100, 400]})


# --- charts ----------------------------------------------------------------------------------


def test_curves_log_scale_rule_and_phases():
    frame = pd.DataFrame(
        {
            "step": [0, 10, 20, 0, 10, 20],
            "series": ["train"] * 3 + ["test"] * 3,
            "value": [1.0, 0.1, 0.0, 2.0, np.nan, 3.0],
        }
    )
    chart = charts.curves(
        frame, title="Loss", y_title="loss", log_y=True, step=10, phases=PHASES, colors=charts.SPLIT_COLORS
    )
    d = spec(chart)
    assert isinstance(chart, alt.LayerChart) and len(d["layer"]) == 3  # bands, lines, rule
    assert any(scale.get("type") == "log" for scale in find(d, "scale"))
    values = [row["value"] for row in all_data(chart) if "value" in row]
    assert 0.0 not in values and all(np.isfinite(values))  # no zero on a log axis, no NaN
    assert {"step": 10, "label": "step 10"} in all_data(chart)  # the current-step rule
    assert d["autosize"]["type"] == "fit-x"


def test_static_spec_and_step_rule():
    frame = pd.DataFrame({"step": np.arange(6000) % 100, "series": "a", "value": np.arange(6000.0) + 1})
    chart = charts.curves(frame, title="t", y_title="y", phases=PHASES)  # more rows than Altair's 5,000 guard
    static = charts.static_spec(chart)
    assert len(static["layer"]) == 2 and sum(len(v) for v in static["datasets"].values()) == 6000 + len(PHASES)
    json.dumps(static)  # plain JSON: what Streamlit sends
    ruled = charts.add_step_rule(static, 42, color="white")
    assert len(ruled["layer"]) == 3 and len(static["layer"]) == 2  # a copy, the cached spec is untouched
    assert ruled["layer"][-1]["data"]["values"][0]["step"] == 42
    assert ruled["layer"][-1]["mark"]["color"] == "white"


def test_phase_layer_only_lists_present_phases():
    d = spec(charts.phase_layer(PHASES))
    assert d["encoding"]["color"]["scale"]["domain"] == ["memorisation", "circuit formation"]


def test_spectrum_chart_marks_key_frequencies():
    frame = spectra.spectrum_frame(torch.tensor([0.1, 2.0, 0.3, 5.0]), key_frequencies=[2, 4])
    chart = charts.spectrum_chart(frame, title="W_E")
    rows = all_data(chart)
    labelled = {row["frequency"] for row in rows if row.get("kind") == "key frequency"}
    assert labelled == {2, 4}
    spec(chart)


def test_a_spectrum_swapped_into_the_template_equals_the_chart_built_for_it():
    # The Fourier tab builds one spectrum chart per run and swaps each step's data into it.
    first = spectra.spectrum_frame(torch.tensor([0.1, 2.0, 0.3, 5.0]), key_frequencies=[2, 4])
    later = spectra.spectrum_frame(torch.tensor([3.0, 0.2, 0.7, 1.5]), key_frequencies=[2, 4])
    template = charts.static_spec(charts.spectrum_chart(first, title="W_E at step 0", subtitle="s"))
    swapped = charts.with_spectrum(template, later, "W_E at step 100")
    built = charts.static_spec(charts.spectrum_chart(later, title="W_E at step 100", subtitle="s"))

    def by_layer(d):
        return [d["datasets"][layer["data"]["name"]] for layer in d["layer"]]

    assert by_layer(swapped) == by_layer(built)
    assert swapped["title"] == built["title"]
    assert by_layer(template)[0][1]["norm"] == 2.0  # the template itself is left as it was


def test_spectrum_heatmap_covers_each_checkpoint_span():
    history = spectra.spectrum_history({0: np.array([1.0, 1.0]), 100: np.array([0.0, 2.0]), 300: np.array([1.0, 0.0])})
    chart = charts.spectrum_heatmap(history, title="t", key_frequencies=[2], step=100)
    d = spec(chart)
    assert len(d["layer"]) == 3  # cells, key ticks, rule
    assert set(history["share"].round(6)) <= {0.0, 0.5, 1.0}
    assert history.groupby("step")["share"].sum().round(9).eq(1.0).all()


def test_correctness_grid_and_heatmap_are_square_and_fixed():
    correct = torch.zeros(5, 5, dtype=torch.bool)
    correct[0, 0] = True
    train = torch.zeros(5, 5, dtype=torch.bool)
    train[0] = True
    grid = grids.grid_status(correct, train)
    assert grid.set_index(["a", "b"]).loc[(0, 0), "status"] == "correct (train pair)"
    assert grid.set_index(["a", "b"]).loc[(4, 4), "status"] == "wrong (test pair)"
    d = spec(charts.correctness_grid(grid, title="g"))
    assert d["width"] == d["height"] and d["autosize"]["type"] == "pad"
    d = spec(charts.heatmap(np.arange(25.0).reshape(5, 5), title="h", marker=(1, 3)))
    assert d["width"] == d["height"]
    marker = [
        row
        for row in all_data(charts.heatmap(np.arange(25.0).reshape(5, 5), title="h", marker=(1, 3)))
        if row.get("value") == 8.0 and "row" not in row
    ]
    assert marker == [{"x": 3, "y": 1, "value": 8.0}]


def test_ablation_timeline_panels():
    frame = pd.DataFrame(
        {
            "step": [0, 0, 10, 10],
            "split": ["train", "test"] * 2,
            "when": ["before", "after"] * 2,
            "accuracy": [0.5, 0.1, 1.0, 0.0],
            "loss": [1.0, 2.0, 1e-7, 0.0],
        }
    )
    for metric in ("accuracy", "loss"):
        spec(charts.ablation_timeline(frame, metric, step=10, phases=PHASES))
    accuracy = {
        (r["step"], r["split"], r["when"]): r["accuracy"]
        for r in all_data(charts.ablation_timeline(frame, "accuracy"))
        if "accuracy" in r
    }
    assert accuracy == {
        (0, "train", "before"): 0.5,
        (0, "test", "after"): 0.1,
        (10, "train", "before"): 1.0,
        (10, "test", "after"): 0.0,
    }
    # Log scale: the zero loss is left out rather than drawn at -infinity.
    losses = [row["loss"] for row in all_data(charts.ablation_timeline(frame, "loss")) if "loss" in row]
    assert sorted(losses) == [1e-7, 1.0, 2.0]


def test_neuron_strip_rings_the_selected_neuron():
    groups = neurons.neuron_groups(
        torch.tensor([1.0, 2.0, 0.0, 3.0]),
        frequency=torch.tensor([3, 3, 0, 5]),
        clustered=torch.tensor([True, True, False, False]),
        dead=torch.tensor([False, False, True, False]),
        key_frequencies=[3],
    )
    assert list(groups["group"]) == ["k=3", "k=3", "dead", "unclustered"]
    assert list(groups["key"]) == [True, True, False, False]
    chart = charts.neuron_strip(groups, selected=1, title="n")
    assert len(spec(chart)["layer"]) == 2


def test_prediction_charts():
    logits = np.array([0.0, 5.0, 1.0, -1.0, 2.0])
    d = spec(charts.logits_chart(logits, answer=1, label=4, title="l"))
    kinds = {
        row["c"]: row["kind"]
        for row in all_data(charts.logits_chart(logits, answer=1, label=4, title="l"))
        if "kind" in row
    }
    assert kinds[4] == "correct answer" and kinds[1] == "model's answer (wrong)"
    assert d["layer"][0]["encoding"]["color"]["scale"]["domain"] == [
        "correct answer",
        "model's answer (wrong)",
        "other",
    ]
    bars = all_data(charts.contributions_chart({3: 1.5, 7: -0.5}, title="c"))
    assert bars == [
        {"frequency": "k=3", "value": 1.5, "sign": "helps"},
        {"frequency": "k=7", "value": -0.5, "sign": "hurts"},
    ]
    frame = prediction.waves_frame([3, 7], torch.ones(2, 5))
    assert set(frame["series"]) == {"k=3", "k=7", "sum"}
    assert np.allclose(frame[frame["series"] == "sum"]["value"], 2.0)
    marks = [row for row in all_data(charts.waves_chart(frame, label=2, title="w")) if "series" not in row]
    assert marks == [{"c": 2, "text": "correct c = 2"}]  # the rule at the correct answer
    rows = all_data(charts.attention_chart(np.array([[0.2, 0.7, 0.1], [0.5, 0.5, 0.0]]), a=1, b=2, title="a"))
    weights = {(row["head"], row["source"]): row["weight"] for row in rows}
    assert weights == {
        ("head 0", "a = 1"): 0.2,
        ("head 0", "b = 2"): 0.7,
        ("head 0", "="): 0.1,
        ("head 1", "a = 1"): 0.5,
        ("head 1", "b = 2"): 0.5,
        ("head 1", "="): 0.0,
    }


def test_curves_serialise_to_json_with_their_data_and_step_rule():
    frame = pd.DataFrame({"step": [0, 1], "series": ["a", "a"], "value": [1.0, 2.0]})
    chart = charts.curves(frame, title="t", y_title="y", step=1, phases=PHASES)
    text = json.dumps(chart.to_dict())
    assert '"value": 2.0' in text
    assert [row["value"] for row in all_data(chart) if row.get("series") == "a"] == [1.0, 2.0]
    assert any(row.get("step") == 1 and "series" not in row and "value" not in row for row in all_data(chart))


# --- views -----------------------------------------------------------------------------------


def test_downsample_keeps_ends_and_bounds_rows():
    frame = pd.DataFrame({"step": range(10_000), "x": range(10_000)})
    small = curves.downsample(frame, 100)
    assert len(small) <= 101 and small["step"].iloc[0] == 0 and small["step"].iloc[-1] == 9_999
    assert curves.downsample(frame.head(50), 100) is not None and len(curves.downsample(frame.head(50), 100)) == 50


def test_long_curves_downsamples_each_column_on_its_own_rows():
    steps = np.arange(10_000)
    test = np.where(steps % 10 == 0, 1.0, np.nan)  # an imported log: test loss every 10th row
    frame = pd.DataFrame({"step": steps, "train_loss": np.ones(10_000), "test_loss": test})
    long = curves.long_curves(frame, {"train_loss": "train", "test_loss": "test", "missing": "m"}, max_rows=200)
    assert set(long["series"]) == {"train", "test"}
    assert (long["series"] == "test").sum() >= 190  # not thinned to a handful by the NaN rows
    assert long["value"].notna().all()


def test_step_spans_tile_the_run():
    spans = curves.step_spans([0, 10, 30])
    assert list(spans["start"]) == [0, 5, 20] and list(spans["end"]) == [5, 20, 30]


def test_phase_table_and_phase_at():
    full = SimpleNamespace(memorisation_end=100, circuit_formation_end=300, cleanup_end=500)
    table = phases.phase_table(full, 1000)
    assert list(table["phase"]) == ["memorisation", "circuit formation", "cleanup", "after cleanup"]
    assert list(table["end"]) == [100, 300, 500, 1000]
    assert phases.phase_at(full, 50) == "memorisation" and phases.phase_at(full, 300) == "cleanup"
    assert phases.phase_at(full, 900) == "after cleanup"
    not_grokked = SimpleNamespace(memorisation_end=100, circuit_formation_end=None, cleanup_end=None)
    assert list(phases.phase_table(not_grokked, 400)["phase"]) == ["memorisation", "after memorisation"]
    assert phases.phase_at(not_grokked, 200) == "after memorisation"
    unknown = SimpleNamespace(memorisation_end=None, circuit_formation_end=None, cleanup_end=None)
    assert phases.phase_at(unknown, 5) == "unknown" and phases.phase_table(unknown, 10).empty


def test_frequency_blocks_light_a_pure_frequency():
    p, k = 13, 4
    x = torch.arange(p, dtype=torch.float64)
    w = 2 * np.pi * k / p
    neuron = 3.0 + torch.cos(w * x)[:, None] * torch.cos(w * x)[None, :] + torch.sin(w * x)[:, None]
    blocks = spectra.frequency_pair_norms(fourier_2d(neuron))
    bright = {tuple(ix) for ix in np.argwhere(blocks > 1e-6)}
    assert bright == {(k, k), (k, 0)}  # the mean (0, 0) is left out
    assert spectra.frequency_pair_norms(fourier_2d(neuron), centre=False)[0, 0] > 1
    assert fourier_basis(p).shape == (p, p)


def test_metrics_table_and_row():
    before = {s: SplitMetrics(loss=1.0, accuracy=0.5) for s in ("train", "test", "all")}
    after = {s: SplitMetrics(loss=2.0, accuracy=0.25) for s in ("train", "test", "all")}
    table = metrics.metrics_table(before, after)
    assert list(table.index) == ["train", "test", "all"]
    assert table.loc["test", "accuracy after"] == 0.25
    shown = metrics.metrics_display(table)
    assert shown.loc["test", "accuracy after"] == "25.0%" and shown.loc["train", "loss before"] == "1"
    assert headline.metrics_row(before) == {
        "train_accuracy": 0.5,
        "test_accuracy": 0.5,
        "train_loss": 1.0,
        "test_loss": 1.0,
    }


def test_log_row_and_neighbours():
    log = pd.DataFrame(
        {
            "step": [0, 20],
            "train_loss": [1.0, 0.5],
            "train_accuracy": [0.1, 0.9],
            "test_loss": [2.0, 1.5],
            "test_accuracy": [0.0, 0.2],
            "elapsed_s": [0, 1],
        }
    )
    assert headline.log_row_at(log, 20)["test_accuracy"] == 0.2
    assert headline.log_row_at(log, 10) is None
    assert stepping.previous_step([0, 5, 9], 9) == 5 and stepping.previous_step([0, 5], 0) is None
    assert stepping.next_step([0, 5, 9], 5) == 9 and stepping.next_step([0, 5], 5) is None


def test_headline_row_fills_what_the_log_lacks():
    full = {"train_accuracy": 1.0, "test_accuracy": 0.5, "train_loss": 0.1, "test_loss": 2.0}
    computed = {"train_accuracy": 0.9, "test_accuracy": 0.4, "train_loss": 0.2, "test_loss": 3.0}
    never = lambda: pytest.fail("evaluated although the log had everything")  # noqa: E731
    assert headline.headline_row(full, never) == full
    assert headline.headline_row(None, lambda: computed) == computed
    partial = dict(full, train_accuracy=float("nan"))
    assert headline.headline_row(partial, lambda: computed) == dict(full, train_accuracy=0.9)


def test_ints_in_range_and_labels():
    assert frequencies.ints_in_range(["3", "x", 99, 2, "3"], 1, 10) == [2, 3]
    assert frequencies.frequency_label(14, {14: 87}) == "14 · 87 neurons"
    assert frequencies.frequency_label(14, {14: 1}) == "14 · 1 neuron"
    assert frequencies.frequency_label(5, {}) == "5"


def test_default_neuron_prefers_the_biggest_cluster():
    table = pd.DataFrame(
        {
            "neuron": [0, 1, 2, 3],
            "frequency": [3, 5, 5, 0],
            "best_fve": [0.99, 0.9, 0.95, 0.0],
            "clustered": [True, True, True, False],
            "dead": [False, False, False, True],
        }
    )
    assert neurons.default_neuron(table) == 2


def test_fourier_note_only_for_other_tasks():
    assert config.fourier_note(Config(task="add", p=5)) is None
    assert config.fourier_note(Config(task="sub", p=5)) is None
    assert "mul" in config.fourier_note(Config(task="mul", p=5))


def test_correct_answer():
    assert grids.correct_answer(Config(task="add", p=7), 5, 4) == 2
    assert grids.correct_answer(Config(task="div", p=7), 3, 0) is None
    assert grids.correct_answer(Config(task="div", p=7), 6, 3) == 2


def test_pair_split_and_valid_grid():
    dataset = make_dataset("div", 5, 0.5, 0)
    assert grids.pair_split(dataset, 1, 0) == "not in the task"
    assert grids.valid_grid(dataset).sum() == 20
    a, b = int(dataset.a[dataset.train_idx[0]]), int(dataset.b[dataset.train_idx[0]])
    assert grids.pair_split(dataset, a, b) == "train pair"


def test_discover_runs_reports_broken_folders(tmp_path):
    root, extra = tmp_path / "checkpoints", tmp_path / "more"
    write_run_file(root / "good", Config(p=5))
    (root / "broken").mkdir(parents=True)
    (root / "broken" / "run.json").write_text("{not json")
    write_run_file(extra / "other", Config(p=7))
    choices = catalog.discover_runs(root, str(extra), base_dir=tmp_path)
    assert set(choices.runs) == {"checkpoints/good", "more/other"}
    assert choices.labels["checkpoints/good"] == "good"  # bundled runs: by name
    assert choices.labels["more/other"] == "more/other"  # others: by path (also the URL value)
    assert any("broken" in problem and "run.json" in problem for problem in choices.problems)
    # A run folder given directly, and a folder that does not exist.
    assert set(catalog.discover_runs(root, str(extra / "other"), tmp_path).runs) == {"checkpoints/good", "more/other"}
    missing = catalog.discover_runs(root, str(tmp_path / "nope"), tmp_path)
    assert any("nope" in problem for problem in missing.problems) and "checkpoints/good" in missing.runs


def test_probe_table_marks_the_constant():
    terms = pd.DataFrame(
        {
            "term": ["const", "cos(wa)"],
            "value": [1.0, 0.5],
            "coefficient": [2.0, 1.0],
            "contribution": [2.0, 0.5],
            "correlation": [float("nan"), 0.25],
        }
    )
    table = neurons.probe_table(terms)
    assert list(table["correlation"]) == ["n/a", "+0.250"]
    assert table["value"].tolist() == [1.0, 0.5]


def test_spectrum_frame_shape():
    frame = spectra.spectrum_frame(np.ones(56), [14, 35])
    assert len(frame) == 56 and frame["key"].sum() == 2 and frame["frequency"].iloc[0] == 1


def test_attention_and_ablation_shortcuts_match_the_library():
    from grokviz.analysis import ablation, baseline, projections
    from grokviz.core.fast_path import forward_all_pairs
    from grokviz.core.params import init_params

    cfg = Config(p=11, d_model=16, d_mlp=32, n_heads=2, d_head=8)
    params = init_params(cfg)
    pattern = prediction.attention_at(params, 3, 4)
    assert pattern.shape == (2, 3) and np.allclose(pattern.sum(axis=1), 1.0)
    assert np.allclose(pattern, attention_to(params)[:, 3, 4].numpy(), atol=1e-6)
    dataset = make_dataset("add", 11, 0.5, 0)
    shell = metrics.logits_baseline(forward_all_pairs(params))
    full = baseline.baseline(params)
    for site in projections.SITES:
        for mode in projections.MODES:
            base = full if site == "neurons" else shell
            mine = ablation.ablate_baseline(base, params, dataset, [1, 3], mode, site)
            theirs = ablation.ablate(params, dataset, [1, 3], mode, site)
            assert mine.after["test"].loss == pytest.approx(theirs.after["test"].loss, rel=1e-5)
            assert torch.equal(mine.correct_after, theirs.correct_after)
    frame = metrics.ablation_over_run([0, 5], lambda step: ablation.ablate(params, dataset, [2]))
    assert len(frame) == 8 and set(frame["when"]) == {"before", "after"}


def test_circle_frames_and_chart_mark_a_b_and_the_answer():
    from grokviz.analysis.circle import circle
    from grokviz.analysis.group import group_for
    from grokviz.core.params import init_params

    cfg = Config(task="mul", p=11, d_model=16, d_mlp=32, n_heads=2, d_head=8)
    drawn = circle(init_params(cfg), 2, "embedding", group_for("mul", 11))
    points, marked = circles.circle_frames(drawn, {"a": 3, "b": 3, "answer": 9})
    assert list(points["token"]) == drawn.tokens.tolist() and len(points) == 10  # 0 left out
    assert list(marked["role"]) == ["a = b", "answer"] and list(marked["token"]) == [3, 9]
    row = points[points["token"] == 9].iloc[0]
    assert marked.iloc[1]["x"] == row["x"] and marked.iloc[1]["y"] == row["y"]
    _, none_marked = circles.circle_frames(drawn, {"a": 0, "b": None, "answer": 0})  # 0 has no place
    assert none_marked.empty
    spec = charts.circle_chart(points, marked, title="k = 2").to_dict()
    assert len(spec["layer"]) == 4
