"""Data shaping for the Groups page (pure: groups, analysis results, weights and logs in, pandas
frames and words out; no Streamlit, no files), so every table the page draws is tested without a
browser: the irreps' names and per-irrep frames, and the Training, Ablation and Neurons tabs'
frames and words. The Circles tab's projections are ``grokviz.ui.views.groups_circles``.

Irreps are named as the page shows them, "4,1 (4-dim)", and ordered as ``grokviz.analysis.irreps``
lists them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from grokviz.analysis.irreps import irreps
from grokviz.core.groups import FiniteGroup
from grokviz.ui.views.curves import long_curves, step_spans

MAX_IRREP_LINES = 10  # more irreps than this (D_n, Z_n of large n): the key ones and the rest summed
OTHERS = "all other irreps"


# --- irreps and their names -------------------------------------------------------------------


def irrep_name(label: str, dim: int) -> str:
    """ "4,1 (4-dim)" """
    return f"{label} ({dim}-dim)"


def irrep_table(group: FiniteGroup) -> pd.DataFrame:
    """(irrep, dim, kind, order, name) of every irrep of ``group``, in irreps() order."""
    rows = [
        {
            "irrep": irrep.label,
            "dim": irrep.dim,
            "kind": irrep.kind,
            "order": i,
            "name": irrep_name(irrep.label, irrep.dim),
        }
        for i, irrep in enumerate(irreps(group))
    ]
    return pd.DataFrame(rows, columns=["irrep", "dim", "kind", "order", "name"])


def names(group: FiniteGroup) -> dict[str, str]:
    """{irrep label: "label (d-dim)"}."""
    return {irrep.label: irrep_name(irrep.label, irrep.dim) for irrep in irreps(group)}


def trivial_label(group: FiniteGroup) -> str:
    return next(irrep.label for irrep in irreps(group) if irrep.dim == 1 and np.allclose(irrep.character, 1))


def per_irrep_frame(group: FiniteGroup, values: Mapping[str, float], key: Sequence[str] = ()) -> pd.DataFrame:
    """(irrep, name, order, dim, value, key) of one number per irrep (a spectrum, character FVEs)."""
    table = irrep_table(group)
    table["value"] = [float(values.get(label, 0.0)) for label in table["irrep"]]
    table["key"] = table["irrep"].isin(list(key))
    return table[["irrep", "name", "order", "dim", "value", "key"]]


def spectrum_history(group: FiniteGroup, history: Mapping[int, Mapping[str, float]]) -> pd.DataFrame:
    """(step, start, end, irrep, name, order, share): a spectrum per irrep at every checkpoint, each
    checkpoint standing for the span to the midpoints of its neighbours (a heatmap over time)."""
    columns = ["step", "start", "end", "irrep", "name", "order", "share"]
    if not history:
        return pd.DataFrame(columns=columns)
    spans = step_spans(list(history)).set_index("step")
    table = irrep_table(group)
    rows = []
    for step in sorted(history):
        for irrep, name, order in zip(table["irrep"], table["name"], table["order"]):
            rows.append(
                {
                    "step": int(step),
                    "start": float(spans.loc[step, "start"]),
                    "end": float(spans.loc[step, "end"]),
                    "irrep": irrep,
                    "name": name,
                    "order": int(order),
                    "share": float(history[step].get(irrep, 0.0)),
                }
            )
    return pd.DataFrame(rows, columns=columns)


def key_irreps_text(
    group: FiniteGroup,
    key: Sequence[str],
    counts: Mapping[str, int],
    character_fves: Mapping[str, float],
    embedding: Mapping[str, float],
    threshold: float = 0.85,
) -> str:
    """The key irreps in words: each with its dimension, clustered neurons and character FVE, and how
    much of the logits and of W_E they hold together."""
    label_names = names(group)
    if not key:
        return (
            f"No key irreps yet: no irrep holds enough neurons with FVE ≥ {threshold:.2f}, and none explains "
            "5% of the logits' variance as a character. The model has not formed an irrep circuit (yet)."
        )
    parts = []
    for label in key:
        neurons = counts.get(label, 0)
        parts.append(
            f"**{label_names[label]}**: {neurons} neuron{'s' if neurons != 1 else ''}, "
            f"character FVE {character_fves.get(label, 0.0):.1%}"
        )
    fve = sum(character_fves.get(label, 0.0) for label in key)
    held = sum(embedding.get(label, 0.0) for label in key)
    return (
        f"Key irreps: {'; '.join(parts)}. Together their characters χ_ρ(a·b·c⁻¹) explain {fve:.1%} of the "
        f"logits' variance, and their functions hold {held:.1%} of |W_E|²."
    )


# --- the Training tab ---------------------------------------------------------------------------


def log_curves(log: pd.DataFrame, what: str) -> pd.DataFrame:
    """(step, series, value) of the log's train and test ``what`` ("loss" or "accuracy")."""
    return long_curves(log, {f"train_{what}": "train", f"test_{what}": "test"})


