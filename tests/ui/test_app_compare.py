"""The app's Compare page (AppTest, no browser): two bundled runs on one set of axes, their
milestones and config differences checked against values computed here from the run folders, the
phase alignment, and the URL state, defaults and limits on tiny runs trained into a temporary folder."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df
from streamlit.testing.v1 import AppTest

from grokviz.analysis.neurons import key_frequencies, neuron_activations, neuron_stats
from grokviz.analysis.progress import phase_boundaries
from grokviz.core.config import Config
from grokviz.storage.runs import open_run
from grokviz.storage.timeline import timeline
from grokviz.training.single import train
from grokviz.ui.views import compare as cv

CHECKPOINTS = Path(__file__).resolve().parents[2] / "checkpoints"
COMPARE_PAGE = "grokviz/ui/pages/compare.py"  # relative to app.py, as AppTest.switch_page wants it
MEMBER = "sweep-p31/wd1_frac0.6_lr0.003_seed0"  # grokked at 1,020 (the sweep's README table)
CHART_TITLES = [
    "Loss",
    "Accuracy",
    "Restricted loss",
    "Excluded loss",
    "Gini of the Fourier spectra",
    "Sum of squared weights",
]


def open_compare(new_app, **query) -> AppTest:
    at = new_app(**query)
    at.switch_page(COMPARE_PAGE)
    return at.run()


def charts(at: AppTest) -> dict[str, tuple[dict, dict]]:
    """Each chart on the page by title: (its Vega-Lite spec, its datasets as frames)."""
    out = {}
    for element in at.get("vega_lite_chart"):
        spec = json.loads(element.proto.spec)
        # Charts drawn from a cached spec carry their data in it; Altair charts as Arrow beside it.
        frames = {name: pd.DataFrame(rows) for name, rows in spec.get("datasets", {}).items()}
        frames.update({d.name: convert_arrow_bytes_to_pandas_df(d.data.data) for d in element.proto.datasets})
        out[spec["title"]["text"]] = (spec, frames)
    return out


FRAME_COLUMNS = {"lines": {"run", "series", "x"}, "rules": {"run", "phase", "x"}, "bands": {"phase", "start"}}


def chart_frame(at: AppTest, title: str, kind: str):
    """One layer's data of a chart: its "lines", phase-end "rules" or "bands"."""
    _, frames = charts(at)[title]
    return next(f for f in frames.values() if FRAME_COLUMNS[kind] <= set(f.columns))


def table(at: AppTest, first_column: str):
    return next(d.value for d in at.dataframe if d.value.columns[0] == first_column).set_index(first_column)


@pytest.fixture
def bundled_pair(monkeypatch) -> tuple[Path, Path]:
    base, member = CHECKPOINTS / "add-p113", CHECKPOINTS / MEMBER
    for run in (base, member):
        if not (run / "run.json").is_file():
            pytest.skip(f"bundled run missing at {run}")
    monkeypatch.setenv("GROKVIZ_RUNS", str(CHECKPOINTS))
    return base, member


