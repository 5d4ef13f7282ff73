"""The forecast's charts: test accuracy with the forecast's 80% band and marker, and the forecast's
history (what it said at each saved step) beside the grok step that happened. Data in, chart out."""

from __future__ import annotations

import altair as alt
import pandas as pd

from grokviz.ui.charts.base import FIT_WIDTH, KEY_COLOR, SPLIT_COLORS, title_params, with_context


def forecast_accuracy_chart(
    curves: pd.DataFrame,
    band: pd.DataFrame,
    marker: pd.DataFrame,
    *,
    step: int | None = None,
    phases: pd.DataFrame | None = None,
    x_end: float | None = None,
    height: int = 240,
) -> alt.LayerChart:
    """Accuracy curves (long frame: step, series, value) with the 80% band (start, end) and the
    forecast grok step (step, accuracy) in orange; ``x_end`` stretches the axis to show a band
    beyond the log."""
    end = max([float(curves["step"].max()) if len(curves) else 0.0, *band["end"].tolist(), x_end or 0.0])
    x = alt.X("step:Q", title="training step", axis=alt.Axis(format="~s"), scale=alt.Scale(domain=[0, end], nice=False))
    lines = (
        alt.Chart(curves)
        .mark_line(strokeWidth=1.8)
        .encode(
            x=x,
            y=alt.Y("value:Q", title="accuracy", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format=".0%")),
            color=alt.Color(
                "series:N",
                scale=alt.Scale(domain=["train", "test"], range=[SPLIT_COLORS["train"], SPLIT_COLORS["test"]]),
                legend=alt.Legend(title=None, orient="top"),
            ),
            tooltip=[alt.Tooltip("step:Q", format=","), "series:N", alt.Tooltip("value:Q", format=".1%")],
        )
    )
    layers = [
        alt.Chart(band).mark_rect(color=KEY_COLOR, opacity=0.18).encode(x="start:Q", x2="end:Q", tooltip=["label:N"]),
        lines,
        alt.Chart(marker)
        .mark_point(shape="diamond", size=140, filled=True, color=KEY_COLOR)
        .encode(x="step:Q", y="accuracy:Q", tooltip=["label:N"]),
        alt.Chart(marker).mark_rule(color=KEY_COLOR, size=2).encode(x="step:Q", tooltip=["label:N"]),
    ]
    return with_context(alt.layer(*layers), step, phases).properties(
        title=title_params("Accuracy and the forecast", "orange: the forecast grok step and its 80% interval"),
        height=height,
        autosize=FIT_WIDTH,
    )


def forecast_history_chart(rows: pd.DataFrame, actual: int | None, *, height: int = 240) -> alt.LayerChart:
    """What the forecast said at each saved step (rows: at_step, kind, shown, low, high), with the
    grok step that happened as a horizontal line."""
    x = alt.X("at_step:Q", title="forecast made at step", axis=alt.Axis(format="~s"))
    y = alt.Y("shown:Q", title="forecast grok step", axis=alt.Axis(format="~s"))
    kinds = alt.Color(
        "kind:N",
        scale=alt.Scale(domain=["groks at", "will not grok by"], range=[KEY_COLOR, "#7f7f7f"]),
        legend=alt.Legend(title=None, orient="top"),
    )
    tooltip = [
        alt.Tooltip("at_step:Q", format=","),
        "kind:N",
        alt.Tooltip("shown:Q", format=","),
        alt.Tooltip("low:Q", format=","),
        alt.Tooltip("high:Q", format=","),
    ]
    layers = [
        alt.Chart(rows).mark_rule(color=KEY_COLOR, opacity=0.5, size=2).encode(x=x, y="low:Q", y2="high:Q"),
        alt.Chart(rows).mark_point(filled=True, size=60).encode(x=x, y=y, color=kinds, tooltip=tooltip),
    ]
    if actual is not None:
        happened = pd.DataFrame({"shown": [actual], "label": [f"grokked at step {actual:,}"]})
        layers.append(
            alt.Chart(happened)
            .mark_rule(color=SPLIT_COLORS["test"], strokeDash=[6, 3])
            .encode(y="shown:Q", tooltip=["label:N"])
        )
    subtitle = "dots: the forecast at each saved step; red dashes: the step it grokked"
    return alt.layer(*layers).properties(
        title=title_params("The forecast's history", subtitle), height=height, autosize=FIT_WIDTH
    )
