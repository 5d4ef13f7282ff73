"""A sweep's parameter cliff shaped for the Sweeps page: one point per member at its parameter count
and final accuracy, seeds spread apart so that none hides another. Pure: pandas in, pandas out."""

from __future__ import annotations

import pandas as pd

# The member settings a point's tooltip names, where the sweep's table has them.
CONFIG_COLUMNS = ("d_model", "d_mlp", "n_heads", "lr", "weight_decay", "frac_train", "seed")


def has_cliff(table: pd.DataFrame) -> bool:
    """Whether the members have more than one parameter count (a size sweep)."""
    return table["params"].dropna().nunique() > 1


def cliff_points(table: pd.DataFrame) -> pd.DataFrame:
    """``sweeps.outcome_table`` rows -> one point per readable member: ``params``, ``slot`` (its place
    among the members of that count: by their other settings, then seed),
    ``accuracy`` (the final test accuracy; an adder's validation exact match), ``outcome``,
    ``grok_step``, ``grok_label`` ('12,300' or ''), ``config`` (its settings in words) and ``member``."""
    rows = table[table["params"].notna()].copy()
    # Every member of one parameter count gets its own slot beside the others, ordered by its
    # other settings, then its seed.
    order = [c for c in CONFIG_COLUMNS if c in rows and rows[c].notna().any()]
    rows = rows.sort_values(["params", *order], kind="stable")
    slot = rows.groupby("params").cumcount()

    def words(row) -> str:
        parts = [
            f"{c} {row[c]:g}" if isinstance(row[c], float) else f"{c} {row[c]}"
            for c in CONFIG_COLUMNS
            if c in row and pd.notna(row[c])
        ]
        return ", ".join(parts)

    grok = rows["grok_step"]
    return pd.DataFrame(
        {
            "member": rows["member"].to_numpy(),
            "params": rows["params"].astype(int).to_numpy(),
            "slot": slot.to_numpy(),
            "accuracy": rows["test_accuracy"].astype(float).to_numpy(),
            "outcome": rows["outcome"].to_numpy(),
            "grok_step": pd.to_numeric(grok, errors="coerce").to_numpy(),
            "grok_label": [f"{int(s):,}" if pd.notna(s) else "" for s in pd.to_numeric(grok, errors="coerce")],
            "config": [words(row) for _, row in rows.iterrows()],
        }
    )


def grok_labels(points: pd.DataFrame) -> pd.DataFrame:
    """:func:`cliff_points` -> one label per parameter count that has grokked members: ``params``,
    ``accuracy`` (the highest of its grokked members, where the label sits) and ``label``, the first
    step at the threshold ('8,200' for one member, '8,200-9,600' for several). One per count, not one per
    member: members of one count that grok close together would write their steps over each other."""
    grokked = points[points["grok_step"].notna()]
    rows = [
        {
            "params": int(params),
            "accuracy": float(group["accuracy"].max()),
            "label": _step_range(int(group["grok_step"].min()), int(group["grok_step"].max())),
        }
        for params, group in grokked.groupby("params", sort=True)
    ]
    return pd.DataFrame(rows, columns=["params", "accuracy", "label"])


def _step_range(first: int, last: int) -> str:
    return f"{first:,}" if first == last else f"{first:,}-{last:,}"


def picked_member(event) -> str | None:
    """The member a click on the cliff chart chose (``st.altair_chart(on_select=...)``'s event), or None."""
    if not event:
        return None
    selection = event.get("selection", {}) if isinstance(event, dict) else getattr(event, "selection", {})
    for points in (selection or {}).values():
        for point in points or []:
            if isinstance(point, dict) and point.get("member"):
                return str(point["member"])
    return None