def test_two_bundled_runs_share_axes_and_their_table_matches_the_run_folders(bundled_pair, new_app, check):
    base_dir, member_dir = bundled_pair
    at = check(open_compare(new_app, compare=["add-p113", MEMBER]))
    assert [run.split("/")[-1] for run in at.multiselect(key="compare").value] == ["add-p113", MEMBER.split("/")[1]]
    assert not at.select_slider  # a page of its own: no step slider, no (a, b)
    assert list(charts(at)) == CHART_TITLES
    labels = ["add-p113", MEMBER]

    expected = {}
    for label, folder in zip(labels, (base_dir, member_dir)):
        run = open_run(folder)
        log, progress = run.log(), timeline(run)
        last = run.steps()[-1]
        counts = key_frequencies(neuron_stats(neuron_activations(run.load(last))))
        expected[label] = (log, progress, phase_boundaries(log, progress), counts, last)

    # Every run's curves are on each chart, at its own steps, with its own values.
    loss = chart_frame(at, "Loss", "lines")
    weights = chart_frame(at, "Sum of squared weights", "lines")
    for label, (log, progress, *_) in expected.items():
        test = loss[(loss["run"] == label) & (loss["series"] == "test")]
        logged = log.set_index("step")["test_loss"]
        # Cached specs carry their data as JSON with 10 decimals (charts.static_spec): atol 1e-10.
        np.testing.assert_allclose(test["value"], logged.loc[test["step"]].to_numpy(), rtol=1e-9, atol=1e-10)
        assert test["step"].iloc[-1] == log["step"].max()
        np.testing.assert_array_equal(test["x"], test["step"])  # aligned by step: x is the step
        norm = weights[weights["run"] == label]
        assert list(norm["step"]) == list(progress["step"])
        np.testing.assert_allclose(norm["value"], progress["sum_sq_weights"], rtol=1e-9)

    milestones = table(at, "milestone")
    c = cv.MILESTONE_COLUMNS
    for label, (log, _, phases, counts, last) in expected.items():
        column = milestones[label]
        fit = int(log["step"][log["train_accuracy"] >= 0.99].iloc[0])
        grok = int(log["step"][log["test_accuracy"] >= 0.99].iloc[0])
        full = int(log["step"][log["test_accuracy"] >= 0.999].iloc[0])
        assert column[c["memorised"]] == f"{fit:,}"
        assert column[c["grokked"]] == f"{grok:,}"
        assert column[c["full"]] == f"{full:,}"
        assert column[c["memorisation"]] == f"{phases.memorisation_end:,}"
        assert column[c["circuit formation"]] == f"{phases.circuit_formation_end:,}"
        assert column[c["cleanup"]] == f"{phases.cleanup_end:,}"
        assert column[c["key"]] == ", ".join(f"{k} ({n})" for k, n in sorted(counts.items()))
        assert column[c["last"]] == f"{last:,}"
    # The bundled run's README numbers, as a person reads them.
    assert milestones["add-p113"][c["full"]] == "8,560"
    assert milestones["add-p113"][c["key"]] == "1 (96), 8 (144), 21 (138)"
    assert any("fewer steps" in caption.value for caption in at.caption)

    differences = table(at, "setting")
    assert {"p", "d_model", "d_mlp", "lr", "frac_train", "steps"} <= set(differences.index)
    assert not {"task", "seed", "weight_decay", "n_heads"} & set(differences.index)  # the same in both
    assert (differences.loc["p", "add-p113"], differences.loc["p", MEMBER]) == ("113", "31")

    # Aligned by phase boundaries, onto add-p113 (the first with all three phase ends): the member's
    # phase ends land on add-p113's, and its curves are stretched to match.
    at.radio(key="align").set_value(cv.ALIGN_PHASES)
    check(at.run())
    assert at.selectbox(key="align_ref").value == "add-p113"
    rules = chart_frame(at, "Loss", "rules").set_index(["run", "phase"])
    base_phases = expected["add-p113"][2]
    for name, end in zip(
        ("memorisation ends", "circuit formation ends", "cleanup ends"),
        (base_phases.memorisation_end, base_phases.circuit_formation_end, base_phases.cleanup_end),
    ):
        assert rules.loc[(MEMBER, name), "x"] == pytest.approx(end)
        assert rules.loc[("add-p113", name), "x"] == end
    member_loss = chart_frame(at, "Loss", "lines")
    member_loss = member_loss[member_loss["run"] == MEMBER]
    anchors = cv.phase_anchors(expected[MEMBER][2])
    np.testing.assert_allclose(
        member_loss["x"], cv.align_steps(member_loss["step"], anchors, cv.phase_anchors(base_phases))
    )
    spec, _ = charts(at)["Loss"]
    assert spec["layer"][0]["mark"]["type"] == "rect"  # add-p113's phases shaded
    assert "steps of add-p113" in spec["layer"][1]["encoding"]["x"]["title"]


def test_the_bundled_grokfast_pair_opens_by_default(new_app, check, monkeypatch):
    if not (CHECKPOINTS / "add-p113-grokfast" / "run.json").is_file():
        pytest.skip("checkpoints/add-p113-grokfast is not bundled yet")
    monkeypatch.setenv("GROKVIZ_RUNS", str(CHECKPOINTS))
    at = check(open_compare(new_app))
    assert [Path(key).name for key in at.multiselect(key="compare").value] == ["add-p113", "add-p113-grokfast"]
    differences = table(at, "setting")
    assert any(setting.startswith("grokfast") for setting in differences.index)
    assert list(charts(at)) == CHART_TITLES


