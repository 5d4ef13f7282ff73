"""The Groups page's pure parts: its views (``grokviz.ui.views.groups``: irrep names and frames, the
FVE curves, the ablation's metric cards; ``grokviz.ui.views.groups_circles``: the tokens in an
irrep's plane) and its charts (``grokviz.ui.charts.groups``), without Streamlit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from grokviz.analysis import groups as analysis
from grokviz.core.groups import parse_group
from grokviz.ui.charts import groups as charts
from grokviz.ui.views import groups as views
from grokviz.ui.views import groups_circles


def test_irrep_names_and_frames() -> None:
    group = parse_group("S5")
    table = views.irrep_table(group)
    assert list(table["name"])[:2] == ["5 (1-dim)", "4,1 (4-dim)"]
    frame = views.per_irrep_frame(group, {"4,1": 0.5, "3,2": 0.25}, key=["4,1"])
    assert frame.loc[frame["irrep"] == "4,1", "key"].item() and frame["value"].sum() == pytest.approx(0.75)
    history = {0: {"4,1": 0.1}, 100: {"4,1": 0.6}}
    heat = views.spectrum_history(group, history)
    assert len(heat) == 2 * len(table) and set(heat["step"]) == {0, 100}
    text = views.key_irreps_text(group, ["4,1"], {"4,1": 37}, {"4,1": 0.8}, {"4,1": 0.6})
    assert "**4,1 (4-dim)**: 37 neurons, character FVE 80.0%" in text and "60.0% of |W_E|²" in text
    assert "No key irreps yet" in views.key_irreps_text(group, [], {}, {}, {})


def test_fve_curves_sum_the_rest_when_there_are_many_irreps() -> None:
    group = parse_group("Z31")  # 15 frequencies + trivial: more than MAX_IRREP_LINES
    fves = {f"freq {k}": 0.01 for k in range(1, 16)} | {"freq 3": 0.5}
    frame = views.fve_curves(group, {0: {"character_fve": fves}}, key=["freq 3"])
    assert set(frame["series"]) == {"freq 3 (2-dim)", views.OTHERS}
    assert frame.loc[frame["series"] == views.OTHERS, "value"].item() == pytest.approx(0.14)


def test_metric_cards_say_the_change() -> None:
    before = {"train_accuracy": 1.0, "test_accuracy": 0.9, "train_loss": 0.01, "test_loss": 0.2}
    after = {"train_accuracy": 0.5, "test_accuracy": 0.45, "train_loss": 1.5, "test_loss": 2.0}
    cards = views.metric_cards(before, after)
    assert cards[1] == {
        "label": "Test accuracy after",
        "value": "45.0%",
        "delta": "-45.0 points (was 90.0%)",
        "field": "test_accuracy",
        "color": "normal",
    }
    assert (cards[3]["value"], cards[3]["delta"], cards[3]["color"]) == ("2", "+1.8 (was 0.2)", "inverse")
    same = views.metric_cards(before, before | {"train_loss": 0.010001})
    assert [c["color"] for c in same] == ["off"] * 4 and same[0]["delta"] == "unchanged (was 100.0%)"


def test_the_plane_of_an_ideal_embedding_is_a_circle_in_angle_order() -> None:
    group = parse_group("D6")
    rho = next(irrep for irrep in analysis.irreps(group) if irrep.label == "rot 1").matrices  # [12, 2, 2]
    rng = np.random.default_rng(0)
    W_E = rho[:, :, 0] @ rng.standard_normal((2, 16))  # each token embedded as ρ(g)'s first column
    W_E = np.concatenate([W_E, rng.standard_normal((1, 16))])  # the '=' row
    drawn = groups_circles.irrep_plane(group, W_E, "rot 1")
    radius = np.hypot(drawn.frame["x"], drawn.frame["y"])
    assert drawn.share == pytest.approx(1.0) and np.ptp(radius) / radius.mean() < 0.5  # an ellipse in the plane
    # Two rings, each in angle order: the rotations r^k, then the reflections r^k s (same angles).
    assert list(drawn.frame["ring"]) == [groups_circles.RINGS[0]] * 6 + [groups_circles.RINGS[1]] * 6
    assert list(drawn.frame["angle"]) == pytest.approx([0, 60, 120, 180, 240, 300] * 2)
    assert list(drawn.frame["name"][:2]) == ["e", "r"] and list(drawn.frame["name"][6:8]) == ["s", "r s"]
    rot3 = groups_circles.irrep_plane(parse_group("D30"), np.random.default_rng(3).standard_normal((61, 8)), "rot 3")
    assert rot3.frame["angle"].nunique() == 10  # gcd(3, 30) = 3: ten angles, 0 and 360 being one
    with pytest.raises(ValueError, match="only a 2-dimensional irrep"):
        groups_circles.irrep_plane(group, W_E, "flip")
    pca = groups_circles.irrep_pca(parse_group("S4"), np.random.default_rng(2).standard_normal((25, 16)), "3,1")
    assert len(pca.frame) == 24 and 0 < pca.share < 1 and pca.explained[0] >= pca.explained[1] > 0
    assert "9-dimensional space" in groups_circles.no_circle_text(parse_group("S4"), "3,1")


def test_every_chart_builds_a_valid_spec() -> None:
    group = parse_group("D4")
    frame = views.per_irrep_frame(group, {"rot 1": 0.7, "flip": 0.3}, key=["rot 1"])
    specs = [
        charts.irrep_bars(frame, title="W_E"),
        charts.irrep_heatmap(
            views.spectrum_history(group, {0: {"rot 1": 0.2}, 10: {"rot 1": 0.9}}), title="h", key=["rot 1"], step=10
        ),
        charts.fve_histogram(pd.DataFrame({"neuron": [0, 1], "name": ["a", "b"], "fve": [0.2, 0.9]}), 0.85, title="f"),
        charts.probe_bars(
            pd.DataFrame({"neuron": [3], "irrep": ["rot 1 (2-dim)"], "activation": [1.0], "fit by its irrep": [0.9]}),
            title="p",
        ),
        charts.fit_scatter(views.scatter_frame(group, np.arange(64.0), np.arange(64.0), 1, 2), title="s"),
        charts.plane_chart(
            groups_circles.irrep_plane(group, torch.randn(9, 8).numpy(), "rot 1").frame,
            title="c",
            x_title="x",
            y_title="y",
        ),
    ]
    for chart in specs:
        assert chart.to_dict()  # validates against the Vega-Lite schema
