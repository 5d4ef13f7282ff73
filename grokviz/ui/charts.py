"""Altair chart builders for the app: data in, chart out.

Owns how every picture of grokviz looks. Each function takes plain data (pandas frames, numpy
arrays, ints) shaped by ``grokviz.views`` and returns an Altair chart; nothing here reads files,
computes analysis or calls Streamlit, so every chart can be built and checked in a test
(``chart.to_dict()`` validates it against the Vega-Lite schema).

Conventions shared by all charts: the current step is a dashed black rule; training phases are
pale bands behind the curves (colours in ``PHASE_COLORS``); key frequencies are orange; train is
blue and test is red. Titles say what is plotted, subtitles say how to read it.
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Iterable, Mapping, Sequence

import altair as alt
import numpy as np
import pandas as pd

# Pale backgrounds for the paper's three phases (and the time after cleanup).
PHASE_COLORS = {
    "memorisation": "#fdd49e",
    "circuit formation": "#c6dbef",
    "cleanup": "#c7e9c0",
    "after cleanup": "#eeeeee",
    "after memorisation": "#e5e5e5",  # a run that has not grokked (yet)
}
SPLIT_COLORS = {"train": "#1f77b4", "test": "#d62728", "all": "#7f7f7f"}
KEY_COLOR = "#ff7f0e"
OTHER_COLOR = "#9ecae1"
CURRENT_COLOR = "#d62728"
# Progress measures: the splits keep their colours; the measures get their own.
MEASURE_COLORS = {**SPLIT_COLORS, "restricted": "#2ca02c", "excluded": "#9467bd", "W_E": "#17becf", "W_L": "#8c564b",
                  "all parameters": "#8c564b"}
SERIES_PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"]
HEATMAP_SCHEME = "viridis"
# Log-axis tick labels: plain numbers in a readable range, powers of ten outside it (1e-7).
LOG_LABELS = "datum.value >= 0.001 && datum.value < 10000 ? format(datum.value, '~g') : format(datum.value, '.0e')"


def decades(values, max_ticks: int = 7) -> list[float]:
    """Tick values for a log axis: powers of ten covering ``values``, every n-th so at most ``max_ticks``."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values) & (values > 0)]
    if not len(values):
        return [1.0]
    low, high = int(np.floor(np.log10(values.min()))), int(np.ceil(np.log10(values.max())))
    stride = max(1, int(np.ceil((high - low + 1) / max_ticks)))
    return [float(10.0**e) for e in range(high, low - 1, -stride)][::-1]


def _title(text: str, subtitle: str | None = None) -> alt.TitleParams:
    return alt.TitleParams(text=text, subtitle=subtitle or "", anchor="start")


# Streamlit sizes a chart with autosize "fit" unless the spec names one, which makes ``height``
# the height of everything (titles, legends, axes): the plot itself shrinks. These keep
# ``height`` (and for fixed charts ``width``) the size of the plotting area, as in Altair.
FIT_WIDTH = alt.AutoSizeParams(type="fit-x", contains="padding")  # for width="stretch"
FIXED = alt.AutoSizeParams(type="pad")  # for width="content": width and height are the plot's


# --- shared layers --------------------------------------------------------------------------


def phase_layer(phases: pd.DataFrame, legend: bool = True) -> alt.Chart:
    """Full-height pale bands: phases has columns phase, start, end (steps)."""
    present = set(phases["phase"])
    domain = [p for p in PHASE_COLORS if p in present] or list(PHASE_COLORS)
    return (
        alt.Chart(phases)
        .mark_rect(opacity=0.55)
        .encode(
            x=alt.X("start:Q"),
            x2="end:Q",
            color=alt.Color(
                "phase:N",
                scale=alt.Scale(domain=domain, range=[PHASE_COLORS[p] for p in domain]),
                legend=alt.Legend(title=None, orient="bottom", symbolType="square", columns=2) if legend else None,
            ),
            tooltip=["phase:N", alt.Tooltip("start:Q", format=","), alt.Tooltip("end:Q", format=",")],
        )
    )


