"""Progress measures of one checkpoint, and the phase boundaries read off their curves.

Owns (definitions in docs/analysis.md, "Progress measures over training"):

* :func:`gini` — Hurley and Rickard's Gini coefficient of a vector of non-negative values;
* :func:`progress_measures` — restricted / excluded loss for a fixed set of key frequencies,
  Gini of W_E's and W_L's spectra (W_L of the last block, the one writing to the logits; with
  more than one block the logits come from the model's own N-block forward), sums of squared
  weights, train/test loss and accuracy;
* :func:`phase_boundaries` — memorisation / circuit formation / cleanup, by the rule in
  ``PHASE_RULE`` (also returned in ``Phases.rule`` for the app to show).

Pure functions; the per-run loop and its cache live in ``grokviz.storage.timeline``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from grokviz.analysis.baseline import evaluate
from grokviz.analysis.fourier import embed_spectrum, unembed_spectrum
from grokviz.analysis.group import Group
from grokviz.analysis.projections import project_logits, residue_sign
from grokviz.core.architecture import REFERENCE, Architecture
from grokviz.core.fast_path import forward_all_pairs
from grokviz.core.params import Params
from grokviz.core.tasks import Dataset


def gini(x) -> float:
    """Hurley-Rickard Gini of non-negative values: 0 when all are equal, 1 - 1/n for one-hot.

    With x sorted ascending, G = 1 - 2 * sum_i (x_i / sum(x)) * (n - i + 1/2) / n (i from 1).
    An all-zero vector has no concentration to measure: 0.
    """
    values = torch.as_tensor(x, dtype=torch.float64).flatten().sort().values
    n, total = len(values), float(values.sum())
    if n == 0 or total <= 0:
        return 0.0
    i = torch.arange(1, n + 1, dtype=torch.float64)
    return float(1 - 2 * ((values / total) * (n - i + 0.5) / n).sum())


def progress_measures(
    params: Params, dataset: Dataset, key_freqs, group: Group | None = None, arch: Architecture = REFERENCE
) -> dict[str, float]:
    """Every progress measure of one checkpoint for a fixed set of key frequencies.

    Keys: restricted_loss (keep only key_freqs at the logits, all pairs), restricted_loss_train,
    excluded_loss (remove key_freqs at the logits, train pairs), gini_embed, gini_unembed,
    sum_sq_weights, sum_sq.<param name> for each parameter, train_loss, test_loss,
    train_accuracy, test_accuracy.

    With a discrete-log ``group`` (``mul``, ``div``) the key frequencies are over Z_{p-1}, the
    restricted and excluded losses are taken on the pairs without 0, and the Gini coefficients on
    the discrete-log spectra; train/test loss and accuracy stay those of the whole dataset.
    """
    return progress_measures_from_logits(params, forward_all_pairs(params, arch=arch), dataset, key_freqs, group)


def progress_measures_from_logits(
    params: Params, logits: torch.Tensor, dataset: Dataset, key_freqs, group: Group | None = None
) -> dict[str, float]:
    """:func:`progress_measures` with the all-pairs logits [p*p, p] already computed."""
    sign = residue_sign(dataset) if group is None else group.sign
    analysed = dataset if group is None else group.restrict(dataset)
    metrics, _ = evaluate(logits, dataset)
    restricted, _ = evaluate(project_logits(logits, key_freqs, "keep", sign, group), analysed)
    excluded, _ = evaluate(project_logits(logits, key_freqs, "remove", sign, group), analysed)
    sum_sq = {f"sum_sq.{name}": float(t.double().pow(2).sum()) for name, t in params.items()}
    out = {
        "restricted_loss": restricted["all"].loss,
        "restricted_loss_train": restricted["train"].loss,
        "excluded_loss": excluded["train"].loss,
        "gini_embed": gini(embed_spectrum(params, group)),
        "gini_unembed": gini(unembed_spectrum(params, group)),
        "sum_sq_weights": sum(sum_sq.values()),
        **sum_sq,
        "train_loss": metrics["train"].loss,
        "test_loss": metrics["test"].loss,
        "train_accuracy": metrics["train"].accuracy,
        "test_accuracy": metrics["test"].accuracy,
    }
    return out


# --- phases -----------------------------------------------------------------------------------

FIT_ACCURACY = 0.99  # the training set counts as memorised from this train accuracy on
GROKKED_ACCURACY = 0.9  # without this test accuracy somewhere after memorisation: no later phases
START_FRACTION = 0.1  # of the test loss's fall (in log10) that marks the start of cleanup
END_FRACTION = 0.9  # of the fall that marks its end

PHASE_RULE = (
    "Read off the run's own curves: train/test from the training log (from the timeline when the run has no log), "
    "weights from the timeline. "
    f"Memorisation ends at the highest test loss from the first step with train accuracy >= {FIT_ACCURACY:.0%} on "
    "(train loss has fallen, test loss has stopped rising). "
    "Let the fall be log10(test loss) from that peak down to its lowest value after it. "
    f"Circuit formation ends when the test loss has made {START_FRACTION:.0%} of that fall (the collapse has begun). "
    f"Cleanup ends when the test loss has made {END_FRACTION:.0%} of it and, with a timeline, the sum of squared "
    f"weights has made {END_FRACTION:.0%} of its own fall from the end of circuit formation to its lowest later value "
    "(whichever comes later). "
    f"Runs that never reach test accuracy >= {GROKKED_ACCURACY:.0%} after memorisation get no circuit-formation or "
    "cleanup boundary; a run that never fits its training set gets none."
)


@dataclass
class Phases:
    """Steps at which each phase ends (None: not reached in this run) and the rule used."""

    memorisation_end: int | None
    circuit_formation_end: int | None
    cleanup_end: int | None
    rule: str = PHASE_RULE


def phase_boundaries(log: pd.DataFrame | None, timeline: pd.DataFrame | None = None) -> Phases:
    """Phase boundaries from the run's own curves by ``PHASE_RULE`` (never hard-coded steps).

    ``log``: the training log (columns step, train_accuracy, test_loss, test_accuracy);
    ``timeline``: the per-checkpoint progress measures, used when the log has no rows (e.g. an
    imported run) since it carries the same four columns at checkpoint granularity.
    """
    columns = ["step", "train_accuracy", "test_loss", "test_accuracy"]
    source = None
    for frame in (log, timeline):
        if frame is not None and len(frame) > 0 and all(c in frame for c in columns):
            source = frame
            break
    if source is None:
        return Phases(None, None, None)
    curve = source[columns].dropna().sort_values("step")
    steps = curve["step"].to_numpy()
    train_accuracy = curve["train_accuracy"].to_numpy()
    test_accuracy = curve["test_accuracy"].to_numpy()
    log_test = np.log10(np.maximum(curve["test_loss"].to_numpy(dtype=float), 1e-300))

    fitted = np.flatnonzero(train_accuracy >= FIT_ACCURACY)
    if len(fitted) == 0:
        return Phases(None, None, None)
    peak = fitted[0] + int(np.argmax(log_test[fitted[0] :]))
    memorisation_end = int(steps[peak])
    after = slice(peak, None)
    if not (test_accuracy[after] >= GROKKED_ACCURACY).any():
        return Phases(memorisation_end, None, None)
    high, low = log_test[peak], float(log_test[after].min())
    fall = high - low
    if not math.isfinite(fall) or fall <= 0:
        return Phases(memorisation_end, None, None)
    tail = log_test[after]
    start = int(steps[peak + int(np.argmax(tail <= high - START_FRACTION * fall))])
    end = int(steps[peak + int(np.argmax(tail <= high - END_FRACTION * fall))])
    weights_settled = _weight_norm_settled(timeline, start)
    if weights_settled is not None:
        end = max(end, weights_settled)
    return Phases(memorisation_end, start, end)


def _weight_norm_settled(timeline: pd.DataFrame | None, start: int) -> int | None:
    """First checkpoint from ``start`` on where sum_sq_weights made END_FRACTION of its fall (None: no fall)."""
    if timeline is None or len(timeline) == 0 or not {"step", "sum_sq_weights"} <= set(timeline.columns):
        return None
    curve = timeline[["step", "sum_sq_weights"]].dropna().sort_values("step")
    earlier = curve["step"][curve["step"] <= start]
    begin = earlier.max() if len(earlier) else curve["step"].min()  # the checkpoint at (or before) start
    curve = curve[curve["step"] >= begin]
    weights = curve["sum_sq_weights"].to_numpy(dtype=float)
    if len(weights) < 2:
        return None
    first, lowest = weights[0], weights.min()
    if not first > lowest:
        return None
    settled = int(np.argmax(weights <= lowest + (1 - END_FRACTION) * (first - lowest)))
    return int(curve["step"].to_numpy()[settled])
