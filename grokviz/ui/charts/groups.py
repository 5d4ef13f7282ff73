"""Altair charts of the Groups page: numbers per irrep, irrep × step heatmaps, neuron counts and FVEs,
the probe's actual-vs-fit scatter and the tokens in an irrep's plane (frames from
``grokviz.ui.views.groups`` and, for the plane, ``grokviz.ui.views.groups_circles``; curves over the
run come from ``grokviz.ui.charts.training.curves``).

Key irreps are orange, as key frequencies are on the explorer; the current step is the dashed rule.
"""

from __future__ import annotations

import json

import altair as alt
import numpy as np
import pandas as pd

from grokviz.ui.charts.base import (
    CURRENT_COLOR,
    FIT_WIDTH,
    FIXED,
    HEATMAP_SCHEME,
    KEY_COLOR,
    OTHER_COLOR,
    SERIES_PALETTE,
    step_rule,
    title_params,
)

KIND_SCALE = alt.Scale(domain=["key irrep", "other"], range=[KEY_COLOR, OTHER_COLOR])


def _sorted_names(frame: pd.DataFrame) -> list[str]:
    return list(frame.sort_values("order")["name"].drop_duplicates())


def irrep_bars(
    frame: pd.DataFrame,
    *,
    title: str,
    subtitle: str | None = None,
    y_title: str = "share",
    value: str = "value",
    y_format: str = ".0%",
    height: int = 220,
) -> alt.Chart:
    """Bars of ``value`` per irrep (frame: irrep, name, order, value, key), key irreps orange."""
    data = frame.assign(kind=np.where(frame["key"], "key irrep", "other"))
    axis_format = y_format if y_format else alt.Undefined
    # Every irrep named while they fit (S5's 7, D_n's few); past that Vega-Lite drops overlapping names.
    x_axis = alt.Axis(labelAngle=-35, labelOverlap=False if len(data) <= 24 else "greedy", labelLimit=160)
    return (
        alt.Chart(data)
        .mark_bar()
        .encode(
            x=alt.X("name:N", sort=_sorted_names(frame), title="irrep", axis=x_axis),
            y=alt.Y(f"{value}:Q", title=y_title, axis=alt.Axis(format=axis_format)),
            color=alt.Color("kind:N", scale=KIND_SCALE, legend=alt.Legend(title=None, orient="top")),
            tooltip=["name:N", alt.Tooltip(f"{value}:Q", format=y_format or ".4g"), "kind:N"],
        )
        .properties(title=title_params(title, subtitle), height=height, autosize=FIT_WIDTH)
    )


def irrep_heatmap(
    frame: pd.DataFrame, *, title: str, subtitle: str | None = None, step: int | None = None, key: list[str] = ()
) -> alt.LayerChart:
    """Irrep × step heatmap (frame: step, start, end, name, order, share), the key irreps' names in orange."""
    order = _sorted_names(frame)
    key_names = set(frame.loc[frame["irrep"].isin(list(key)), "name"])
    x_end = float(frame["end"].max()) if len(frame) else 1.0
    label_color = alt.ExprRef(
        expr=f"indexof({json.dumps(sorted(key_names))}, datum.value) >= 0 ? '{KEY_COLOR}' : 'black'"
    )
    # Each cell reaches a hair past its neighbour's start: no antialiasing gaps between checkpoints.
    x_start = float(frame["start"].min()) if len(frame) else 0.0
    frame = frame.assign(reach=np.minimum(frame["end"] + (x_end - x_start) * 0.002, x_end))
    cells = (
        alt.Chart(frame)
        .mark_rect()
        .encode(
            x=alt.X(
                "start:Q",
                title="training step",
                axis=alt.Axis(format="~s"),
                scale=alt.Scale(domain=[x_start, x_end], nice=False),
            ),
            x2="reach:Q",
            y=alt.Y("name:N", sort=order, title="irrep", axis=alt.Axis(labelColor=label_color)),
            color=alt.Color(
                "share:Q",
                title="share of |W_E|²",
                scale=alt.Scale(scheme=HEATMAP_SCHEME),
                legend=alt.Legend(format=".0%"),
            ),
            tooltip=[alt.Tooltip("step:Q", format=","), "name:N", alt.Tooltip("share:Q", format=".1%")],
        )
    )
    layers = [cells]
    if step is not None:
        layers.append(step_rule(step).mark_rule(color="white", strokeDash=[5, 3], size=1.5))
    height = max(120, 22 * len(order))
    return alt.layer(*layers).properties(title=title_params(title, subtitle), height=height, autosize=FIT_WIDTH)