def step_rule(step: int) -> alt.Chart:
    """A dashed vertical line at the current step."""
    return (
        alt.Chart(pd.DataFrame({"step": [int(step)], "label": [f"step {int(step):,}"]}))
        .mark_rule(color="black", strokeDash=[5, 3], size=1.5)
        .encode(x="step:Q", tooltip=["label:N"])
    )


def _with_context(
    chart: alt.Chart, step: int | None, phases: pd.DataFrame | None, phase_legend: bool = True
) -> alt.LayerChart:
    layers = []
    if phases is not None and len(phases):
        layers.append(phase_layer(phases, legend=phase_legend))
    layers.append(chart)
    if step is not None:
        layers.append(step_rule(step))
    # Always a layer, so that add_step_rule can add the rule to a cached spec.
    return alt.layer(*layers).resolve_scale(color="independent")


# --- charts that stay the same while the step moves ---------------------------------------------


def static_spec(chart: alt.TopLevelMixin) -> dict:
    """The chart as a Vega-Lite dict, data as named datasets (any number of rows), for caching.

    Charts over the whole run do not change when the step slider moves; only their rule does.
    The app caches this dict and adds the rule with :func:`add_step_rule`, which skips
    rebuilding and re-validating the chart on every move. Streamlit sends the named datasets
    as Arrow, as it does for Altair charts.
    """
    datasets: dict[str, list] = {}

    def to_named(node) -> None:
        data = getattr(node, "data", alt.Undefined)
        if isinstance(data, pd.DataFrame):
            digest = hashlib.sha1(pd.util.hash_pandas_object(data, index=False).values.tobytes())
            digest.update(",".join(map(str, data.columns)).encode())
            name = f"data-{digest.hexdigest()[:20]}"
            datasets[name] = json.loads(data.to_json(orient="records"))
            node.data = alt.NamedData(name=name)
        for child in getattr(node, "layer", None) or []:
            to_named(child)

    chart = chart.copy(deep=True)
    to_named(chart)
    spec = chart.to_dict()
    spec["datasets"] = {**spec.get("datasets", {}), **datasets}
    return spec


def add_step_rule(spec: Mapping, step: int, color: str = "black") -> dict:
    """A copy of a layered spec (from :func:`static_spec`) with the dashed rule at ``step`` on top."""
    out = copy.copy(dict(spec))
    rule = {
        "data": {"values": [{"step": int(step), "label": f"step {int(step):,}"}]},
        "mark": {"type": "rule", "color": color, "strokeDash": [5, 3], "size": 1.5},
        "encoding": {"x": {"field": "step", "type": "quantitative"},
                     "tooltip": [{"field": "label", "type": "nominal"}]},
    }
    if "layer" not in out:
        raise ValueError("add_step_rule needs a layered spec (charts over training are layers)")
    out["layer"] = list(out["layer"]) + [rule]
    return out


# --- curves over training ---------------------------------------------------------------------


