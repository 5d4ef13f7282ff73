"""The Training tab: loss and accuracy from the log, and the paper's progress measures per checkpoint,
with the training phases shaded and a rule at the current step.

The log's two charts (:func:`log_chart`) need no torch: the explorer draws them first, from the log
alone, when the app has just started (its fast start), so this module imports torch's users (the
loaders, the timeline) where it uses them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd
import streamlit as st

from grokviz.errors import GrokvizError
from grokviz.ui import catalog, charts
from grokviz.ui.views import curves
from grokviz.ui.widgets import show_error

if TYPE_CHECKING:
    from grokviz.ui.state import View

# The log's charts: title -> (log column -> series name, what curves() is told beside the data).
LOG_CHARTS = {
    "Loss": (
        {"train_loss": "train", "test_loss": "test"},
        {"subtitle": "cross-entropy from the training log", "y_title": "loss (log scale)", "log_y": True},
    ),
    "Accuracy": (
        {"train_accuracy": "train", "test_accuracy": "test"},
        {"subtitle": "from the training log", "y_title": "accuracy", "y_format": ".0%"},
    ),
}


def log_chart(log: pd.DataFrame, title: str, phase_bands: pd.DataFrame | None):
    """One of :data:`LOG_CHARTS` over the log, with the phases shaded (None: not known yet)."""
    columns, options = LOG_CHARTS[title]
    frame = curves.long_curves(log, columns)
    return charts.curves(frame, title=title, phases=phase_bands, colors=charts.SPLIT_COLORS, **options)


def render(view: View) -> None:
    """Curves over the whole run (drawn once per run; the step rule is added per rerun)."""
    from grokviz.storage.timeline import timeline
    from grokviz.ui import loaders
    from grokviz.ui.tabs import forecast_panel

    if view.log is None or not len(view.log):
        st.info("This run has no training log; the progress measures below come from the checkpoints.")
    else:
        log_key = (view.run_path, view.signature, view.phase_key)
        left, right = st.columns(2)
        loss_spec = loaders.static_chart(("loss",) + log_key, lambda: log_chart(view.log, "Loss", view.phase_bands))
        left.vega_lite_chart(charts.add_step_rule(loss_spec, view.step), width="stretch")
        if view.log["train_accuracy"].notna().any():
            accuracy_spec = loaders.static_chart(
                ("accuracy",) + log_key, lambda: log_chart(view.log, "Accuracy", view.phase_bands)
            )
            right.vega_lite_chart(charts.add_step_rule(accuracy_spec, view.step), width="stretch")
        else:
            right.info("This run's training log has no accuracies.")
    with st.expander("How the phases are found"):
        st.write(view.phases.rule)
    st.subheader("Progress measures")
    st.caption(
        f"Per saved checkpoint, for the key frequencies of the last checkpoint: {view.key_text} "
        "(frequency (clustered neurons))."
    )
    key = catalog.progress_key(view.run_path, view.signature)
    known_timeline = loaders.memo_store().get(("timeline", key))
    try:
        if view.too_big:
            st.info(view.too_big)
            progress_frame = None
        else:
            progress_frame = loaders.remembered(
                "timeline",
                key,
                lambda report: timeline(view.run, progress=report),
                "Computing progress measures for every checkpoint",
            )
            if known_timeline is None:
                st.rerun()  # once: the phases (and the bands on every chart) use the weight norm too
    except GrokvizError as exc:
        show_error(exc)
        progress_frame = None
    if progress_frame is not None and len(progress_frame):
        panels = list(curves.PROGRESS_PANELS.items())
        row = st.columns(len(panels))
        for column, (title, (series, log_y, y_title, explanation)) in zip(row, panels):
            spec = loaders.static_chart(
                ("progress", title, view.run_path, view.signature, view.phase_key),
                lambda: charts.curves(
                    curves.long_curves(progress_frame, series),
                    title=title,
                    y_title=y_title,
                    log_y=log_y,
                    phases=view.phase_bands,
                    points=True,
                    narrow=True,
                    colors=charts.MEASURE_COLORS,
                ),
            )
            column.vega_lite_chart(charts.add_step_rule(spec, view.step), width="stretch")
            column.caption(explanation)
    forecast_panel.render(view)
