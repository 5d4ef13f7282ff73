"""Charts of one checkpoint: the (a, b) grids, neurons, logits, attention, waves, and a sweep's grid."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

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
    title_params,
)

GRID_STATUS = {
    "correct (train pair)": "#74c476",
    "correct (test pair)": "#238b45",
    "wrong (train pair)": "#fd8d3c",
    "wrong (test pair)": "#a50f15",
    "not in task": "#ffffff",
}


def correctness_grid(grid: pd.DataFrame, *, title: str, subtitle: str | None = None, size: int = 340) -> alt.Chart:
    """(a, b) grid coloured by whether the answer is still correct: columns a, b, status (``GRID_STATUS`` keys)."""
    p = int(grid["a"].max()) + 1
    ticks = list(range(0, p, 10 if p > 40 else 5))
    present = set(grid["status"].unique())  # once: the column has p^2 rows
    domain = [s for s in GRID_STATUS if s in present] or list(GRID_STATUS)
    return (
        alt.Chart(grid)
        .mark_rect()
        .encode(
            x=alt.X("b:O", title="b", axis=alt.Axis(values=ticks, labelAngle=0)),
            y=alt.Y("a:O", title="a", axis=alt.Axis(values=ticks)),
            color=alt.Color(
                "status:N",
                scale=alt.Scale(domain=domain, range=[GRID_STATUS[s] for s in domain]),
                legend=alt.Legend(title=None, orient="bottom", columns=2),
            ),
            tooltip=["a:O", "b:O", "status:N"],
        )
        .properties(title=title_params(title, subtitle), width=size, height=size, autosize=FIXED)
    )


def neuron_strip(
    frame: pd.DataFrame, *, selected: int | None = None, title: str, subtitle: str | None = None, height: int = 240
) -> alt.LayerChart:
    """Every neuron's activation at one input, grouped by its frequency.

    frame columns: neuron, activation, group (label), order (sort key of the group), key (bool),
    jitter (a fixed offset in [-0.5, 0.5) that spreads a group's points).
    The selected neuron is a large red ring.
    """
    order = list(frame.sort_values(["order", "group"])["group"].drop_duplicates())
    base = alt.Chart(frame)
    x = alt.X(
        "group:N",
        title="neuron frequency (neurons grouped by their best frequency)",
        sort=order,
        axis=alt.Axis(labelAngle=0),
    )
    offset = alt.XOffset("jitter:Q", scale=alt.Scale(domain=[-0.7, 0.7]))
    points = base.mark_circle(size=22, opacity=0.7).encode(
        x=x,
        xOffset=offset,
        y=alt.Y("activation:Q", title="activation (after the MLP's nonlinearity)"),
        color=alt.Color(
            "key:N",
            scale=alt.Scale(domain=[True, False], range=[KEY_COLOR, OTHER_COLOR]),
            legend=alt.Legend(title="in a key frequency", orient="top"),
        ),
        tooltip=["neuron:Q", "group:N", alt.Tooltip("activation:Q", format=".3g")],
    )
    layers = [points]
    if selected is not None and (frame["neuron"] == selected).any():
        chosen = frame[frame["neuron"] == selected]
        layers.append(
            alt.Chart(chosen)
            .mark_point(size=160, color=CURRENT_COLOR, strokeWidth=2.5, filled=False)
            .encode(
                x=x, xOffset=offset, y="activation:Q", tooltip=["neuron:Q", alt.Tooltip("activation:Q", format=".3g")]
            )
        )
    return alt.layer(*layers).properties(title=title_params(title, subtitle), height=height, autosize=FIT_WIDTH)


def heatmap(
    matrix: np.ndarray,
    *,
    title: str,
    subtitle: str | None = None,
    x_title: str = "b",
    y_title: str = "a",
    color_title: str = "activation",
    marker: tuple[int, int] | None = None,
    x_labels: Sequence | None = None,
    y_labels: Sequence | None = None,
    tick_every: int = 10,
    scheme: str = HEATMAP_SCHEME,
    size: int = 340,
) -> alt.LayerChart | alt.Chart:
    """A matrix as coloured cells (rows = y, columns = x), optionally a red ring at ``marker`` = (row, col)."""
    matrix = np.asarray(matrix, dtype=float)
    n_rows, n_cols = matrix.shape
    rows, cols = np.meshgrid(np.arange(n_rows), np.arange(n_cols), indexing="ij")
    frame = pd.DataFrame({"row": rows.ravel(), "col": cols.ravel(), "value": matrix.ravel()})
    x_labels = list(range(n_cols)) if x_labels is None else list(x_labels)
    y_labels = list(range(n_rows)) if y_labels is None else list(y_labels)
    frame["x"] = [x_labels[c] for c in frame["col"]]
    frame["y"] = [y_labels[r] for r in frame["row"]]
    x_ticks = [x_labels[i] for i in range(0, n_cols, tick_every)]
    y_ticks = [y_labels[i] for i in range(0, n_rows, tick_every)]
    x = alt.X("x:O", title=x_title, sort=x_labels, axis=alt.Axis(values=x_ticks, labelAngle=0))
    y = alt.Y("y:O", title=y_title, sort=y_labels, axis=alt.Axis(values=y_ticks))
    cells = (
        alt.Chart(frame)
        .mark_rect()
        .encode(
            x=x,
            y=y,
            color=alt.Color(
                "value:Q",
                title=color_title,
                scale=alt.Scale(scheme=scheme),
                # below the plot: beside it, the legend overflows a half-width column
                legend=alt.Legend(orient="bottom", direction="horizontal", gradientLength=size * 0.6),
            ),
            tooltip=[
                alt.Tooltip("y:O", title=y_title),
                alt.Tooltip("x:O", title=x_title),
                alt.Tooltip("value:Q", title=color_title, format=".3g"),
            ],
        )
    )
    chart: alt.LayerChart | alt.Chart = cells
    if marker is not None:
        row, col = marker
        spot = pd.DataFrame({"x": [x_labels[col]], "y": [y_labels[row]], "value": [matrix[row, col]]})
        ring = alt.Chart(spot).mark_point(shape="square", size=120, color=CURRENT_COLOR, strokeWidth=2.5, filled=False)
        chart = alt.layer(
            cells, ring.encode(x=x, y=y, tooltip=[alt.Tooltip("value:Q", title=color_title, format=".3g")])
        )
    return chart.properties(title=title_params(title, subtitle), width=size, height=size, autosize=FIXED)


# --- prediction and attention ------------------------------------------------------------------


def neuron_spectrum(
    block_norms: np.ndarray, n_frequencies: int, neuron: int, subtitle: str | list[str], size: int = 340
) -> alt.LayerChart | alt.Chart:
    """One neuron's 2-D Fourier spectrum: ``block_norms`` [const + frequencies of a, same of b], the
    norm of each (frequency of a, frequency of b) block (``views.spectra.frequency_pair_norms``)."""
    labels = ["const"] + [str(k) for k in range(1, n_frequencies + 1)]
    return heatmap(
        block_norms,
        title=f"Neuron {neuron}: 2-D Fourier spectrum",
        subtitle=subtitle,
        x_title="frequency in b",
        y_title="frequency in a",
        color_title="norm",
        x_labels=labels,
        y_labels=labels,
        tick_every=5,
        size=size,
    )


def logits_chart(
    logits: np.ndarray, *, answer: int, label: int, title: str, subtitle: str | None = None, height: int = 200
) -> alt.LayerChart:
    """Bars of the logit of every output c; the correct c (label) and a wrong prediction (answer) are marked."""
    logits = np.asarray(logits, dtype=float)
    kind = np.full(len(logits), "other", dtype=object)
    kind[answer] = "model's answer (wrong)"
    kind[label] = "correct answer"
    frame = pd.DataFrame({"c": np.arange(len(logits)), "logit": logits, "kind": kind})
    domain = [k for k in ("correct answer", "model's answer (wrong)", "other") if k in set(kind)]
    colors = {"correct answer": "#2ca02c", "model's answer (wrong)": CURRENT_COLOR, "other": "#c6c6c6"}
    bars = (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X("c:Q", title="output c", scale=alt.Scale(domain=[-0.5, len(logits) - 0.5], nice=False)),
            y=alt.Y("logit:Q", title="logit"),
            color=alt.Color(
                "kind:N",
                scale=alt.Scale(domain=domain, range=[colors[k] for k in domain]),
                legend=alt.Legend(title=None, orient="top"),
            ),
            tooltip=["c:Q", alt.Tooltip("logit:Q", format=".3g"), "kind:N"],
        )
    )
    marks = frame[frame["kind"] != "other"].copy()
    marks["text"] = ["c=" + str(c) for c in marks["c"]]
    text = alt.Chart(marks).mark_text(dy=-8, fontWeight="bold").encode(x="c:Q", y="logit:Q", text="text:N")
    return alt.layer(bars, text).properties(title=title_params(title, subtitle), height=height, autosize=FIT_WIDTH)


def contributions_chart(
    contributions: Mapping[int, float],
    *,
    title: str,
    subtitle: str | None = None,
    x_title: str = "contribution",
    height: int = 200,
) -> alt.Chart:
    """Horizontal bars: one per frequency (keys), signed value."""
    frame = pd.DataFrame(
        {"frequency": [f"k={k}" for k in contributions], "value": [float(v) for v in contributions.values()]}
    )
    frame["sign"] = np.where(frame["value"] >= 0, "helps", "hurts")
    return (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            y=alt.Y("frequency:N", title=None, sort=list(frame["frequency"])),
            x=alt.X("value:Q", title=x_title),
            color=alt.Color(
                "sign:N", scale=alt.Scale(domain=["helps", "hurts"], range=["#2ca02c", CURRENT_COLOR]), legend=None
            ),
            tooltip=["frequency:N", alt.Tooltip("value:Q", format=".3g")],
        )
        .properties(title=title_params(title, subtitle), height=height, autosize=FIT_WIDTH)
    )


def attention_chart(
    pattern: np.ndarray, *, a: int, b: int, title: str, subtitle: str | None = None, height: int = 140
) -> alt.Chart:
    """Stacked bars per head of where the '=' position attends: pattern [n_heads, 3] (to a, to b, to '=')."""
    pattern = np.asarray(pattern, dtype=float)
    sources = [f"a = {a}", f"b = {b}", "="]
    rows = [
        {"head": f"head {h}", "source": sources[s], "order": s, "weight": float(pattern[h, s])}
        for h in range(pattern.shape[0])
        for s in range(3)
    ]
    frame = pd.DataFrame(rows)
    return (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            y=alt.Y("head:N", title=None),
            x=alt.X(
                "weight:Q",
                title="attention weight from the '=' position",
                scale=alt.Scale(domain=[0, 1]),
                axis=alt.Axis(format=".0%"),
            ),
            color=alt.Color(
                "source:N",
                scale=alt.Scale(domain=sources, range=["#1f77b4", "#ff7f0e", "#c6c6c6"]),
                legend=alt.Legend(title="attends to", orient="top"),
            ),
            order=alt.Order("order:Q"),
            tooltip=["head:N", "source:N", alt.Tooltip("weight:Q", format=".1%")],
        )
        .properties(title=title_params(title, subtitle), height=height, autosize=FIT_WIDTH)
    )


def waves_chart(
    frame: pd.DataFrame,
    *,
    label: int,
    title: str,
    subtitle: str | None = None,
    height: int = 200,
    x_title: str = "output c",
) -> alt.LayerChart:
    """Each frequency's wave over outputs c (long frame c, series, value) and their sum; a rule at the correct c."""
    names = list(dict.fromkeys(frame["series"]))
    palette = [("#000000" if n == "sum" else SERIES_PALETTE[i % len(SERIES_PALETTE)]) for i, n in enumerate(names)]
    lines = (
        alt.Chart(frame)
        .mark_line()
        .encode(
            x=alt.X(
                "c:Q",
                title=x_title,
                scale=alt.Scale(domain=[0, int(frame["c"].max()) if len(frame) else 1], nice=False),
            ),
            y=alt.Y("value:Q", title="contribution to the logit of c"),
            color=alt.Color(
                "series:N", scale=alt.Scale(domain=names, range=palette), legend=alt.Legend(title=None, orient="top")
            ),
            strokeWidth=alt.condition(alt.datum.series == "sum", alt.value(2.5), alt.value(1.0)),
            opacity=alt.condition(alt.datum.series == "sum", alt.value(1.0), alt.value(0.6)),
            tooltip=["series:N", "c:Q", alt.Tooltip("value:Q", format=".3g")],
        )
    )
    rule = (
        alt.Chart(pd.DataFrame({"c": [int(label)], "text": [f"correct c = {int(label)}"]}))
        .mark_rule(color="#2ca02c", strokeDash=[5, 3], size=2)
        .encode(x="c:Q", tooltip=["text:N"])
    )
    return alt.layer(lines, rule).properties(title=title_params(title, subtitle), height=height, autosize=FIT_WIDTH)


# --- sweeps ----------------------------------------------------------------------------------

OUTCOME_COLORS = {
    "never fit": "#bdbdbd",
    "memorised only": "#fdae6b",
    "grokked": "#31a354",
    "training": "#9ecae1",  # a sweep still being trained (storage.sweeps.LIVE_OUTCOMES)
    "waiting": "#f0f0f0",
    "unreadable": "#ffffff",
}
ALWAYS_SHOWN = ("never fit", "memorised only", "grokked")


def sweep_grid(
    grid: pd.DataFrame,
    *,
    x_title: str,
    y_title: str | None,
    title: str,
    subtitle: str | None = None,
    x_order: Sequence[str] | None = None,
    y_order: Sequence[str] | None = None,
    cell: int = 70,
) -> alt.LayerChart:
    """One cell per sweep member (columns x, y, outcome, label, member, test_accuracy; see
    ``views.sweeps.sweep_grid``), coloured by outcome, with the grokking step written in the cell."""
    present = set(grid["outcome"])
    domain = [o for o in OUTCOME_COLORS if o in ALWAYS_SHOWN or o in present]  # the three outcomes always
    n_x = len(x_order) if x_order is not None else grid["x"].nunique()
    n_y = len(y_order) if y_order is not None else max(grid["y"].nunique(), 1)
    x = alt.X(
        "x:O", title=x_title, sort=list(x_order) if x_order is not None else "ascending", axis=alt.Axis(labelAngle=0)
    )
    y = alt.Y(
        "y:O",
        title=y_title,
        sort=list(y_order)[::-1] if y_order is not None else "descending",
        axis=alt.Axis(labels=y_title is not None, ticks=y_title is not None),
    )
    base = alt.Chart(grid).encode(x=x, y=y)
    cells = base.mark_rect(stroke="white", strokeWidth=2).encode(
        color=alt.Color(
            "outcome:N",
            scale=alt.Scale(domain=domain, range=[OUTCOME_COLORS[o] for o in domain]),
            legend=alt.Legend(title=None, orient="bottom"),
        ),
        tooltip=[
            "member:N",
            "outcome:N",
            alt.Tooltip("label:N", title="test >= 99% at step"),
            alt.Tooltip("test_accuracy:Q", title="final test accuracy", format=".1%"),
        ],
    )
    text = base.mark_text(fontSize=12).encode(text="label:N")
    return alt.layer(cells, text).properties(
        title=title_params(title, subtitle), width=cell * n_x, height=cell * n_y, autosize=FIXED
    )