def fve_curves(
    group: FiniteGroup, history: Mapping[int, dict], key: Sequence[str], max_lines: int = MAX_IRREP_LINES
) -> pd.DataFrame:
    """(step, series, value): each non-trivial irrep's character FVE at every checkpoint; with more
    than ``max_lines`` irreps, the key ones and the others summed as one line."""
    label_names = names(group)
    trivial = trivial_label(group)
    labels = [irrep.label for irrep in irreps(group) if irrep.label != trivial]
    shown = labels if len(labels) <= max_lines else [label for label in labels if label in set(key)]
    rows = []
    for step in sorted(history):
        fves = history[step]["character_fve"]
        for label in shown:
            rows.append({"step": int(step), "series": label_names[label], "value": float(fves.get(label, 0.0))})
        if len(shown) < len(labels):
            rest = sum(float(fves.get(label, 0.0)) for label in labels if label not in shown)
            rows.append({"step": int(step), "series": OTHERS, "value": rest})
    return pd.DataFrame(rows, columns=["step", "series", "value"])


def loss_curves(history: Mapping[int, dict], log: pd.DataFrame | None = None) -> pd.DataFrame:
    """(step, series, value): restricted and excluded loss at every checkpoint, with the log's train
    and test loss beside them."""
    rows = []
    for step in sorted(history):
        point = history[step]
        rows.append({"step": int(step), "series": "restricted", "value": float(point["restricted_loss"])})
        rows.append({"step": int(step), "series": "excluded", "value": float(point["excluded_loss"])})
    frame = pd.DataFrame(rows, columns=["step", "series", "value"])
    if log is not None and len(log):
        frame = pd.concat([frame, log_curves(log, "loss")], ignore_index=True)
    return frame


# --- the Ablation tab ---------------------------------------------------------------------------

METRICS = (
    ("train_accuracy", "Train accuracy", "{:.1%}"),
    ("test_accuracy", "Test accuracy", "{:.1%}"),
    ("train_loss", "Train loss", "{:.3g}"),
    ("test_loss", "Test loss", "{:.3g}"),
)


def metric_cards(before: Mapping[str, float], after: Mapping[str, float]) -> list[dict]:
    """One card per metric: label, the value after, the change (accuracy in points, loss as a difference; "unchanged"
    when the shown value is the same) and st.metric's ``delta_color`` for it."""
    cards = []
    for field, label, fmt in METRICS:
        now, was = float(after[field]), float(before[field])
        accuracy = field.endswith("accuracy")
        if accuracy:
            delta = f"{(now - was) * 100:+.1f} points (was {was:.1%})"
            unchanged = f"{now:.1%}" == f"{was:.1%}"
        else:
            delta = f"{now - was:+.3g} (was {was:.3g})"
            unchanged = f"{now:.3g}" == f"{was:.3g}"
        # Green when the model does better (accuracy up, loss down); grey when the shown value is the same.
        color = "off" if unchanged else "normal" if accuracy else "inverse"
        if unchanged:
            delta = f"unchanged (was {fmt.format(was)})"
        cards.append(
            {"label": f"{label} after", "value": fmt.format(now), "delta": delta, "field": field, "color": color}
        )
    return cards


def ablation_history_frame(
    history: Mapping[int, tuple[Mapping, Mapping]], field: str = "test_accuracy"
) -> pd.DataFrame:
    """(step, series, value): ``field`` as trained and after the ablation at every checkpoint."""
    rows = []
    for step, (before, after) in sorted(history.items()):
        rows.append({"step": int(step), "series": "as trained", "value": float(before[field])})
        rows.append({"step": int(step), "series": "after the ablation", "value": float(after[field])})
    return pd.DataFrame(rows, columns=["step", "series", "value"])


