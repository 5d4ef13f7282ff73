"""The forecast's data for the Training tab: the band and marker on the accuracy chart, the
forecast's history beside what happened, and whether a run is finished. Pure; no Streamlit."""

from __future__ import annotations

import pandas as pd

from grokviz.analysis.forecast import GROK_ACCURACY, grok_step


def finished(log: pd.DataFrame | None, steps: list[int], configured_steps: int) -> bool:
    """A run is finished when its log or its checkpoints reach its configured last step."""
    last_logged = int(log["step"].max()) if log is not None and len(log) else -1
    return max(last_logged, steps[-1] if steps else -1) >= configured_steps


def actual_grok_step(log: pd.DataFrame | None) -> int | None:
    """What happened: the log's grok step (None: the log never holds >= 95% to its end)."""
    if log is None or not len(log) or "test_accuracy" not in log:
        return None
    return grok_step(log)


def forecast_marks(forecast: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(band, marker) for the accuracy chart: the 80% interval [low, high] as one row, and the
    forecast grok step at the grok threshold; both empty for a "no"."""
    if not forecast.get("will_grok"):
        empty = pd.DataFrame({"start": [], "end": [], "label": []})
        return empty, pd.DataFrame({"step": [], "accuracy": [], "label": []})
    low, high, at = forecast["low"], forecast["high"], forecast["grok_step"]
    band = pd.DataFrame({"start": [low], "end": [high], "label": [f"80% interval {low:,}-{high:,}"]})
    marker = pd.DataFrame({"step": [at], "accuracy": [GROK_ACCURACY], "label": [f"forecast grok step {at:,}"]})
    return band, marker


def history_rows(history: pd.DataFrame, horizon: int) -> pd.DataFrame:
    """The history (at_step, will_grok, grok_step, low, high) for its chart: a "no" is drawn at
    the horizon with its kind named ("groks at" / "not by")."""
    frame = history.copy()
    frame["kind"] = frame["will_grok"].map({True: "groks at", False: "will not grok by"})
    frame["shown"] = frame["grok_step"].where(frame["will_grok"], horizon).astype(float)
    frame["low"] = frame["low"].where(frame["will_grok"], horizon).astype(float)
    frame["high"] = frame["high"].where(frame["will_grok"], horizon).astype(float)
    return frame[["at_step", "kind", "shown", "low", "high"]]
