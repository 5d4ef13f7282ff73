"""Altair charts of the Adder page: curves over the run, the per-digit heatmap, carry chains, the
attention of the answer positions, ablations and the carry probe (frames from ``grokviz.ui.views.digits``)."""

from __future__ import annotations

import altair as alt
import pandas as pd

from grokviz.ui.charts.base import CURRENT_COLOR, HEATMAP_SCHEME, SERIES_PALETTE
from grokviz.ui.views.digits import POSITION_LABELS


def _rule(step: int) -> alt.Chart:
    return alt.Chart(pd.DataFrame({"step": [step]})).mark_rule(color="black", strokeDash=[4, 3]).encode(x="step:Q")


def curves(frame: pd.DataFrame, step: int, title: str, y_title: str, log_y: bool = False) -> alt.LayerChart:
    scale = alt.Scale(type="log") if log_y else alt.Scale(domain=[0, 1])
    lines = (
        alt.Chart(frame, title=title)
        .mark_line()
        .encode(
            x=alt.X("step:Q", title="step"),
            y=alt.Y("value:Q", title=y_title, scale=scale),
            color=alt.Color("series:N", title=None, scale=alt.Scale(range=SERIES_PALETTE)),
            tooltip=["step:Q", "series:N", alt.Tooltip("value:Q", format=".4g")],
        )
    )
    return (lines + _rule(step)).properties(height=260)


def digit_heatmap(frame: pd.DataFrame, step: int) -> alt.LayerChart:
    cells = (
        alt.Chart(
            frame,
            title=alt.Title(
                "Accuracy of each answer digit over training (validation set)",
                subtitle="rows: the digit's place value, least significant first; bright = learned",
            ),
        )
        .mark_rect()
        .encode(
            x=alt.X("step:Q", title="step"),
            x2="step_end:Q",
            y=alt.Y("position:N", sort=POSITION_LABELS, title="answer digit"),
            color=alt.Color("accuracy:Q", scale=alt.Scale(scheme=HEATMAP_SCHEME, domain=[0, 1])),
            tooltip=["step:Q", "position:N", alt.Tooltip("accuracy:Q", format=".2%")],
        )
    )
    return (cells + _rule(step)).properties(height=12 * 26)  # one readable row per answer digit


def chain_bars(frame: pd.DataFrame) -> alt.Chart:
    return (
        alt.Chart(frame, title=alt.Title("Exact match by longest carry chain", subtitle="verification set; n = pairs"))
        .mark_bar(color=SERIES_PALETTE[0])
        .encode(
            x=alt.X("chain:O", title="longest run of consecutive carries"),
            y=alt.Y("exact_match:Q", title="exact match", scale=alt.Scale(domain=[0, 1])),
            tooltip=["chain:O", "pairs:Q", alt.Tooltip("exact_match:Q", format=".2%")],
        )
        .properties(height=260)
    )


def attention_heatmap(frame: pd.DataFrame, key_labels: list[str], title: str) -> alt.Chart:
    frame = frame.assign(key_label=[key_labels[k] for k in frame["key"]])
    return (
        alt.Chart(
            frame,
            title=alt.Title(title, subtitle="rows: the position predicting each answer digit; columns: what it reads"),
        )
        .mark_rect()
        .encode(
            x=alt.X("key_label:N", sort=key_labels, title="input position: token"),
            y=alt.Y("query:N", sort=POSITION_LABELS, title="predicting"),
            color=alt.Color("weight:Q", scale=alt.Scale(scheme=HEATMAP_SCHEME, domain=[0, 1]), title="attention"),
            tooltip=["query:N", "key_label:N", alt.Tooltip("weight:Q", format=".3f")],
        )
        .properties(height=300)
    )


def before_after(frame: pd.DataFrame, title: str) -> alt.Chart:
    long = frame.melt(id_vars="position", var_name="when", value_name="accuracy")
    order = ["exact match", *POSITION_LABELS]
    return (
        alt.Chart(long, title=title)
        .mark_bar()
        .encode(
            x=alt.X("position:N", sort=order, title=None),
            xOffset="when:N",
            y=alt.Y("accuracy:Q", scale=alt.Scale(domain=[0, 1])),
            color=alt.Color("when:N", scale=alt.Scale(domain=["before", "after"], range=["#1f77b4", CURRENT_COLOR])),
            tooltip=["position:N", "when:N", alt.Tooltip("accuracy:Q", format=".2%")],
        )
        .properties(height=260)
    )


def probe_bars(frame: pd.DataFrame, title: str) -> alt.Chart:
    long = frame.melt(id_vars=["digit", "order"], value_vars=["probe accuracy", "majority baseline"], var_name="what")
    return (
        alt.Chart(long, title=title)
        .mark_bar()
        .encode(
            x=alt.X("digit:N", sort=POSITION_LABELS, title="carry into digit"),
            xOffset="what:N",
            y=alt.Y("value:Q", title="held-out accuracy", scale=alt.Scale(domain=[0, 1])),
            color=alt.Color(
                "what:N",
                scale=alt.Scale(domain=["probe accuracy", "majority baseline"], range=[SERIES_PALETTE[2], "#bbbbbb"]),
                title=None,
            ),
            tooltip=["digit:N", "what:N", alt.Tooltip("value:Q", format=".2%")],
        )
        .properties(height=260)
    )


def probe_heatmap(frame: pd.DataFrame, step: int) -> alt.Chart:
    return (
        alt.Chart(
            frame, title=alt.Title("Carry probe accuracy over training", subtitle="every checkpoint; held-out half")
        )
        .mark_rect()
        .encode(
            x=alt.X("step:O", title="checkpoint step"),
            y=alt.Y("digit:N", sort=POSITION_LABELS, title="carry into digit"),
            color=alt.Color("accuracy:Q", scale=alt.Scale(scheme=HEATMAP_SCHEME, domain=[0.5, 1])),
            tooltip=["step:O", "digit:N", alt.Tooltip("accuracy:Q", format=".2%")],
        )
        .properties(height=10 * 26)
    )
