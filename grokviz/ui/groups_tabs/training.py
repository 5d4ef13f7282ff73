"""The Groups page's Training tab: loss and accuracy from the log with the phases shaded (the
explorer's rule, read off the log), and per checkpoint the character FVE of each irrep and the
restricted / excluded loss for the key irreps of the last checkpoint.

:func:`draw_log` (the log's two curves) is also what the page shows alone for a group too large to
analyse.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from grokviz.storage.runs import Run
from grokviz.ui import catalog, loaders
from grokviz.ui import groups_loaders as gl
from grokviz.ui.charts.base import MEASURE_COLORS, SPLIT_COLORS
from grokviz.ui.charts.training import curves
from grokviz.ui.groups_tabs.state import GroupView
from grokviz.ui.views import groups as views
from grokviz.ui.views.phases import phase_table, phases_found

# Title, y-axis title and the chart's options of the log's two curves, by what they plot.
LOG_CHARTS = {
    "loss": {"title": "Loss", "y_title": "loss (log scale)", "log_y": True},
    "accuracy": {"title": "Accuracy", "y_title": "accuracy", "y_format": ".0%"},
}


def phase_bands(run: Run, log) -> tuple[pd.DataFrame, object]:
    """The run's phases, read off its log by the explorer's rule (``progress.PHASE_RULE``: memorisation
    ends at the test-loss peak after train accuracy fits, ...), as bands for the charts."""
    phases = loaders.load_phases(str(run.path), *catalog.log_signature(run), None, False)
    last = int(log["step"].max()) if log is not None and len(log) else 0
    return phase_table(phases, last), phases


def draw_log(run: Run, step: int):
    """The loss and accuracy curves from the log, the phases shaded; the log, or None (after saying
    so) when it is empty."""
    log, problems = loaders.load_log(str(run.path), *catalog.log_signature(run))
    for problem in problems:
        st.warning(problem, icon=":material/warning:")
    if log.empty:
        st.info("No training log yet.")
        return None
    bands, _ = phase_bands(run, log)
    for column, (what, options) in zip(st.columns(2), LOG_CHARTS.items()):
        column.altair_chart(
            curves(views.log_curves(log, what), step=step, colors=SPLIT_COLORS, phases=bands, **options),
            width="stretch",
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
    bands, phases = phase_bands(view.run, log)
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
            phases=bands,
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
            phases=bands,
        ),
        width="stretch",
    )
    if phases_found(phases):
        st.caption(
            f"Phases, from the log by the run explorer's rule: memorisation ends at step {phases.memorisation_end:,}"
            + (f", circuit formation at {phases.circuit_formation_end:,}" if phases.circuit_formation_end else "")
            + (f", cleanup at {phases.cleanup_end:,}" if phases.cleanup_end else "")
            + f". {phases.rule}"
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
