"""The parameter cliff chart of the Sweeps page: final accuracy against parameter count, one point
per member (``views.cliff.cliff_points``), coloured by outcome, the grok steps of each parameter count
written once above its band (``views.cliff.grok_labels``; each member's own in its tooltip); hovering
shows the member's settings, clicking selects it (the page opens it)."""

from __future__ import annotations

import altair as alt
import pandas as pd

from grokviz.ui.charts.base import FIXED, title_params
from grokviz.ui.charts.inputs import OUTCOME_COLORS
from grokviz.ui.views.cliff import grok_labels

SELECTION = "member_pick"  # the chart's point selection, as st.altair_chart reports it


def cliff_chart(
    points: pd.DataFrame, *, title: str, accuracy_title: str, subtitle: str | None = None
) -> alt.LayerChart:
    """Points (columns member, params, slot, accuracy, outcome, grok_step, grok_label, config), one
    band per parameter count; a click selects one member (:data:`SELECTION`, by its ``member`` field)."""
    domain = [o for o in OUTCOME_COLORS if o in set(points["outcome"])] or list(OUTCOME_COLORS)
    pick = alt.selection_point(name=SELECTION, fields=["member"], on="click", clear="dblclick")
    counts = sorted(set(int(p) for p in points["params"]))
    # One band per parameter count, in order (not to scale: sizes close in count stay apart), the
    # members of a count side by side in it.
    x = alt.X(
        "params:O",
        title="parameters (the members of one size side by side: by their other settings, then seed)",
        sort=counts,
        scale=alt.Scale(type="band", paddingInner=0.25),
        axis=alt.Axis(labelAngle=0, format=",d"),
    )
    offset = alt.XOffset("slot:O")
    y = alt.Y("accuracy:Q", title=accuracy_title, scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%"))
    base = alt.Chart(points).encode(x=x, xOffset=offset, y=y)
    dots = (
        base.mark_point(filled=True, size=90, stroke="black")
        .encode(
            color=alt.Color(
                "outcome:N",
                scale=alt.Scale(domain=domain, range=[OUTCOME_COLORS[o] for o in domain]),
                legend=alt.Legend(title=None, orient="bottom"),
            ),
            strokeWidth=alt.condition(pick, alt.value(2), alt.value(0)),
            opacity=alt.condition(pick, alt.value(1.0), alt.value(0.55)),
            tooltip=[
                alt.Tooltip("member:N"),
                alt.Tooltip("config:N", title="settings"),
                alt.Tooltip("params:Q", title="parameters", format=","),
                alt.Tooltip("accuracy:Q", title=accuracy_title, format=".2%"),
                alt.Tooltip("outcome:N"),
                alt.Tooltip("grok_label:N", title=">= 99% at step"),
            ],
        )
        .add_params(pick)
    )
    # One label per band, centred above its highest grokked member: labels per member overlapped
    # where members of one count grok close together.
    steps = (
        alt.Chart(grok_labels(points))
        .mark_text(baseline="bottom", dy=-9, fontSize=10, color="#444")
        .encode(x=x, y=y, text="label:N")
    )
    return alt.layer(dots, steps).properties(
        title=title_params(title, subtitle),
        # About 18 px per member (a point is 11 px wide), at least 70 per band: 48 members at six
        # sizes fit beside the page's sidebar.
        width=max(360, len(counts) * max(70, 18 * (int(points["slot"].max()) + 1))),
        height=340,
        autosize=FIXED,
    )
