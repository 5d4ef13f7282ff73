"""The explorer's headline numbers (train/test accuracy and loss at the chosen step): the log's row of
that step, completed from the checkpoint's own metrics where the log lacks them."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

HEADLINE_COLUMNS = ("train_accuracy", "test_accuracy", "train_loss", "test_loss")


def log_row_at(log: pd.DataFrame, step: int) -> dict | None:
    """The training-log row of exactly ``step`` (the trainer logs every checkpoint step), or None."""
    if log is None or not len(log):
        return None
    rows = log[log["step"] == int(step)]
    if not len(rows):
        return None
    return {c: float(rows.iloc[-1][c]) for c in HEADLINE_COLUMNS}


def headline_row(logged: dict | None, evaluate) -> dict:
    """The headline's numbers: the log's row, with ``evaluate()`` (the checkpoint's own metrics)
    filling in a missing row or its NaN values (an imported log may lack accuracies)."""
    if logged is not None and all(value == value for value in logged.values()):
        return logged
    computed = evaluate()
    if logged is None:
        return computed
    return {name: (computed[name] if value != value else value) for name, value in logged.items()}


def metrics_row(metrics: Mapping) -> dict:
    """SplitMetrics by split -> the headline's four numbers."""
    return {
        "train_accuracy": float(metrics["train"].accuracy),
        "test_accuracy": float(metrics["test"].accuracy),
        "train_loss": float(metrics["train"].loss),
        "test_loss": float(metrics["test"].loss),
    }
