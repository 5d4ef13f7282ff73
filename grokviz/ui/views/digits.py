"""Data shaping for the Adder page (pure: analysis results and logs in, pandas frames out; no
Streamlit, no files), so every table the page draws is tested without a browser."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from grokviz.core import digits_tasks

POSITION_LABELS = digits_tasks.answer_labels()  # 10^0 .. 10^10, EOS


def curve_frame(log: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    """Long frame (step, value, series) of the log columns ``{column: series name}``."""
    parts = [pd.DataFrame({"step": log["step"], "value": log[c], "series": name}) for c, name in columns.items()]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["step", "value", "series"])


def digit_heatmap_frame(log: pd.DataFrame, max_columns: int = 150) -> pd.DataFrame:
    """(step, step_end, position, accuracy): each answer position's validation accuracy per log
    row, as cells spanning to the next row (at most ``max_columns`` rows, evenly thinned)."""
    if log.empty:
        return pd.DataFrame(columns=["step", "step_end", "position", "order", "accuracy"])
    stride = max(1, len(log) // max_columns)
    rows = log.iloc[::stride].reset_index(drop=True)
    steps = rows["step"].tolist()
    ends = steps[1:] + [steps[-1] + max(1, (steps[-1] - steps[0]) // max(len(steps), 1))]
    out = []
    for k, label in enumerate(POSITION_LABELS):
        out.append(
            pd.DataFrame(
                {"step": steps, "step_end": ends, "position": label, "order": k, "accuracy": rows[f"val_acc_{k}"]}
            )
        )
    return pd.concat(out, ignore_index=True)


def first_learned(log: pd.DataFrame, level: float = 0.99) -> pd.DataFrame:
    """(position, step): the first logged step at which each answer position's validation accuracy
    reached ``level`` (None if never): which digits are learned first."""
    rows = []
    for k, label in enumerate(POSITION_LABELS):
        reached = log.loc[log[f"val_acc_{k}"] >= level, "step"]
        rows.append(
            {"position": label, f"first step at >= {level:.0%}": int(reached.iloc[0]) if len(reached) else None}
        )
    return pd.DataFrame(rows)


def answer_table(answer) -> pd.DataFrame:
    """The model's answer to one a + b, one row per answer position (least significant first)."""
    rows = []
    for k, label in enumerate(POSITION_LABELS):
        got, want = answer.tokens[k], answer.true_tokens[k]
        rows.append(
            {
                "position": label,
                "model": digits_tasks.TOKEN_TEXT[got],
                "probability": answer.probabilities[k],
                "correct": digits_tasks.TOKEN_TEXT[want],
                "right": got == want,
            }
        )
    return pd.DataFrame(rows)


def attention_frame(pattern) -> pd.DataFrame:
    """(query, key, key_token, weight) for one head's [12, 33] pattern over the sequence the model read."""
    rows = []
    for q, label in enumerate(POSITION_LABELS):
        for key in range(pattern.shape[1]):
            rows.append({"query": label, "q": q, "key": key, "weight": float(pattern[q, key])})
    return pd.DataFrame(rows)


def key_labels(tokens: Sequence[int]) -> list[str]:
    """Axis labels of the 33 input positions: '3 index: token' (answer tokens as the model wrote them)."""
    return [f"{i}:{digits_tasks.TOKEN_TEXT[t]}" for i, t in enumerate(tokens)]


def scores_frame(before, after=None) -> pd.DataFrame:
    """Per answer position accuracy (and exact match) before and, if given, after an ablation."""
    rows = [{"position": "exact match", "before": before.exact_match} | ({"after": after.exact_match} if after else {})]
    for k, label in enumerate(POSITION_LABELS):
        row = {"position": label, "before": before.per_position[k]}
        if after is not None:
            row["after"] = after.per_position[k]
        rows.append(row)
    return pd.DataFrame(rows)


def chain_frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["chain", "pairs", "exact_match"])


def probe_frame(probe) -> pd.DataFrame:
    labels = [POSITION_LABELS[k] for k in probe.digits]
    return pd.DataFrame(
        {
            "digit": labels,
            "order": probe.digits,
            "probe accuracy": probe.accuracy,
            "majority baseline": probe.baseline,
            "carry rate": probe.carry_rate,
        }
    )


def probe_history_frame(history: dict[int, object]) -> pd.DataFrame:
    """(step, digit, order, accuracy) of the carry probe at every checkpoint."""
    rows = []
    for step, probe in sorted(history.items()):
        for k, acc in zip(probe.digits, probe.accuracy):
            rows.append({"step": step, "digit": POSITION_LABELS[k], "order": k, "accuracy": acc})
    return pd.DataFrame(rows, columns=["step", "digit", "order", "accuracy"])


def ablation_history_frame(history: dict[int, tuple]) -> pd.DataFrame:
    """(step, value, series): exact match without and with the ablation at every checkpoint."""
    rows = []
    for step, (before, after) in sorted(history.items()):
        rows.append({"step": step, "value": before.exact_match, "series": "as trained"})
        rows.append({"step": step, "value": after.exact_match, "series": "ablated"})
    return pd.DataFrame(rows, columns=["step", "value", "series"])
