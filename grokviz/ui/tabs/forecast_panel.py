"""The forecast on the explorer's Training tab: will the run grok, and when, from what it shows at
the selected step; for a finished run, what the forecast said at each saved step beside what
happened; and the LLC curve with the phases shaded.

One entry, ``render(view)``, called by the Training tab (``grokviz.ui.tabs.training``) after its
charts. Each of the three takes seconds (the LLC of checkpoints), so each is made on request: the
forecast at a step with a button, then cached per (run, step, signal set, file signature) and shown
again whenever that step is selected; the history and the LLC with a progress bar, then remembered.
"""

from __future__ import annotations

import streamlit as st

from grokviz.analysis.forecast import SIGNALS, Forecast
from grokviz.errors import GrokvizError
from grokviz.storage.forecast import forecast_history, forecast_run, outside_the_fit
from grokviz.storage.timeline import timeline
from grokviz.ui import loaders
from grokviz.ui.charts.forecast import forecast_accuracy_chart, forecast_history_chart
from grokviz.ui.charts.training import llc_chart
from grokviz.ui.state import View
from grokviz.ui.views import curves
from grokviz.ui.views import forecast as shaping

SIGNAL_LABELS = {"train": "weights and training pairs only", "all": "the test split too"}


@st.cache_data(max_entries=64, show_spinner="Forecasting…")
def cached_forecast(run_path: str, step: int, signals: str, signature: tuple) -> dict | str:
    """The forecast's ``to_dict()`` at ``step``, or the reason it cannot be made (a string)."""
    try:
        return forecast_run(loaders.opened_run(run_path), step, signals).to_dict()
    except GrokvizError as exc:
        return str(exc)


def render(view: View) -> None:
    """The forecast at ``view.step``, its history for a finished run, and the LLC curve."""
    st.subheader("Forecast: will it grok, and when?")
    if view.run.family != "modular" or view.too_big:
        st.info(view.too_big or "The forecast is fitted on modular-arithmetic runs only.")
        return
    why = outside_the_fit(view.run.config)
    if why is not None:
        st.info(f"{why[0].upper()}{why[1:]} (docs/forecast.md).")
        return
    signals = st.radio(
        "Signals",
        SIGNALS,
        horizontal=True,
        key="forecast_signals",
        format_func=lambda s: f"{s}: {SIGNAL_LABELS[s]}",
    )
    # A forecast estimates the LLC of two checkpoints: seconds of CPU, so it is made when asked
    # (then remembered for this step) and never on a plain move of the step slider, which must
    # rerun in milliseconds.
    key = (view.run_path, view.step, signals, view.signature)
    asked = st.session_state.setdefault("forecasts_asked", set())
    if key not in asked:
        if not st.button(
            f"Forecast from step {view.step:,} (a few seconds: the LLC of two checkpoints)", key="forecast_now"
        ):
            st.caption(
                "The forecast reads only what the run showed up to the selected step: its log, its checkpoints "
                "and (with `all`) its test split. Steps already forecast come back at once."
            )
            _history(view, signals)
            _llc(view)
            return
        asked.add(key)
    made = cached_forecast(view.run_path, view.step, signals, view.signature)
    if isinstance(made, str):
        st.info(f"No forecast at step {view.step:,}: {made}")
    else:
        band, marker = shaping.forecast_marks(made)
        log = view.log if view.log is not None else None
        if log is not None and len(log):
            shown = log[log["step"] <= view.step]  # what the forecast could see
            chart = forecast_accuracy_chart(
                curves.long_curves(shown, {"train_accuracy": "train", "test_accuracy": "test"}),
                band,
                marker,
                step=view.step,
                phases=view.phase_bands,
                x_end=float(log["step"].max()),
            )
            st.altair_chart(chart, width="stretch")
        st.write(Forecast(**made).sentence())
    _history(view, signals)
    _llc(view)


def _history(view: View, signals: str) -> None:
    if not shaping.finished(view.log, view.steps, view.cfg.steps):
        return
    key = (view.run_path, view.signature, signals)
    known = loaders.memo_store().get(("forecast-history", key))
    if known is None and not st.button("Show the forecast's history (seconds per checkpoint)", key="forecast_history"):
        return
    history = loaders.remembered(
        "forecast-history",
        key,
        lambda report: forecast_history(view.run, signals, progress=report),
        "Forecasting from each saved step",
    )
    if not len(history):
        st.info("Too early at every saved step: no forecast to show.")
        return
    actual = shaping.actual_grok_step(view.log)
    st.altair_chart(forecast_history_chart(shaping.history_rows(history, view.cfg.steps), actual), width="stretch")
    st.caption(
        "What the forecast said from each saved step, using only what the run showed up to it"
        + (f"; it grokked at step {actual:,}." if actual is not None else "; it never grokked in its log.")
    )


def _llc(view: View) -> None:
    key = (view.run_path, view.signature)
    known = loaders.memo_store().get(("timeline-llc", key))
    if known is None and not st.button(
        "Compute the local learning coefficient of every checkpoint (seconds each, cached beside the run)",
        key="forecast_llc",
    ):
        return
    frame = loaders.remembered(
        "timeline-llc",
        key,
        lambda report: timeline(view.run, progress=report, llc=True),
        "Estimating the LLC of every checkpoint",
    )
    st.altair_chart(llc_chart(frame, step=view.step, phases=view.phase_bands), width="stretch")
    st.caption(
        "The LLC (Lau et al.) on the training pairs rises while the model memorises, peaks, and falls as the "
        "circuit forms and cleanup removes the memorised part. Comparable only under one sampler setting."
    )
