"""Curves over training: a log's columns as long (step, series, value) frames, downsampled for the
browser; the span each saved step stands for in a heatmap over time; and the Training tab's
progress panels (which log columns each one draws, and what it shows). Pure; no Streamlit."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

# The browser draws every mark: a few hundred points per curve keep charts quick to draw
# while still showing every feature of a 25k-step run (log rows are every 20 steps).
MAX_CURVE_POINTS = 600


def downsample(frame: pd.DataFrame, max_rows: int = MAX_CURVE_POINTS) -> pd.DataFrame:
    """Every k-th row so at most ~``max_rows`` remain, first and last rows always kept."""
    n = len(frame)
    if n <= max_rows:
        return frame
    keep = np.unique(np.concatenate([np.linspace(0, n - 1, max_rows).round().astype(int), [0, n - 1]]))
    return frame.iloc[keep]


def long_curves(frame: pd.DataFrame, columns: Mapping[str, str], max_rows: int = MAX_CURVE_POINTS) -> pd.DataFrame:
    """Wide frame with a ``step`` column -> long (step, series, value); ``columns`` maps column -> series name.

    Each column is downsampled on its own rows with a value (an imported log may have the test
    loss on every 10th row only), so every curve keeps up to ``max_rows`` points.
    """
    ordered = frame.sort_values("step")
    parts = []
    for column, name in columns.items():
        if column not in ordered.columns:
            continue
        values = ordered[["step", column]]
        values = values[np.isfinite(values[column].astype(float))]
        if not len(values):
            continue
        small = downsample(values, max_rows)
        parts.append(
            pd.DataFrame(
                {"step": small["step"].to_numpy(), "series": name, "value": small[column].astype(float).to_numpy()}
            )
        )
    if not parts:
        return pd.DataFrame(
            {"step": pd.Series(dtype="int64"), "series": pd.Series(dtype=str), "value": pd.Series(dtype=float)}
        )
    return pd.concat(parts, ignore_index=True)


def step_spans(steps: Sequence[int]) -> pd.DataFrame:
    """For heatmaps over time: each saved step stands for the span between midpoints to its neighbours."""
    steps = np.asarray(sorted(steps), dtype=float)
    if len(steps) == 0:
        return pd.DataFrame({"step": [], "start": [], "end": []})
    mids = (steps[1:] + steps[:-1]) / 2
    start = np.concatenate([[steps[0]], mids])
    end = np.concatenate([mids, [steps[-1]]])
    if len(steps) == 1:
        end = start + 1
    return pd.DataFrame({"step": steps.astype(int), "start": start, "end": end})


PROGRESS_PANELS = {
    # title -> (column -> series name, log scale, y title, what it shows)
    "Restricted and excluded loss": (
        {"restricted_loss": "restricted", "excluded_loss": "excluded", "test_loss": "test", "train_loss": "train"},
        True,
        "loss (log scale)",
        "**Restricted loss**: keep only the key frequencies at the logits (all pairs); it falls as the "
        "Fourier circuit forms. **Excluded loss**: remove them (train pairs); it rises as the model comes "
        "to rely on them even for the pairs it memorised.",
    ),
    "Gini of the Fourier spectra": (
        {"gini_embed": "W_E", "gini_unembed": "W_L"},
        False,
        "Gini coefficient",
        "**Gini coefficient** of the per-frequency norms of W_E and of W_L = W_out W_U: 0 when spread "
        "evenly, near 1 when a few frequencies hold everything; it rises as the key frequencies take over.",
    ),
    "Sum of squared weights": (
        {"sum_sq_weights": "all parameters"},
        False,
        "sum of squared weights",
        "**Sum of squared weights** over all parameters: weight decay shrinks the memorising weights; "
        "it falls fastest during cleanup.",
    ),
}