def fve_histogram(frame: pd.DataFrame, threshold: float, *, title: str, subtitle: str | None = None) -> alt.LayerChart:
    """Histogram of the living neurons' best FVE (frame: neuron, name, fve), the threshold a dashed rule."""
    bars = (
        alt.Chart(frame)
        .mark_bar(color=SERIES_PALETTE[0])
        .encode(
            x=alt.X("fve:Q", bin=alt.Bin(extent=[0, 1], step=0.05), title="FVE by the neuron's best irrep"),
            y=alt.Y("count():Q", title="neurons"),
            tooltip=[alt.Tooltip("count():Q", title="neurons")],
        )
    )
    rule = (
        alt.Chart(pd.DataFrame({"fve": [threshold], "label": [f"threshold {threshold:.2f}"]}))
        .mark_rule(color=CURRENT_COLOR, strokeDash=[5, 3], size=1.5)
        .encode(x="fve:Q", tooltip=["label:N"])
    )
    return alt.layer(bars, rule).properties(title=title_params(title, subtitle), height=220, autosize=FIT_WIDTH)


def probe_bars(frame: pd.DataFrame, *, title: str, subtitle: str | None = None) -> alt.Chart:
    """Each probed neuron's activation and its fit by its irrep at (a, b) (frame: neuron, irrep, activation, fit by its irrep)."""
    data = frame.assign(label=[str(n) for n in frame["neuron"]])
    long = data.melt(
        id_vars=["label", "neuron", "irrep"], value_vars=["activation", "fit by its irrep"], var_name="what"
    )
    return (
        alt.Chart(long)
        .mark_bar()
        .encode(
            x=alt.X(
                "label:N",
                sort=list(data["label"]),
                title="neuron (its irrep in the table)",
                axis=alt.Axis(labelAngle=0),
            ),
            xOffset="what:N",
            y=alt.Y("value:Q", title="activation at (a, b)"),
            color=alt.Color(
                "what:N",
                scale=alt.Scale(domain=["activation", "fit by its irrep"], range=[SERIES_PALETTE[0], KEY_COLOR]),
                legend=alt.Legend(title=None, orient="top"),
            ),
            tooltip=[alt.Tooltip("label:N", title="neuron"), "irrep:N", "what:N", alt.Tooltip("value:Q", format=".4g")],
        )
        .properties(title=title_params(title, subtitle), height=240, autosize=FIT_WIDTH)
    )


def fit_scatter(frame: pd.DataFrame, *, title: str, subtitle: str | None = None, size: int = 360) -> alt.LayerChart:
    """Actual activation against its fit, one point per pair (frame: pair, actual, fit, marked), with
    the diagonal and the chosen (a, b) ringed."""
    low = float(min(frame["actual"].min(), frame["fit"].min())) if len(frame) else 0.0
    high = float(max(frame["actual"].max(), frame["fit"].max())) if len(frame) else 1.0
    pad = (high - low) * 0.04 or 1.0
    scale = alt.Scale(domain=[low - pad, high + pad], nice=False)
    x = alt.X("fit:Q", title="fit by its irrep", scale=scale)
    y = alt.Y("actual:Q", title="activation", scale=scale)
    diagonal = (
        alt.Chart(pd.DataFrame({"fit": [low - pad, high + pad], "actual": [low - pad, high + pad]}))
        .mark_line(color="#999999", strokeDash=[4, 3])
        .encode(x=x, y=y)
    )
    points = (
        alt.Chart(frame[~frame["marked"]])
        .mark_circle(size=9, opacity=0.35, color=SERIES_PALETTE[0])
        .encode(x=x, y=y, tooltip=["pair:N", alt.Tooltip("actual:Q", format=".4g"), alt.Tooltip("fit:Q", format=".4g")])
    )
    marked = (
        alt.Chart(frame[frame["marked"]])
        .mark_point(size=200, strokeWidth=3, color=CURRENT_COLOR, filled=False)
        .encode(x=x, y=y, tooltip=["pair:N", alt.Tooltip("actual:Q", format=".4g"), alt.Tooltip("fit:Q", format=".4g")])
    )
    return alt.layer(diagonal, points, marked).properties(
        title=title_params(title, subtitle), width=size, height=size, autosize=FIXED
    )