# --- tiny runs in a temporary folder -------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory) -> Path:
    """Three tiny runs that differ in weight decay (and one in seed); no timeline cache yet."""
    root = tmp_path_factory.mktemp("runs")
    base = Config(
        p=23,
        d_model=32,
        d_mlp=64,
        n_heads=4,
        d_head=8,
        frac_train=0.5,
        lr=3e-3,
        steps=200,
        log_every=10,
        save_every=50,
        save_log_points=4,
    )
    train(base, root / "wd1", progress=False)
    train(dataclasses.replace(base, weight_decay=0.0), root / "wd0", progress=False)
    train(dataclasses.replace(base, weight_decay=0.0, seed=1), root / "wd0-seed1", progress=False)
    return root


@pytest.fixture
def tiny_runs(tiny_root: Path, tmp_path: Path, monkeypatch) -> Path:
    root = tmp_path / "runs"
    shutil.copytree(tiny_root, root)
    monkeypatch.setenv("GROKVIZ_RUNS", str(root))
    return root


def test_url_restores_the_comparison_and_unknown_runs_are_ignored(tiny_runs: Path, new_app, check):
    assert not list(tiny_runs.glob("*/timeline*.json"))
    at = check(
        open_compare(
            new_app,
            compare=["wd1", "wd0-seed1", "no-such-run"],
            align=cv.ALIGN_PHASES,
            align_ref="wd0-seed1",
            log_x="true",
        )
    )
    assert [Path(key).name for key in at.multiselect(key="compare").value] == ["wd1", "wd0-seed1"]
    assert at.radio(key="align").value == cv.ALIGN_PHASES
    assert at.selectbox(key="align_ref").value == "wd0-seed1"
    assert at.toggle(key="log_x").value is True
    spec, _ = charts(at)["Loss"]
    assert spec["layer"][-2]["encoding"]["x"]["scale"]["type"] == "log"
    # The progress measures were computed (with a progress bar) and cached beside both runs only.
    assert sorted(p.parent.name for p in tiny_runs.glob("*/timeline.json")) == ["wd0-seed1", "wd1"]
    differences = table(at, "setting")
    assert set(differences.index) == {"seed", "weight_decay"}
    assert (differences.loc["weight_decay", "wd1"], differences.loc["weight_decay", "wd0-seed1"]) == ("1.0", "0.0")


def test_fewer_than_two_runs_ask_for_more_and_at_most_six_are_kept(tiny_runs: Path, new_app, check):
    at = check(open_compare(new_app, compare=["wd1"]))
    assert not at.get("vega_lite_chart")
    assert any("Choose 2 to 6 runs" in i.value for i in at.info)
    at.multiselect(key="compare").select((tiny_runs / "wd0").resolve().as_posix())  # keys: absolute outside the cwd
    check(at.run())
    assert len(charts(at)) == len(CHART_TITLES)
    for i in range(5):  # seven runs in all
        shutil.copytree(tiny_runs / "wd0", tiny_runs / f"copy{i}")
    names = ["wd1", "wd0", "wd0-seed1"] + [f"copy{i}" for i in range(5)]
    at = check(open_compare(new_app, compare=names[:7]))
    assert [Path(key).name for key in at.multiselect(key="compare").value] == names[: cv.MAX_RUNS]


def test_no_default_without_the_bundled_pair_and_the_pair_when_present(tiny_runs: Path, new_app, check):
    at = check(open_compare(new_app))
    assert at.multiselect(key="compare").value == []
    shutil.copytree(tiny_runs / "wd1", tiny_runs / "add-p113")
    shutil.copytree(tiny_runs / "wd0", tiny_runs / "add-p113-grokfast")
    at = check(open_compare(new_app))
    assert [Path(key).name for key in at.multiselect(key="compare").value] == ["add-p113", "add-p113-grokfast"]
    assert list(charts(at)) == CHART_TITLES