def curves(
    frame: pd.DataFrame,
    *,
    title: str,
    y_title: str,
    subtitle: str | None = None,
    log_y: bool = False,
    step: int | None = None,
    phases: pd.DataFrame | None = None,
    colors: Mapping[str, str] | None = None,
    y_format: str | None = None,
    height: int = 220,
    points: bool = False,
    narrow: bool = False,
) -> alt.LayerChart:
    """Lines of ``value`` over ``step``, one per ``series`` (a long frame: step, series, value).

    ``log_y`` drops non-positive values (they have no place on a log axis) rather than failing.
    ``colors`` fixes series colours by name; otherwise a fixed palette in order of appearance.
    ``narrow`` (a third of the page): legend in two columns, no phase legend (the wide charts have it).
    """
    frame = frame[["step", "series", "value"]].copy()
    frame = frame[np.isfinite(frame["value"].astype(float))]
    if log_y:
        frame = frame[frame["value"] > 0]
    names = list(dict.fromkeys(frame["series"]))
    if colors is None:
        colors = {name: SERIES_PALETTE[i % len(SERIES_PALETTE)] for i, name in enumerate(names)}
    domain = [n for n in names if n in colors] + [n for n in names if n not in colors]
    palette = [colors.get(n, SERIES_PALETTE[i % len(SERIES_PALETTE)]) for i, n in enumerate(domain)]
    y = alt.Y("value:Q", title=y_title)
    if log_y:
        y = y.scale(type="log").axis(labelExpr=LOG_LABELS, values=decades(frame["value"]))
    if y_format:
        y = y.axis(format=y_format)
    mark = alt.Chart(frame).mark_line(point=alt.OverlayMarkDef(size=18) if points else False, strokeWidth=1.8)
    lines = mark.encode(
        x=alt.X("step:Q", title="training step", axis=alt.Axis(format="~s"), scale=alt.Scale(nice=False)),
        y=y,
        color=alt.Color("series:N", scale=alt.Scale(domain=domain, range=palette),
                        legend=alt.Legend(title=None, orient="top", columns=2 if narrow else max(len(domain), 1))),
        tooltip=[alt.Tooltip("step:Q", format=","), "series:N", alt.Tooltip("value:Q", format=".4g")],
    )
    return _with_context(lines, step, phases, phase_legend=not narrow).properties(
        title=_title(title, subtitle), height=height, autosize=FIT_WIDTH)


# --- Fourier ---------------------------------------------------------------------------------


def spectrum_chart(
    spectrum: pd.DataFrame, *, title: str, subtitle: str | None = None, height: int = 200
) -> alt.LayerChart:
    """Bars of ``norm`` per ``frequency`` (columns frequency, norm, key: bool), key ones orange and labelled."""
    frame = spectrum.copy()
    frame["kind"] = np.where(frame["key"], "key frequency", "other")
    n_freq = int(frame["frequency"].max()) if len(frame) else 1
    bars = (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X("frequency:Q", title="frequency k", scale=alt.Scale(domain=[0.5, n_freq + 0.5], nice=False),
                    axis=alt.Axis(values=[1] + list(range(5, n_freq + 1, 5)))),
            y=alt.Y("norm:Q", title="norm"),
            color=alt.Color("kind:N", scale=alt.Scale(domain=["key frequency", "other"], range=[KEY_COLOR, OTHER_COLOR]),
                            legend=alt.Legend(title=None, orient="top")),
            tooltip=["frequency:Q", alt.Tooltip("norm:Q", format=".3g"), "kind:N"],
        )
    )
    labels = (
        alt.Chart(frame[frame["key"]])
        .mark_text(dy=-7, fontSize=11, color=KEY_COLOR, fontWeight="bold")
        .encode(x="frequency:Q", y="norm:Q", text="frequency:Q")
    )
    return alt.layer(bars, labels).properties(title=_title(title, subtitle), height=height, autosize=FIT_WIDTH)


