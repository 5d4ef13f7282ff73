"""The Sweeps page's parameter cliff (AppTest, no browser): on an adder sweep of two sizes it draws
one point per member at its parameter count and exact match, side by side so that none hides another,
and a click on a point (the chart's selection) opens that member on the Adder page."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from grokviz.core.digits_config import DigitsConfig
from grokviz.storage import sweeps
from grokviz.training.ensemble import train_ensemble
from grokviz.training.grids import digits_grid, shape_grid
from grokviz.ui.charts.cliff import SELECTION, cliff_chart
from grokviz.ui.views.cliff import cliff_points, grok_labels, has_cliff, picked_member
from grokviz.ui.views.sweeps import axis_order, with_size_axis

SWEEPS_PAGE = "grokviz/ui/pages/sweeps.py"
TINY = DigitsConfig(steps=20, batch_size=16, val_size=32, log_every=10, curriculum="3:10,10")


@pytest.fixture(scope="module")
def runs_root(tmp_path_factory) -> Path:
    """A runs folder with a tiny adder sweep: two sizes x two learning rates x two seeds."""
    root = tmp_path_factory.mktemp("runs")
    configs = digits_grid(TINY, seeds=[0, 1], lrs=[0.02, 0.01], shapes=shape_grid(TINY, pairs=[(4, 16), (7, 14)]))
    train_ensemble(configs, root / "adder-sizes", progress=False, threads=1)
    return root


def test_cliff_points_spread_every_member_apart(runs_root: Path) -> None:
    table = sweeps.outcome_table(sweeps.open_sweep(runs_root / "adder-sizes"))
    assert has_cliff(table) and sorted(set(table["params"])) == [412, 777]
    points = cliff_points(table)
    # None on top of another: each member has its own slot among those of its count, lr then seed.
    assert len(points) == 8 and not points.duplicated(["params", "slot"]).any()
    at_777 = points[points["params"] == 777].sort_values("slot")
    assert list(at_777["slot"]) == [0, 1, 2, 3]
    assert list(at_777["member"]) == [
        "d7_ff14_h1_lr0.01_wd0.01_seed0",
        "d7_ff14_h1_lr0.01_wd0.01_seed1",
        "d7_ff14_h1_lr0.02_wd0.01_seed0",
        "d7_ff14_h1_lr0.02_wd0.01_seed1",
    ]
    assert (points["accuracy"] == table.set_index("member").loc[points["member"], "test_accuracy"].to_numpy()).all()
    row = points[points["member"] == "d7_ff14_h1_lr0.02_wd0.01_seed1"].iloc[0]
    assert row["params"] == 777 and "d_model 7" in row["config"] and "lr 0.02" in row["config"]
    spec = cliff_chart(points, title="t", accuracy_title="exact").to_dict()
    assert spec["params"][0]["name"] == SELECTION and spec["params"][0]["select"]["fields"] == ["member"]
    assert picked_member({"selection": {SELECTION: [{"member": "m1"}]}}) == "m1"
    assert picked_member({"selection": {SELECTION: []}}) is None and picked_member(None) is None


def test_grok_steps_are_written_once_per_size() -> None:
    # Three members of 1,208 parameters grok at 8,200, 9,600 and 8,800 (adder-cliff's d 8): one label
    # for the size, not three written over each other; a size where none grokked has none.
    points = pd.DataFrame(
        {
            "params": [1208, 1208, 1208, 412, 412, 575],
            "accuracy": [1.0, 0.999, 1.0, 0.0, 0.0, 1.0],
            "grok_step": [8200.0, 9600.0, 8800.0, None, None, 13200.0],
        }
    )
    labels = grok_labels(points)
    assert labels.to_dict("records") == [
        {"params": 575, "accuracy": 1.0, "label": "13,200"},
        {"params": 1208, "accuracy": 1.0, "label": "8,200-9,600"},
    ]
    points["slot"], points["outcome"], points["member"] = [0, 1, 2, 0, 1, 0], "grokked", list("abcdef")
    points["config"] = points["grok_label"] = ""
    spec = cliff_chart(points, title="t", accuracy_title="a").to_dict()
    text = [layer for layer in spec["layer"] if layer["mark"]["type"] == "text"]
    written = spec["datasets"][text[0]["data"]["name"]]
    assert len(text) == 1 and [row["label"] for row in written] == ["13,200", "8,200-9,600"]
    assert grok_labels(points.assign(grok_step=None)).empty


def test_the_bundled_modular_cliff() -> None:
    # checkpoints/mod-cliff (docs/cliff.md): 48 members at six sizes; every d 64 member ends above
    # 95% test accuracy, no d 4 member above 50%; the points keep the members' final accuracies.
    table = sweeps.outcome_table(sweeps.open_sweep(Path(__file__).parents[2] / "checkpoints" / "mod-cliff"))
    assert len(table) == 48 and has_cliff(table) and set(table["outcome"]) <= set(sweeps.OUTCOMES)
    points = cliff_points(table)
    assert sorted(set(points["params"])) == [1004, 2009, 6320, 18784, 62144, 222592]
    assert not points.duplicated(["params", "slot"]).any()
    assert (points[points["params"] == 62144]["accuracy"] >= 0.95).all()
    assert (points[points["params"] == 1004]["accuracy"] < 0.5).all()


def test_one_size_has_no_cliff() -> None:
    assert not has_cliff(pd.DataFrame({"params": [777, 777, None]}))


def test_sweeps_page_draws_the_cliff_and_a_click_opens_the_member(runs_root: Path, monkeypatch, new_app, check) -> None:
    monkeypatch.setenv("GROKVIZ_RUNS", str(runs_root))
    at = new_app(timeout=120)
    at.switch_page(SWEEPS_PAGE)
    check(at.run())
    assert "Parameter cliff" in [h.value for h in at.subheader]
    assert any("final validation exact match against its parameter count" in c.value for c in at.caption)
    charts = [e for e in at.get("vega_lite_chart") if "sweep_cliff" in e.proto.id]
    assert len(charts) == 1 and list(charts[0].proto.selection_mode) == [SELECTION]
    spec = json.loads(charts[0].proto.spec)
    assert spec["params"][0]["name"] == SELECTION and spec["params"][0]["select"]["fields"] == ["member"]
    # A click on a point: the chart's selection names the member; the page opens it on the Adder page.
    target = "d7_ff14_h1_lr0.01_wd0.01_seed1"
    at.session_state["sweep_cliff"] = {"selection": {SELECTION: [{"member": target}]}}
    check(at.run())
    assert at.session_state["adder_run"] == (runs_root / "adder-sizes" / target).resolve().as_posix()
    assert at.selectbox(key="adder_run").value == at.session_state["adder_run"]  # on the Adder page


def test_a_size_sweep_grids_over_one_size_axis() -> None:
    # Shapes are swept as pairs: one 'size' axis (ordered by parameters) replaces d_model and d_mlp.
    table = pd.DataFrame(
        {"params": [973, 412, 777], "d_model": [7, 4, 7], "d_mlp": [28, 16, 14], "n_heads": [1, 1, 1], "lr": [0.02] * 3}
    )
    sized, swept = with_size_axis(table, ["lr", "d_model", "d_mlp"])
    assert swept == ["size", "lr"]
    assert list(sized["size"]) == ["973: d7/28", "412: d4/16", "777: d7/14"]
    assert axis_order([*sized["size"], "1208: d8/32"]) == ["412: d4/16", "777: d7/14", "973: d7/28", "1208: d8/32"]
    assert with_size_axis(table, ["lr", "seed"]) == (table, ["lr", "seed"])


def test_a_bundled_member_kept_as_its_log_alone_says_so(new_app, monkeypatch) -> None:
    """mod-cliff keeps the logs of its d 32-128 members without weights: the explorer says that no
    checkpoint will come (not 'yet') and does not watch the folder for one."""
    sweep = Path(__file__).resolve().parents[2] / "checkpoints" / "mod-cliff"
    member = "wd1_frac0.5_lr0.001_seed0_d128_mlp512_h1"
    if not (sweep / member).is_dir():
        pytest.skip("the bundled mod-cliff sweep is not in this checkout")
    monkeypatch.setenv("GROKVIZ_RUNS", str(sweep))
    at = new_app(timeout=120, run=member).run()
    assert not at.exception
    said = [i.value for i in at.info]
    assert any("has no checkpoints: its log reaches step 1,000" in text for text in said), said
    assert not any("yet" in text for text in said)
