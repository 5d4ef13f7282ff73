"""Charts of the Compare page: one measure of 2-6 runs on one set of axes, colour = run, dash =
series (train/test, W_E/W_L), each run's phase ends as thin rules in its colour."""

from __future__ import annotations

from collections.abc import Sequence

import altair as alt
import numpy as np
import pandas as pd

from grokviz.ui.charts.base import FIT_WIDTH, LOG_LABELS, PHASE_COLORS, SERIES_PALETTE, decades, title_params

DASHES = [[1, 0], [5, 3], [1, 2], [8, 2, 2, 2]]  # solid, dashed, dotted, dash-dot: series in order


def run_colors(runs: Sequence[str]) -> alt.Scale:
    """The same run -> colour mapping on every chart of the page."""
    return alt.Scale(domain=list(runs), range=[SERIES_PALETTE[i % len(SERIES_PALETTE)] for i in range(len(runs))])


def band_layer(bands: pd.DataFrame) -> alt.Chart:
    """The reference run's phases as pale bands (columns phase, start, end), legend on top: the
    runs' legend is below the chart and would share its row."""
    domain = [p for p in PHASE_COLORS if p in set(bands["phase"])]
    return (
        alt.Chart(bands)
        .mark_rect(opacity=0.55)
        .encode(
            x="start:Q",
            x2="end:Q",
            color=alt.Color(
                "phase:N",
                scale=alt.Scale(domain=domain, range=[PHASE_COLORS[p] for p in domain]),
                legend=alt.Legend(title=None, orient="top", symbolType="square", columns=2),
            ),
            tooltip=["phase:N", alt.Tooltip("start:Q", format=","), alt.Tooltip("end:Q", format=",")],
        )
    )


def compare_curves(
    frame: pd.DataFrame,
    *,
    runs: Sequence[str],
    title: str,
    y_title: str,
    x_title: str = "training step",
    subtitle: str | None = None,
    series: Sequence[str] | None = None,
    log_y: bool = False,
    log_x: bool = False,
    y_format: str | None = None,
    boundaries: pd.DataFrame | None = None,
    bands: pd.DataFrame | None = None,
    points: bool = False,
    aligned: bool = False,
    height: int = 240,
) -> alt.LayerChart:
    """Lines of ``value`` over ``x`` (columns run, series, step, x, value; from ``views.compare.run_curves``).

    ``series`` fixes the dash order (first solid). ``boundaries`` (run, phase, step, x) become
    rules in the run's colour; ``bands`` (phase, start, end, on the x axis) shade the phases of the
    run the others are aligned onto. ``log_y`` / ``log_x`` drop values with no place on a log
    axis (non-positive) rather than failing. ``aligned`` adds each point's own step to the tooltip.
    """
    data = frame[np.isfinite(frame["value"].astype(float))]
    if log_y:
        data = data[data["value"] > 0]
    if log_x:
        data = data[data["x"] > 0]
    names = list(series) if series is not None else list(dict.fromkeys(data["series"]))
    colors = run_colors(runs)
    x_scale = alt.Scale(type="log", nice=False) if log_x else alt.Scale(nice=False)
    x = alt.X("x:Q", title=x_title, axis=alt.Axis(format="~s"), scale=x_scale)
    y = alt.Y("value:Q", title=y_title)
    if log_y:
        y = y.scale(type="log").axis(labelExpr=LOG_LABELS, values=decades(data["value"]))
    if y_format:
        y = y.axis(format=y_format)
    tooltip = ["run:N", "series:N", alt.Tooltip("step:Q", format=",", title="step")]
    if aligned:
        tooltip.append(alt.Tooltip("x:Q", format=",.0f", title="aligned step"))
    tooltip.append(alt.Tooltip("value:Q", format=".4g"))
    point = alt.OverlayMarkDef(size=16) if points else False
    lines = (
        alt.Chart(data)
        .mark_line(strokeWidth=1.8, point=point)
        .encode(
            x=x,
            y=y,
            color=alt.Color(
                "run:N",
                scale=colors,
                legend=alt.Legend(title=None, orient="bottom", columns=1, labelLimit=600),
            ),
            strokeDash=alt.StrokeDash(
                "series:N",
                scale=alt.Scale(domain=names, range=[DASHES[i % len(DASHES)] for i in range(len(names))]),
                legend=alt.Legend(
                    title=None, orient="top", symbolType="stroke", symbolStrokeWidth=2, symbolStrokeColor="#555"
                )
                if len(names) > 1
                else None,
            ),
            detail="series:N",
            tooltip=tooltip,
        )
    )
    layers = []
    if bands is not None and len(bands):
        shaded = bands[bands["end"] > 0] if log_x else bands
        layers.append(band_layer(shaded.assign(start=shaded["start"].clip(lower=1)) if log_x else shaded))
    layers.append(lines)
    if boundaries is not None and len(boundaries):
        marks = boundaries[boundaries["x"] > 0] if log_x else boundaries
        rule_tooltip = ["run:N", "phase:N", alt.Tooltip("step:Q", format=",")]
        if aligned:
            rule_tooltip.append(alt.Tooltip("x:Q", format=",.0f", title="aligned step"))
        layers.append(
            alt.Chart(marks)
            .mark_rule(strokeDash=[2, 2], size=1.2, opacity=0.8)
            .encode(x="x:Q", color=alt.Color("run:N", scale=colors, legend=None), tooltip=rule_tooltip)
        )
    return (
        alt.layer(*layers)
        .resolve_scale(color="independent")
        .properties(title=title_params(title, subtitle), height=height, autosize=FIT_WIDTH)
    )