def spectrum_heatmap(
    frame: pd.DataFrame,
    *,
    title: str,
    subtitle: str | None = None,
    key_frequencies: Iterable[int] = (),
    step: int | None = None,
    height: int = 280,
) -> alt.LayerChart:
    """Frequency x step heatmap: columns step, start, end (the span a checkpoint stands for), frequency, share.

    The y axis labels only the key frequencies (in orange, with an orange tick at the right
    edge), so a reader can follow their rows from the plateau to the end of training.
    """
    keys = sorted(int(k) for k in key_frequencies)
    frame = frame.copy()
    frame["low"] = frame["frequency"] - 0.5
    frame["high"] = frame["frequency"] + 0.5
    n_freq = int(frame["frequency"].max()) if len(frame) else 1
    x_end = float(frame["end"].max()) if len(frame) else 1.0
    y_axis = alt.Axis(values=keys or list(range(5, n_freq + 1, 5)), labelColor=KEY_COLOR if keys else None,
                      labelFontWeight="bold" if keys else "normal", grid=False, labelOverlap="greedy")
    cells = (
        alt.Chart(frame)
        .mark_rect(strokeWidth=0.6)
        .encode(
            x=alt.X("start:Q", title="training step", axis=alt.Axis(format="~s"),
                    scale=alt.Scale(domain=[float(frame["start"].min()) if len(frame) else 0.0, x_end], nice=False)),
            x2="end:Q",
            y=alt.Y("low:Q", title="frequency k" + (" (key ones labelled)" if keys else ""),
                    scale=alt.Scale(domain=[0.5, n_freq + 0.5], nice=False), axis=y_axis),
            y2="high:Q",
            color=alt.Color("share:Q", title="share of norm²", scale=alt.Scale(scheme=HEATMAP_SCHEME),
                            legend=alt.Legend(format=".0%")),
            # Stroke in the fill colour: no hairline gaps between neighbouring checkpoints.
            stroke=alt.Stroke("share:Q", scale=alt.Scale(scheme=HEATMAP_SCHEME), legend=None),
            tooltip=[alt.Tooltip("step:Q", format=","), "frequency:Q", alt.Tooltip("share:Q", format=".1%")],
        )
    )
    layers = [cells]
    if keys:
        ticks = pd.DataFrame({"frequency": keys, "x": x_end})
        layers.append(alt.Chart(ticks).mark_tick(orient="horizontal", color=KEY_COLOR, thickness=3, size=10)
                      .encode(x="x:Q", y="frequency:Q", tooltip=["frequency:Q"]))
    if step is not None:
        layers.append(step_rule(step).mark_rule(color="white", strokeDash=[5, 3], size=1.5))
    return alt.layer(*layers).properties(title=_title(title, subtitle), height=height, autosize=FIT_WIDTH)


# --- ablation ----------------------------------------------------------------------------------

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
            color=alt.Color("status:N", scale=alt.Scale(domain=domain, range=[GRID_STATUS[s] for s in domain]),
                            legend=alt.Legend(title=None, orient="bottom", columns=2)),
            tooltip=["a:O", "b:O", "status:N"],
        )
        .properties(title=_title(title, subtitle), width=size, height=size, autosize=FIXED)
    )


def ablation_timeline(
    frame: pd.DataFrame, metric: str, *, step: int | None = None, phases: pd.DataFrame | None = None, height: int = 220
) -> alt.LayerChart:
    """``metric`` ("accuracy" or "loss", log scale) over training, before (solid) and after (dashed) one ablation.

    frame columns: step, split (train/test), when (before/after), accuracy, loss.
    """
    log_y = metric == "loss"
    data = frame[np.isfinite(frame[metric].astype(float))]
    if log_y:
        data = data[data[metric] > 0]
    y = alt.Y(f"{metric}:Q", title="loss (log scale)" if log_y else "accuracy")
    y = (y.scale(type="log").axis(labelExpr=LOG_LABELS, values=decades(data[metric])) if log_y
         else y.scale(domain=[0, 1]).axis(format=".0%"))
    lines = (
        alt.Chart(data)
        .mark_line(strokeWidth=1.8)
        .encode(
            x=alt.X("step:Q", title="training step", axis=alt.Axis(format="~s"), scale=alt.Scale(nice=False)),
            y=y,
            color=alt.Color("split:N", scale=alt.Scale(domain=["train", "test"], range=[SPLIT_COLORS["train"], SPLIT_COLORS["test"]]),
                            legend=alt.Legend(title=None, orient="top")),
            strokeDash=alt.StrokeDash("when:N", scale=alt.Scale(domain=["before", "after"], range=[[1, 0], [5, 3]]),
                                      legend=alt.Legend(title=None, orient="top")),
            tooltip=[alt.Tooltip("step:Q", format=","), "split:N", "when:N", alt.Tooltip(f"{metric}:Q", format=".4g")],
        )
    )
    title = "Loss before and after" if log_y else "Accuracy before and after"
    return _with_context(lines, step, phases).properties(title=_title(title), height=height, autosize=FIT_WIDTH)


