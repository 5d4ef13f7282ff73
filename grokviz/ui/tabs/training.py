"""The Training tab: loss and accuracy from the log, and the paper's progress measures per checkpoint,
with the training phases shaded and a rule at the current step."""

from __future__ import annotations

import streamlit as st

from grokviz.errors import GrokvizError
from grokviz.storage.timeline import timeline
from grokviz.ui import charts, loaders
from grokviz.ui.state import View
from grokviz.ui.views import curves
from grokviz.ui.widgets import show_error


def render(view: View) -> None:
    """Curves over the whole run (drawn once per run; the step rule is added per rerun)."""
    if view.log is None or not len(view.log):
        st.info("This run has no training log; the progress measures below come from the checkpoints.")
    else:
        log_key = (view.run_path, view.signature, view.phase_key)
        left, right = st.columns(2)
        loss_spec = loaders.static_chart(
            ("loss",) + log_key,
            lambda: charts.curves(
                curves.long_curves(view.log, {"train_loss": "train", "test_loss": "test"}),
                title="Loss",
                subtitle="cross-entropy from the training log",
                y_title="loss (log scale)",
                log_y=True,
                phases=view.phase_bands,
                colors=charts.SPLIT_COLORS,
            ),
        )
        left.vega_lite_chart(charts.add_step_rule(loss_spec, view.step), width="stretch")
        accuracy_spec = loaders.static_chart(
            ("accuracy",) + log_key,
            lambda: charts.curves(
                curves.long_curves(view.log, {"train_accuracy": "train", "test_accuracy": "test"}),
                title="Accuracy",
                subtitle="from the training log",
                y_title="accuracy",
                y_format=".0%",
                phases=view.phase_bands,
                colors=charts.SPLIT_COLORS,
            ),
        )
        if view.log["train_accuracy"].notna().any():
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
    known_timeline = loaders.memo_store().get(("timeline", (view.run_path, view.signature)))
    try:
        if view.too_big:
            st.info(view.too_big)
            progress_frame = None
        else:
            progress_frame = loaders.remembered(
                "timeline",
                (view.run_path, view.signature),
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
