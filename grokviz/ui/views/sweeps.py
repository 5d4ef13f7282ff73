"""A sweep's outcome table shaped for the Sweep tab: the grid of members over two swept axes, and
the order their values are shown in. Pure: pandas in, pandas out."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import pandas as pd

from grokviz.storage.sweeps import OUTCOMES


def sweep_grid(table: pd.DataFrame, x: str, y: str | None, fixed: Mapping[str, object] | None = None) -> pd.DataFrame:
    """``sweeps.outcome_table`` rows -> one grid cell per member: (x, y, outcome, label, member).

    ``fixed`` keeps only members whose other swept settings have these values (e.g. one seed);
    ``y`` None puts every member on one row. ``label`` is the grokking step ('12,340'), or
    'memorised' / 'no fit' / 'unreadable' for the other outcomes.
    """
    rows = table
    for axis, value in (fixed or {}).items():
        rows = rows[rows[axis].astype(str) == str(value)]
    labels = []
    for outcome, step in zip(rows["outcome"], rows["grok_step"]):
        if outcome == "grokked":
            labels.append(f"{int(step):,}")
        else:
            labels.append({"memorised only": "memorised", "never fit": "no fit"}.get(outcome, outcome))
    return pd.DataFrame(
        {
            "x": rows[x].astype(str).to_numpy(),
            "y": rows[y].astype(str).to_numpy() if y else "",
            "outcome": rows["outcome"].to_numpy(),
            "label": labels,
            "member": rows["member"].to_numpy(),
            "test_accuracy": rows["test_accuracy"].astype(float).to_numpy(),
        }
    )


SIZE_FIELDS = ("d_model", "d_mlp", "n_heads", "d_head")
SIZE_AXIS = "size"


def with_size_axis(table: pd.DataFrame, swept: list[str]) -> tuple[pd.DataFrame, list[str]]:
    """A sweep over model sizes gets one ``size`` axis ('777: d7/14': parameters, d_model/d_mlp, and
    the heads where they differ; short, to fit a grid cell) in place of its size fields: shapes are swept as pairs (d_mlp = 4 d_model), and a grid over
    d_model x d_mlp would be mostly empty cells."""
    sized = [axis for axis in swept if axis in SIZE_FIELDS]
    if not sized:
        return table, swept
    heads = table["n_heads"].nunique() > 1  # named only where they differ: the label fits a grid cell
    labels = [
        f"{int(params)}: d{d}/{m}" + (f" h{h}" if heads else "") if pd.notna(params) else "unreadable"
        for params, d, m, h in zip(table["params"], table["d_model"], table["d_mlp"], table["n_heads"])
    ]
    rest = [axis for axis in swept if axis not in SIZE_FIELDS]
    return table.assign(**{SIZE_AXIS: labels}), [SIZE_AXIS, *rest]


def axis_order(values: Iterable) -> list[str]:
    """Distinct axis values as strings, in numeric order where they are numbers (0.3 before 1), a
    size label by its leading parameter count ('777: d7 ...' before '1,208: ...')."""

    def key(text: str):
        try:
            return (0, float(text.split(":")[0].replace(",", "")), text)
        except ValueError:
            return (1, 0.0, text)

    return sorted({str(v) for v in values}, key=key)


SWEEP_OUTCOMES = OUTCOMES + ("unreadable",)