# --- neurons -----------------------------------------------------------------------------------


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
    x = alt.X("group:N", title="neuron frequency (neurons grouped by their best frequency)", sort=order,
              axis=alt.Axis(labelAngle=0))
    offset = alt.XOffset("jitter:Q", scale=alt.Scale(domain=[-0.7, 0.7]))
    points = base.mark_circle(size=22, opacity=0.7).encode(
        x=x,
        xOffset=offset,
        y=alt.Y("activation:Q", title="activation (post-ReLU)"),
        color=alt.Color("key:N", scale=alt.Scale(domain=[True, False], range=[KEY_COLOR, OTHER_COLOR]),
                        legend=alt.Legend(title="in a key frequency", orient="top")),
        tooltip=["neuron:Q", "group:N", alt.Tooltip("activation:Q", format=".3g")],
    )
    layers = [points]
    if selected is not None and (frame["neuron"] == selected).any():
        chosen = frame[frame["neuron"] == selected]
        layers.append(
            alt.Chart(chosen).mark_point(size=160, color=CURRENT_COLOR, strokeWidth=2.5, filled=False).encode(
                x=x, xOffset=offset, y="activation:Q", tooltip=["neuron:Q", alt.Tooltip("activation:Q", format=".3g")]
            )
        )
    return alt.layer(*layers).properties(title=_title(title, subtitle), height=height, autosize=FIT_WIDTH)


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
        .encode(x=x, y=y, color=alt.Color("value:Q", title=color_title, scale=alt.Scale(scheme=scheme),
                                       # below the plot: beside it, the legend overflows a half-width column
                                       legend=alt.Legend(orient="bottom", direction="horizontal", gradientLength=size * 0.6)),
                tooltip=[alt.Tooltip("y:O", title=y_title), alt.Tooltip("x:O", title=x_title),
                         alt.Tooltip("value:Q", title=color_title, format=".3g")])
    )
    chart: alt.LayerChart | alt.Chart = cells
    if marker is not None:
        row, col = marker
        spot = pd.DataFrame({"x": [x_labels[col]], "y": [y_labels[row]], "value": [matrix[row, col]]})
        ring = alt.Chart(spot).mark_point(shape="square", size=120, color=CURRENT_COLOR, strokeWidth=2.5, filled=False)
        chart = alt.layer(cells, ring.encode(x=x, y=y, tooltip=[alt.Tooltip("value:Q", title=color_title, format=".3g")]))
    return chart.properties(title=_title(title, subtitle), width=size, height=size, autosize=FIXED)


# --- prediction and attention ------------------------------------------------------------------


def logits_chart(logits: np.ndarray, *, answer: int, label: int, title: str, subtitle: str | None = None,
                 height: int = 200) -> alt.LayerChart:
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
            color=alt.Color("kind:N", scale=alt.Scale(domain=domain, range=[colors[k] for k in domain]),
                            legend=alt.Legend(title=None, orient="top")),
            tooltip=["c:Q", alt.Tooltip("logit:Q", format=".3g"), "kind:N"],
        )
    )
    marks = frame[frame["kind"] != "other"].copy()
    marks["text"] = ["c=" + str(c) for c in marks["c"]]
    text = alt.Chart(marks).mark_text(dy=-8, fontWeight="bold").encode(x="c:Q", y="logit:Q", text="text:N")
    return alt.layer(bars, text).properties(title=_title(title, subtitle), height=height, autosize=FIT_WIDTH)


def contributions_chart(contributions: Mapping[int, float], *, title: str, subtitle: str | None = None,
                        x_title: str = "contribution", height: int = 200) -> alt.Chart:
    """Horizontal bars: one per frequency (keys), signed value."""
    frame = pd.DataFrame({"frequency": [f"k={k}" for k in contributions], "value": [float(v) for v in contributions.values()]})
    frame["sign"] = np.where(frame["value"] >= 0, "helps", "hurts")
    return (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            y=alt.Y("frequency:N", title=None, sort=list(frame["frequency"])),
            x=alt.X("value:Q", title=x_title),
            color=alt.Color("sign:N", scale=alt.Scale(domain=["helps", "hurts"], range=["#2ca02c", CURRENT_COLOR]), legend=None),
            tooltip=["frequency:N", alt.Tooltip("value:Q", format=".3g")],
        )
        .properties(title=_title(title, subtitle), height=height, autosize=FIT_WIDTH)
    )