def plane_chart(
    frame: pd.DataFrame,
    *,
    title: str,
    subtitle: str | None = None,
    x_title: str,
    y_title: str,
    join: bool = True,
    labels: bool = True,
    color_classes: bool = False,
    size: int = 380,
) -> alt.LayerChart:
    """Tokens as points (frame: token, name, x, y, order, ring, group_class), labelled by element name,
    joined in ``order`` into one closed path per ``ring`` when ``join`` (two rings: coloured by ring);
    coloured by conjugacy class when asked."""
    extent = float(max(frame["x"].abs().max(), frame["y"].abs().max(), 1e-12)) * 1.15 if len(frame) else 1.0
    scale = alt.Scale(domain=[-extent, extent], nice=False)
    x = alt.X("x:Q", scale=scale, axis=alt.Axis(title=x_title, labels=False, ticks=False))
    y = alt.Y("y:Q", scale=scale, axis=alt.Axis(title=y_title, labels=False, ticks=False))
    tooltip = ["token:Q", "name:N", "group_class:N", alt.Tooltip("x:Q", format=".3g"), alt.Tooltip("y:Q", format=".3g")]
    rings = list(dict.fromkeys(frame["ring"])) if "ring" in frame else []
    ring_color = alt.Color(
        "ring:N",
        scale=alt.Scale(domain=rings, range=[SERIES_PALETTE[0], KEY_COLOR][: len(rings)] or [SERIES_PALETTE[0]]),
        legend=alt.Legend(title=None, orient="bottom") if len(rings) > 1 else None,
    )
    layers = []
    if join and len(frame):
        # One closed path per ring: each ring's points in order, back to its first.
        parts = []
        for ring in rings:
            part = frame[frame["ring"] == ring].sort_values("order")
            parts += [part, part.iloc[:1].assign(order=part["order"].max() + 1)]
        closed = pd.concat(parts, ignore_index=True)
        layers.append(
            alt.Chart(closed)
            .mark_line(strokeWidth=1, opacity=0.45)
            .encode(x=x, y=y, order="order:Q", detail="ring:N", color=ring_color)
        )
    point = alt.Chart(frame).mark_circle(size=34, opacity=0.85)
    if color_classes:
        classes = list(dict.fromkeys(frame["group_class"]))
        palette = [SERIES_PALETTE[i % len(SERIES_PALETTE)] for i in range(len(classes))]
        point = point.encode(
            x=x,
            y=y,
            color=alt.Color(
                "group_class:N",
                scale=alt.Scale(domain=classes, range=palette),
                legend=alt.Legend(title="conjugacy class", orient="right"),
            ),
            tooltip=tooltip,
        )
    elif len(rings) > 1:
        point = point.encode(x=x, y=y, color=ring_color, tooltip=[*tooltip, "ring:N"])
    else:
        point = point.encode(x=x, y=y, color=alt.value("#555555"), tooltip=tooltip)
    layers.append(point)
    if labels:
        layers.append(
            alt.Chart(frame)
            .mark_text(fontSize=9, dx=8, dy=-7, color="#333333", align="left")
            .encode(x=x, y=y, text="name:N")
        )
    return alt.layer(*layers).properties(title=title_params(title, subtitle), width=size, height=size, autosize=FIXED)


def logit_bars(readout, names) -> alt.Chart:
    """One pair's logits over every answer c (a ``groups_probe.Readout``), the right answer red."""
    frame = pd.DataFrame({"c": range(len(readout.logits)), "logit": readout.logits, "element": names}).assign(
        kind=lambda f: ["right answer" if c == readout.label else "other" for c in f["c"]]
    )
    return (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X("c:Q", title="answer c (token)"),
            y=alt.Y("logit:Q", title="logit"),
            color=alt.Color(
                "kind:N",
                scale=alt.Scale(domain=["right answer", "other"], range=["#e45756", "#9ecae9"]),
                legend=alt.Legend(title=None, orient="top"),
            ),
            tooltip=["c:Q", "element:N", alt.Tooltip("logit:Q", format=".4g")],
        )
        .properties(title=title_params("The logits over every answer c"), height=220, autosize=FIT_WIDTH)
    )


def readout_waves(frame: pd.DataFrame, label: int) -> alt.LayerChart:
    """The key irreps' parts α_ρ χ_ρ(a·b·c⁻¹) over c (frame: c, series, value), the right answer ruled."""
    lines = (
        alt.Chart(frame)
        .mark_line()
        .encode(
            x=alt.X("c:Q", title="answer c (token)"),
            y=alt.Y("value:Q", title="α_ρ χ_ρ(a·b·c⁻¹)"),
            color=alt.Color("series:N", title=None, legend=alt.Legend(orient="top")),
            tooltip=["series:N", "c:Q", alt.Tooltip("value:Q", format=".4g")],
        )
    )
    rule = alt.Chart(pd.DataFrame({"c": [label]})).mark_rule(color="#e45756", strokeDash=[4, 3]).encode(x="c:Q")
    return (lines + rule).properties(
        title=title_params("The key irreps' waves over c", "each peaks at the right answer (dashed)"),
        height=220,
        autosize=FIT_WIDTH,
    )


def attention_heads(frame: pd.DataFrame) -> alt.Chart:
    """The '=' position's attention per head over the keys a, b, = (frame: head, key, weight)."""
    return (
        alt.Chart(frame)
        .mark_rect()
        .encode(
            x=alt.X("key:N", title="attends to", sort=["a", "b", "="]),
            y=alt.Y("head:N", title=None),
            color=alt.Color("weight:Q", scale=alt.Scale(domain=[0, 1], scheme="blues"), title="weight"),
            tooltip=["head:N", "key:N", alt.Tooltip("weight:Q", format=".3f")],
        )
        .properties(title=title_params("Where the '=' position attends", "per head, for this pair"), height=140)
    )
