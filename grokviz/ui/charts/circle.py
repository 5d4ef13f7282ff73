"""The circle chart: tokens in one frequency's plane, joined in angle order, the input and answer marked."""

from __future__ import annotations

import altair as alt
import pandas as pd

from grokviz.ui.charts.base import FIXED, title_params

ROLE_COLORS = {"a": "#1f77b4", "b": "#ff7f0e", "answer": "#2ca02c", "a = b": "#9467bd"}


def circle_chart(
    frame: pd.DataFrame, marked: pd.DataFrame, *, title: str, subtitle: str | None = None, size: int = 300
) -> alt.LayerChart:
    """frame: token, x, y, order (a closed path through the points by ``order``); marked: token, x, y, role."""
    closed = pd.concat([frame, frame.iloc[:1].assign(order=len(frame))], ignore_index=True)  # back to the start
    extent = float(max(frame["x"].abs().max(), frame["y"].abs().max(), 1e-12)) * 1.12
    scale = alt.Scale(domain=[-extent, extent], nice=False)
    x = alt.X("x:Q", scale=scale, axis=alt.Axis(title="cos-k component", labels=False, ticks=False))
    y = alt.Y("y:Q", scale=scale, axis=alt.Axis(title="sin-k component", labels=False, ticks=False))
    path = alt.Chart(closed).mark_line(color="#bbbbbb", strokeWidth=1).encode(x=x, y=y, order="order:Q")
    points = (
        alt.Chart(frame)
        .mark_circle(size=28, color="#555555")
        .encode(
            x=x, y=y, tooltip=["token:Q", "order:Q", alt.Tooltip("x:Q", format=".3g"), alt.Tooltip("y:Q", format=".3g")]
        )
    )
    labels = alt.Chart(frame).mark_text(fontSize=7, dx=7, dy=-6, color="#333333").encode(x=x, y=y, text="token:Q")
    roles = list(dict.fromkeys(marked["role"])) or ["a"]
    highlight = (
        alt.Chart(marked)
        .mark_point(size=220, strokeWidth=3, filled=False)
        .encode(
            x=x,
            y=y,
            color=alt.Color(
                "role:N",
                scale=alt.Scale(domain=roles, range=[ROLE_COLORS[r] for r in roles]),
                legend=alt.Legend(title=None, orient="bottom"),
            ),
            tooltip=["role:N", "token:Q"],
        )
    )
    return alt.layer(path, points, labels, highlight).properties(
        title=title_params(title, subtitle), width=size, height=size, autosize=FIXED
    )