# --- the Neurons tab ----------------------------------------------------------------------------


def counts_frame(group: FiniteGroup, counts: Mapping[str, int], key: Sequence[str] = ()) -> pd.DataFrame:
    """(irrep, name, order, dim, neurons, key): clustered neurons per non-trivial irrep (zeros included)."""
    frame = per_irrep_frame(group, {label: float(n) for label, n in counts.items()}, key)
    frame = frame[frame["irrep"] != trivial_label(group)].rename(columns={"value": "neurons"})
    frame["neurons"] = frame["neurons"].astype(int)
    return frame.reset_index(drop=True)


def fve_frame(neurons, group: FiniteGroup) -> pd.DataFrame:
    """(neuron, irrep, name, fve) of every living neuron (dead ones have no irrep)."""
    label_names = names(group)
    alive = np.flatnonzero(~neurons.dead)
    labels = [neurons.labels[neurons.irrep[i]] for i in alive]
    return pd.DataFrame(
        {
            "neuron": alive.astype(int),
            "irrep": labels,
            "name": [label_names[label] for label in labels],
            "fve": neurons.fve[alive].astype(float),
        },
        columns=["neuron", "irrep", "name", "fve"],
    )


def top_clustered(neurons, threshold: float, top: int, irrep: str | None = None) -> dict[int, str]:
    """{neuron: irrep label} of the ``top`` clustered neurons (FVE ≥ threshold), highest FVE first;
    only those of ``irrep`` when it is given."""
    clustered = neurons.clustered(threshold)
    if irrep is not None:
        clustered &= neurons.irrep == neurons.labels.index(irrep)
    clustered = np.flatnonzero(clustered)
    ranked = clustered[np.argsort(-neurons.fve[clustered], kind="stable")][: max(int(top), 0)]
    return {int(i): neurons.labels[neurons.irrep[i]] for i in ranked}


def probe_table(fit: pd.DataFrame, neurons, group: FiniteGroup) -> pd.DataFrame:
    """The probe's rows as the page shows them: neuron, irrep (with dimension), FVE, actual, fit, residual."""
    label_names = names(group)
    return pd.DataFrame(
        {
            "neuron": fit["neuron"].astype(int),
            "irrep": [label_names[label] for label in fit["irrep"]],
            "FVE": [float(neurons.fve[i]) for i in fit["neuron"]],
            "activation": fit["actual"].astype(float),
            "fit by its irrep": fit["fit"].astype(float),
            "residual": fit["residual"].astype(float),
        }
    )


def pair_text(group: FiniteGroup, a: int, b: int) -> str:
    """ "a = 17: (0 1 2) ∘ b = 3: (3 4) = 25: (0 1 2)(3 4)" """
    c = group.compose(a, b)
    return f"{a}: {group.label(a)}  ∘  {b}: {group.label(b)}  =  {c}: {group.label(c)}"


def pair_split(train_idx, group: FiniteGroup, a: int, b: int) -> str:
    """ "train" or "test": whether the pair (a, b) is one the model was trained on."""
    index = a * group.order + b
    return "train" if int(index) in set(np.asarray(train_idx).tolist()) else "test"


def scatter_frame(
    group: FiniteGroup, actual, fit, a: int, b: int, max_points: int = 3000, seed: int = 0
) -> pd.DataFrame:
    """(a, b, pair, actual, fit, marked) of one neuron over the pairs: all of them up to ``max_points``,
    else an even random sample of that many (the browser draws every point), with (a, b) always in."""
    n = group.order
    actual, fit = np.asarray(actual, dtype=float).reshape(-1), np.asarray(fit, dtype=float).reshape(-1)
    index = np.arange(n * n)
    if len(index) > max_points:
        index = np.sort(np.random.default_rng(seed).choice(index, size=max_points, replace=False))
    chosen = a * n + b
    index = np.union1d(index, [chosen])
    element_names = group.labels()
    return pd.DataFrame(
        {
            "a": index // n,
            "b": index % n,
            "pair": [f"{element_names[i // n]} ∘ {element_names[i % n]}" for i in index],
            "actual": actual[index],
            "fit": fit[index],
            "marked": index == chosen,
        }
    )
