"""What every grokviz chart shares: colours, titles, phase bands, the step rule, static specs.

Owns how every picture of grokviz looks. Each function takes plain data (pandas frames, numpy
arrays, ints) shaped by ``grokviz.ui.views`` and returns an Altair chart; nothing here reads files,
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
from collections.abc import Mapping

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
MEASURE_COLORS = {
    **SPLIT_COLORS,
    "restricted": "#2ca02c",
    "excluded": "#9467bd",
    "W_E": "#17becf",
    "W_L": "#8c564b",
    "all parameters": "#8c564b",
}
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


def title_params(text: str, subtitle: str | None = None) -> alt.TitleParams:
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


def with_context(
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
            # 15 decimals (pandas' most): at the default 10 a loss of 1.7e-7 kept 3 significant digits.
            datasets[name] = json.loads(data.to_json(orient="records", double_precision=15))
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
        "encoding": {
            "x": {"field": "step", "type": "quantitative"},
            "tooltip": [{"field": "label", "type": "nominal"}],
        },
    }
    if "layer" not in out:
        raise ValueError("add_step_rule needs a layered spec (charts over training are layers)")
    out["layer"] = list(out["layer"]) + [rule]
    return out


# --- curves over training ---------------------------------------------------------------------
