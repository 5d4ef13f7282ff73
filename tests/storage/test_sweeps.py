"""Sweep folders: classification of members from their logs (synthetic logs), reading sweep.json
with errors that name the file, the grid the app draws, and the run picker finding members."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from grokviz.core.config import Config
from grokviz.errors import GrokvizError
from grokviz.storage.sweeps import classify, list_sweeps, open_sweep, outcome_table
from grokviz.training.ensemble import train_ensemble
from grokviz.training.grids import grid_configs
from grokviz.ui import catalog, charts
from grokviz.ui.views import sweeps as sweep_views


def log(train: list[float], test: list[float], every: int = 100) -> pd.DataFrame:
    return pd.DataFrame(
        {"step": [i * every for i in range(len(train))], "train_accuracy": train, "test_accuracy": test}
    )


def test_classify_synthetic_logs() -> None:
    never = classify(log([0.1, 0.5, 0.98], [0.0, 0.1, 0.2]))
    assert (never.outcome, never.fit_step, never.grok_step, never.last_step) == ("never fit", None, None, 200)
    memorised = classify(log([0.2, 0.99, 1.0, 1.0], [0.0, 0.1, 0.5, 0.989]))
    assert (memorised.outcome, memorised.fit_step, memorised.grok_step) == ("memorised only", 100, None)
    grokked = classify(log([0.2, 1.0, 1.0, 1.0, 1.0], [0.0, 0.1, 0.6, 0.995, 1.0]))
    assert (grokked.outcome, grokked.fit_step, grokked.grok_step) == ("grokked", 100, 300)
    assert grokked.test_accuracy == 1.0
    # Order of rows does not matter; an empty log is 'never fit' with unknown accuracies.
    assert classify(log([0.2, 1.0, 1.0], [0.0, 0.5, 1.0]).iloc[::-1]).grok_step == 200
    empty = classify(log([], []))
    assert empty.outcome == "never fit" and empty.last_step is None and math.isnan(empty.test_accuracy)


@pytest.fixture(scope="module")
def tiny_sweep(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    base = Config(p=23, d_model=32, d_mlp=64, n_heads=4, d_head=8, steps=30, log_every=10)
    train_ensemble(
        grid_configs(base, weight_decays=[0.0, 1.0], frac_trains=[0.3, 0.5]), root / "sweep-a", progress=False
    )
    return root


def test_sweep_loads_and_every_member_is_classified(tiny_sweep) -> None:
    sweep = open_sweep(tiny_sweep / "sweep-a")
    assert sweep.name == "sweep-a" and len(sweep.members) == 4
    assert sweep.swept_axes() == ["weight_decay", "frac_train"]
    table = outcome_table(sweep)
    assert list(table["member"]) == [m.name for m in sweep.members]
    assert set(table["outcome"]) <= {"never fit", "memorised only", "grokked"} and table["problem"].isna().all()
    assert (table["last_step"] == 30).all()
    grid = sweep_views.sweep_grid(table, "frac_train", "weight_decay")
    assert list(grid.columns) == ["x", "y", "outcome", "label", "member", "test_accuracy"] and len(grid) == 4
    assert len(sweep_views.sweep_grid(table, "frac_train", "weight_decay", {"weight_decay": 1.0})) == 2
    chart = charts.sweep_grid(
        grid,
        x_title="frac_train",
        y_title="weight_decay",
        title="t",
        x_order=sweep_views.axis_order(grid["x"]),
        y_order=sweep_views.axis_order(grid["y"]),
    )
    assert chart.to_dict()["layer"][0]["mark"]["type"] == "rect"
    assert sweep_views.axis_order(["1.0", "0.3", "10.0"]) == ["0.3", "1.0", "10.0"]


def test_run_picker_lists_members_and_does_not_report_the_sweep(tiny_sweep, tmp_path) -> None:
    choices = catalog.discover_runs(tiny_sweep, None, base_dir=tmp_path)
    assert not choices.problems
    assert sorted(choices.labels.values()) == sorted(
        f"sweep-a/{m.name}" for m in open_sweep(tiny_sweep / "sweep-a").members
    )
    sweeps, problems = list_sweeps(tiny_sweep)
    assert [s.name for s in sweeps] == ["sweep-a"] and not problems


def test_broken_sweeps_are_named(tmp_path) -> None:
    folder = tmp_path / "sweep"
    folder.mkdir()
    with pytest.raises(GrokvizError, match="no sweep.json"):
        open_sweep(folder)
    (folder / "sweep.json").write_text("{not json")
    with pytest.raises(GrokvizError, match=r"sweep\.json: not readable JSON"):
        open_sweep(folder)
    (folder / "sweep.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(GrokvizError, match="unknown format"):
        open_sweep(folder)
    body = {"format": "grokviz.sweep/1", "axes": {}, "members": [{"name": "../escape"}]}
    (folder / "sweep.json").write_text(json.dumps(body))
    with pytest.raises(GrokvizError, match="plain folder"):
        open_sweep(folder)
    assert list_sweeps(tmp_path)[1] and "plain folder" in list_sweeps(tmp_path)[1][0]
    # A member folder that is missing: that member is 'unreadable', named, the others still load.
    body["members"] = [{"name": "gone", "weight_decay": 1.0}]
    (folder / "sweep.json").write_text(json.dumps(body))
    table = outcome_table(open_sweep(folder))
    assert table["outcome"].tolist() == ["unreadable"] and "gone: no such run folder" in table["problem"][0]
