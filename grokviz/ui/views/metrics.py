"""An ablation's train/test metrics as tables: before and after at one step (as numbers and as text
to read), and before and after at every checkpoint of the run; and the logits-only baseline the
app caches per checkpoint for the logits and embedding sites."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd
import torch

from grokviz.analysis.baseline import Baseline
from grokviz.analysis.group import Group
from grokviz.core.architecture import REFERENCE, Architecture


def metrics_table(
    before: Mapping, after: Mapping | None = None, splits: Sequence[str] = ("train", "test", "all")
) -> pd.DataFrame:
    """SplitMetrics per split -> rows (split) x columns (accuracy/loss, before/after)."""
    rows = []
    for split in splits:
        if split not in before:
            continue
        row = {
            "split": split,
            "accuracy before": float(before[split].accuracy),
            "loss before": float(before[split].loss),
        }
        if after is not None:
            row["accuracy after"] = float(after[split].accuracy)
            row["loss after"] = float(after[split].loss)
        rows.append(row)
    return pd.DataFrame(rows).set_index("split")


def metrics_display(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`metrics_table` as text for reading: accuracies in %, losses in 3 significant digits."""
    return pd.DataFrame(
        {c: [(f"{v:.1%}" if "accuracy" in c else f"{v:.3g}") for v in table[c]] for c in table.columns},
        index=table.index,
    )


def logits_baseline(logits: torch.Tensor, group: Group | None = None, arch: Architecture = REFERENCE) -> Baseline:
    """A ``Baseline`` holding only the all-pairs logits [p*p, p].

    Enough for the logits and embedding sites (and its ``evaluate`` memoises the un-ablated
    metrics); the neurons site needs ``baseline.baseline(params)`` with the activations.
    """
    return Baseline(p=logits.shape[1], logits=logits, acts=None, group=group, arch=arch)


def ablation_over_run(steps: Sequence[int], compute, progress=None) -> pd.DataFrame:
    """Long frame (step, split, when, accuracy, loss) from ``compute(step) -> AblationResult``.

    ``progress(done, total)`` is called after each step.
    """
    rows = []
    for done, step in enumerate(steps, start=1):
        result = compute(step)
        for when, metrics in (("before", result.before), ("after", result.after)):
            for split in ("train", "test"):
                rows.append(
                    {
                        "step": int(step),
                        "split": split,
                        "when": when,
                        "accuracy": float(metrics[split].accuracy),
                        "loss": float(metrics[split].loss),
                    }
                )
        if progress is not None:
            progress(done, len(steps))
    return pd.DataFrame(rows, columns=["step", "split", "when", "accuracy", "loss"])
