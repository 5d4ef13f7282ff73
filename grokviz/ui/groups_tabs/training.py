"""The Groups page's Training tab: loss and accuracy from the log, and per checkpoint the character
FVE of each irrep and the restricted / excluded loss for the key irreps of the last checkpoint.

:func:`draw_log` (the log's two curves) is also what the page shows alone for a group too large to
analyse.
"""

from __future__ import annotations

import streamlit as st

from grokviz.storage.runs import Run
from grokviz.ui import catalog, loaders
from grokviz.ui import groups_loaders as gl
from grokviz.ui.charts.base import MEASURE_COLORS, SPLIT_COLORS
from grokviz.ui.charts.training import curves
from grokviz.ui.groups_tabs.state import GroupView
from grokviz.ui.views import groups as views

# Title, y-axis title and the chart's options of the log's two curves, by what they plot.
LOG_CHARTS = {
    "loss": {"title": "Loss", "y_title": "loss (log scale)", "log_y": True},
    "accuracy": {"title": "Accuracy", "y_title": "accuracy", "y_format": ".0%"},
}


def draw_log(run: Run, step: int):
    """The loss and accuracy curves from the log; the log, or None (after saying so) when it is empty."""
    log, problems = loaders.load_log(str(run.path), *catalog.log_signature(run))
    for problem in problems:
        st.warning(problem, icon=":material/warning:")
    if log.empty:
        st.info("No training log yet.")
        return None
    for column, (what, options) in zip(st.columns(2), LOG_CHARTS.items()):
        column.altair_chart(
            curves(views.log_curves(log, what), step=step, colors=SPLIT_COLORS, **options), width="stretch"
        )
    return log


def render(view: GroupView) -> None:
    """The measures over the run are computed once per run (each checkpoint's point is cached)."""
    log = draw_log(view.run, view.step)
    key = tuple(view.last_key)
    history = view.over_run(
        "groups_progress",
        lambda s, m: gl.progress_point(view.path, s, m, key),
        "Computing the character FVE and the restricted / excluded loss at every checkpoint",
        extra=(key,),
    )
    left, right = st.columns(2)
    left.altair_chart(
        curves(
            views.fve_curves(view.group, history, key),
            title="Character FVE per irrep",
            subtitle="the logits' variance along χ_ρ(a·b·c⁻¹), at every checkpoint",
            y_title="FVE",
            step=view.step,
            y_format=".0%",
            points=len(view.steps) <= 30,
            narrow=True,
        ),
        width="stretch",
    )
    right.altair_chart(
        curves(
            views.loss_curves(history, log),
            title="Restricted and excluded loss",
            subtitle="at every checkpoint; train and test from the log",
            y_title="loss (log scale)",
            log_y=True,
            step=view.step,
            colors=MEASURE_COLORS,
        ),
        width="stretch",
    )
    names = views.names(view.group)
    st.caption(
        f"Key irreps of the last checkpoint (step {view.steps[-1]:,}): "
        + (", ".join(names[label] for label in key) or "none yet")
        + ". **Character FVE**: the fraction of the logits' variance (centred per pair) along the character "
        "χ_ρ(a·b·c⁻¹), which peaks at the right answer c = a·b; the irreps' FVEs add up to at most 1. "
        "**Restricted loss**: the logits kept only along the key irreps' characters (and the mean), on all pairs; "
        "it falls as the irrep circuit forms. **Excluded loss**: the same removed, on the train pairs; it rises as "
        "the model comes to rely on them."
    )