def attention_chart(pattern: np.ndarray, *, a: int, b: int, title: str, subtitle: str | None = None,
                    height: int = 140) -> alt.Chart:
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
            x=alt.X("weight:Q", title="attention weight from the '=' position", scale=alt.Scale(domain=[0, 1]),
                    axis=alt.Axis(format=".0%")),
            color=alt.Color("source:N", scale=alt.Scale(domain=sources, range=["#1f77b4", "#ff7f0e", "#c6c6c6"]),
                            legend=alt.Legend(title="attends to", orient="top")),
            order=alt.Order("order:Q"),
            tooltip=["head:N", "source:N", alt.Tooltip("weight:Q", format=".1%")],
        )
        .properties(title=_title(title, subtitle), height=height, autosize=FIT_WIDTH)
    )


def waves_chart(frame: pd.DataFrame, *, label: int, title: str, subtitle: str | None = None, height: int = 200) -> alt.LayerChart:
    """Each frequency's wave over outputs c (long frame c, series, value) and their sum; a rule at the correct c."""
    names = list(dict.fromkeys(frame["series"]))
    palette = [("#000000" if n == "sum" else SERIES_PALETTE[i % len(SERIES_PALETTE)]) for i, n in enumerate(names)]
    lines = (
        alt.Chart(frame)
        .mark_line()
        .encode(
            x=alt.X("c:Q", title="output c", scale=alt.Scale(domain=[0, int(frame["c"].max()) if len(frame) else 1], nice=False)),
            y=alt.Y("value:Q", title="contribution to the logit of c"),
            color=alt.Color("series:N", scale=alt.Scale(domain=names, range=palette), legend=alt.Legend(title=None, orient="top")),
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
    return alt.layer(lines, rule).properties(title=_title(title, subtitle), height=height, autosize=FIT_WIDTH)


# --- sweeps ----------------------------------------------------------------------------------

OUTCOME_COLORS = {"never fit": "#bdbdbd", "memorised only": "#fdae6b", "grokked": "#31a354", "unreadable": "#ffffff"}


def sweep_grid(grid: pd.DataFrame, *, x_title: str, y_title: str | None, title: str, subtitle: str | None = None,
               x_order: Sequence[str] | None = None, y_order: Sequence[str] | None = None,
               cell: int = 70) -> alt.LayerChart:
    """One cell per sweep member (columns x, y, outcome, label, member, test_accuracy; see
    ``views.sweep_grid``), coloured by outcome, with the grokking step written in the cell."""
    present = set(grid["outcome"])
    domain = [o for o in OUTCOME_COLORS if o != "unreadable" or o in present]  # the three outcomes always
    n_x = len(x_order) if x_order is not None else grid["x"].nunique()
    n_y = len(y_order) if y_order is not None else max(grid["y"].nunique(), 1)
    x = alt.X("x:O", title=x_title, sort=list(x_order) if x_order is not None else "ascending",
              axis=alt.Axis(labelAngle=0))
    y = alt.Y("y:O", title=y_title, sort=list(y_order)[::-1] if y_order is not None else "descending",
              axis=alt.Axis(labels=y_title is not None, ticks=y_title is not None))
    base = alt.Chart(grid).encode(x=x, y=y)
    cells = base.mark_rect(stroke="white", strokeWidth=2).encode(
        color=alt.Color("outcome:N", scale=alt.Scale(domain=domain, range=[OUTCOME_COLORS[o] for o in domain]),
                        legend=alt.Legend(title=None, orient="bottom")),
        tooltip=["member:N", "outcome:N", alt.Tooltip("label:N", title="test >= 99% at step"),
                 alt.Tooltip("test_accuracy:Q", title="final test accuracy", format=".1%")],
    )
    text = base.mark_text(fontSize=12).encode(text="label:N")
    return alt.layer(cells, text).properties(
        title=_title(title, subtitle), width=cell * n_x, height=cell * n_y, autosize=FIXED)
