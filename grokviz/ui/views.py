"""Data shaping for the app: analysis results -> the small tables the charts and widgets show.

Owns everything the app needs that is neither analysis (``fourier``, ``neurons``, ``ablation``,
``progress``) nor drawing (``charts``): finding runs to offer, turning tensors into long
frames, downsampling curves, naming phases, labelling frequencies. Pure functions except the
few that look at the file system (finding runs, file signatures for cache keys), which say so;
no Streamlit, so all of it is tested without a browser.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from grokviz.analysis import ablation
from grokviz.analysis.attention import attention_pattern
from grokviz.analysis.group import Group, group_for
from grokviz.core.architecture import REFERENCE, Architecture
from grokviz.core.config import Config
from grokviz.core.tasks import FOURIER_TASKS, TASKS

# The browser draws every mark: a few hundred points per curve keep charts quick to draw
# while still showing every feature of a 25k-step run (log rows are every 20 steps).
MAX_CURVE_POINTS = 600


def config_table(cfg: Config) -> pd.DataFrame:
    """The config as a two-column table (setting, value), task formula included."""
    rows = [("task", f"{cfg.task}: {TASKS[cfg.task].formula}")]
    rows += [
        (name, "default" if value is None else str(value)) for name, value in cfg.to_dict().items() if name != "task"
    ]
    return pd.DataFrame(rows, columns=["setting", "value"])


def fourier_note(cfg: Config) -> str | None:
    """None for add and sub; for mul and div what the discrete-log basis is and leaves out; for the
    other tasks a sentence saying the Fourier analyses need not mean anything there."""
    group = group_for(cfg.task, cfg.p)
    if group.discrete_log:
        return (
            f"This run's task is {cfg.task} ({TASKS[cfg.task].formula}). Every Fourier analysis here is in the "
            f"discrete-log basis: tokens 1..{cfg.p - 1} are re-indexed by their log to g = {group.generator} "
            f"(the smallest primitive root of {cfg.p}), so x = {group.generator}^log x, and frequencies are over "
            f"Z_{cfg.p - 1} ({cfg.task} is {'addition' if group.sign > 0 else 'subtraction'} of logs). "
            "The token 0, and every pair that contains it, are left out of these analyses."
        )
    if cfg.task in FOURIER_TASKS:
        return None
    return (
        f"This run's task is {cfg.task} ({TASKS[cfg.task].formula}). The key-frequency analyses "
        "(Fourier spectra, neuron frequencies, frequency ablations, restricted/excluded loss) "
        "describe the circuit for addition and subtraction; for this task they are computed the "
        "same way but need not mean anything."
    )


# --- curves ----------------------------------------------------------------------------------


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


# --- phases ----------------------------------------------------------------------------------

PHASE_NAMES = ("memorisation", "circuit formation", "cleanup", "after cleanup")


def phases_found(phases) -> bool:
    """False when no boundary could be read (e.g. a log without accuracies): the phase is unknown."""
    return any(
        getattr(phases, name, None) is not None for name in ("memorisation_end", "circuit_formation_end", "cleanup_end")
    )


def _phase_names(phases) -> tuple[str, ...]:
    # Without a grokking transition the time after memorisation is not known to be circuit formation.
    if getattr(phases, "memorisation_end", None) is not None and getattr(phases, "circuit_formation_end", None) is None:
        return ("memorisation", "after memorisation")
    return PHASE_NAMES


def phase_table(phases, last_step: int) -> pd.DataFrame:
    """Bands (phase, start, end) from a ``progress.Phases``; empty when no boundary was found.

    A run that memorised but has not grokked (yet) gets 'memorisation' and 'after memorisation'.
    """
    if not phases_found(phases):
        return pd.DataFrame(columns=["phase", "start", "end"])
    ends = [phases.memorisation_end, phases.circuit_formation_end, phases.cleanup_end, None]
    rows, start = [], 0
    for name, end in zip(_phase_names(phases), ends):
        stop = last_step if end is None else min(int(end), last_step)
        if stop > start:
            rows.append({"phase": name, "start": start, "end": stop})
        if end is None:
            break
        start = max(start, int(end))
    return pd.DataFrame(rows, columns=["phase", "start", "end"])


def phase_at(phases, step: int) -> str:
    """The phase a step falls in ('memorisation', ..., 'after cleanup'), or 'unknown'."""
    if not phases_found(phases):
        return "unknown"
    names = _phase_names(phases)
    ends = [phases.memorisation_end, phases.circuit_formation_end, phases.cleanup_end]
    for name, end in zip(names, ends):
        if end is None or step < int(end):
            return name
    return names[-1]


# --- Fourier ---------------------------------------------------------------------------------


def frequency_label(k: int, counts: Mapping[int, int]) -> str:
    """'14 · 87 neurons' for a key frequency, '14' otherwise."""
    n = counts.get(int(k), 0)
    return f"{k} · {n} neuron{'s' if n != 1 else ''}" if n else str(k)


def spectrum_frame(norms: torch.Tensor | np.ndarray, key_frequencies: Iterable[int]) -> pd.DataFrame:
    """[K] per-frequency norms -> frame (frequency, norm, key)."""
    norms = np.asarray(torch.as_tensor(norms, dtype=torch.float64))
    keys = {int(k) for k in key_frequencies}
    freq = np.arange(1, len(norms) + 1)
    return pd.DataFrame({"frequency": freq, "norm": norms, "key": [int(k) in keys for k in freq]})


def spectrum_history(spectra: Mapping[int, np.ndarray]) -> pd.DataFrame:
    """step -> [K] norms  ->  long frame (step, start, end, frequency, share of the step's norm²)."""
    if not spectra:
        return pd.DataFrame(columns=["step", "start", "end", "frequency", "share"])
    spans = step_spans(list(spectra)).set_index("step")
    parts = []
    for step, norms in spectra.items():
        energy = np.asarray(norms, dtype=float) ** 2
        total = energy.sum()
        share = energy / total if total > 0 else energy
        parts.append(
            pd.DataFrame(
                {
                    "step": step,
                    "start": spans.loc[step, "start"],
                    "end": spans.loc[step, "end"],
                    "frequency": np.arange(1, len(share) + 1),
                    "share": share,
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def frequency_blocks(coefficients: torch.Tensor, centre: bool = True) -> np.ndarray:
    """2-D transform F [p, p] -> [K+1, K+1] norm of each (frequency of a, frequency of b) block.

    Index 0 is the constant; k >= 1 gathers the cos k and sin k rows (or columns), so a neuron
    of frequency k lights up (k, 0), (0, k) and (k, k). ``centre`` drops F[0, 0] (the mean over
    all inputs), which would otherwise outshine every frequency.
    """
    F = torch.as_tensor(coefficients, dtype=torch.float64).clone()
    if centre:
        F[0, 0] = 0.0
    p = F.shape[0]
    K = p // 2  # for an even p (discrete-log basis) the last frequency has a cosine row only
    group = torch.zeros(p, dtype=torch.int64)
    group[1:] = torch.arange(1, K + 1).repeat_interleave(2)[: p - 1]
    one_hot = torch.nn.functional.one_hot(group, K + 1).double()  # [p, K+1]
    energy = one_hot.T @ F.pow(2) @ one_hot  # [K+1, K+1]
    return energy.sqrt().numpy()


# --- ablation --------------------------------------------------------------------------------


def grid_status(correct: torch.Tensor, is_train: torch.Tensor, valid: torch.Tensor | None = None) -> pd.DataFrame:
    """[p, p] correct / train masks -> frame (a, b, status) with ``charts.GRID_STATUS`` names."""
    correct = torch.as_tensor(correct).bool().numpy()
    is_train = torch.as_tensor(is_train).bool().numpy()
    p = correct.shape[0]
    a, b = np.meshgrid(np.arange(p), np.arange(p), indexing="ij")
    status = np.where(
        correct,
        np.where(is_train, "correct (train pair)", "correct (test pair)"),
        np.where(is_train, "wrong (train pair)", "wrong (test pair)"),
    ).astype(object)
    if valid is not None:
        status[~torch.as_tensor(valid).bool().numpy()] = "not in task"
    return pd.DataFrame({"a": a.ravel(), "b": b.ravel(), "status": status.ravel()})


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


# --- neurons ---------------------------------------------------------------------------------


def neuron_groups(
    activations: torch.Tensor,
    frequency: torch.Tensor,
    clustered: torch.Tensor,
    dead: torch.Tensor,
    key_frequencies: Iterable[int],
) -> pd.DataFrame:
    """Activations [d_mlp] at one input -> frame (neuron, activation, group, order, key, jitter).

    Clustered neurons are grouped by frequency ('k=14'); the others are 'unclustered' and 'dead'.
    """
    acts = torch.as_tensor(activations).double().numpy()
    freq = torch.as_tensor(frequency).numpy()
    clustered = torch.as_tensor(clustered).bool().numpy()
    dead = torch.as_tensor(dead).bool().numpy()
    keys = {int(k) for k in key_frequencies}
    big = 10**6
    group = np.where(dead, "dead", np.where(clustered, np.char.add("k=", freq.astype(str)), "unclustered"))
    order = np.where(dead, big + 1, np.where(clustered, freq, big))
    key = clustered & np.isin(freq, list(keys))
    # A fixed horizontal offset per neuron (golden-ratio sequence): points spread within their
    # group and stay put while the step moves, so a neuron can be followed through training.
    jitter = (np.arange(len(acts)) * 0.6180339887) % 1.0 - 0.5
    return pd.DataFrame(
        {
            "neuron": np.arange(len(acts)),
            "activation": acts,
            "group": group,
            "order": order,
            "key": key,
            "jitter": jitter,
        }
    )


def probe_table(terms: pd.DataFrame, discrete_log: bool = False) -> pd.DataFrame:
    """A probe's term table for display: numbers kept, correlation of the constant shown as 'n/a';
    for the discrete-log basis the terms read cos(w·log a) and so on."""
    table = terms.copy()
    if discrete_log:
        table["term"] = [t.replace("wa", "w·log a").replace("wb", "w·log b") for t in table["term"]]
    table["correlation"] = [("n/a" if value != value else f"{value:+.3f}") for value in table["correlation"]]
    return table


def ints_in_range(values: Iterable, low: int, high: int) -> list[int]:
    """Sorted distinct ints within [low, high] from possibly messy input (e.g. URL strings)."""
    out = set()
    for value in values:
        try:
            number = int(value)
        except (TypeError, ValueError):
            continue
        if low <= number <= high:
            out.add(number)
    return sorted(out)


# --- headline, prediction, attention -------------------------------------------------------------

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


def previous_step(steps: Sequence[int], step: int) -> int | None:
    earlier = [s for s in steps if s < step]
    return earlier[-1] if earlier else None


def next_step(steps: Sequence[int], step: int) -> int | None:
    later = [s for s in steps if s > step]
    return later[0] if later else None


def neuron_logit_map_name(arch: Architecture) -> str:
    """How W_L is formed for this architecture (docs/analysis.md): through a LayerNorm after the MLP."""
    W_U = "W_E[:p]ᵀ" if arch.unembed == "tied" else "W_U"
    if arch.layernorm == "none":
        return f"W_L = W_out {W_U}"
    return f"W_L = W_out C diag(w) {W_U} (through the {'final' if arch.layernorm == 'pre' else 'second'} LayerNorm)"


def attention_at(params, a: int, b: int, arch: Architecture = REFERENCE) -> np.ndarray:
    """[n_heads, 3]: where the '=' position attends (to a, to b, to '=') for the one input (a, b)."""
    pattern = attention_pattern(params, torch.tensor([int(a)]), torch.tensor([int(b)]), arch)
    return pattern[0].double().numpy()


def waves_frame(frequencies: Sequence[int], components: torch.Tensor | None) -> pd.DataFrame:
    """Prediction.components [n, p (class c)] -> long (c, series, value), plus their sum."""
    if components is None or not len(frequencies):
        return pd.DataFrame(columns=["c", "series", "value"])
    values = torch.as_tensor(components).double().numpy()
    p = values.shape[1]
    parts = [
        pd.DataFrame({"c": np.arange(p), "series": f"k={k}", "value": values[i]}) for i, k in enumerate(frequencies)
    ]
    parts.append(pd.DataFrame({"c": np.arange(p), "series": "sum", "value": values.sum(axis=0)}))
    return pd.concat(parts, ignore_index=True)


def default_neuron(table: pd.DataFrame) -> int:
    """A neuron worth looking at first: the best-fitting one in the largest frequency cluster."""
    clustered = table[table["clustered"]]
    if not len(clustered):
        live = table[~table["dead"]]
        return int(live.sort_values("best_fve", ascending=False)["neuron"].iloc[0]) if len(live) else 0
    biggest = clustered["frequency"].value_counts().idxmax()
    group = clustered[clustered["frequency"] == biggest]
    return int(group.sort_values("best_fve", ascending=False)["neuron"].iloc[0])


def valid_grid(dataset, group: Group | None = None) -> torch.Tensor:
    """[p, p] bool: True where (a, b) is a pair of the task (all but b = 0 for div), and, with a
    discrete-log ``group``, of the analysis (neither operand 0)."""
    grid = torch.zeros(dataset.p, dataset.p, dtype=torch.bool)
    grid[dataset.a, dataset.b] = True
    if group is not None and group.discrete_log:
        grid[0, :] = grid[:, 0] = False
    return grid


def correct_answer(cfg: Config, a: int, b: int) -> int | None:
    """c = op(a, b) mod p for the run's task, or None where the task is undefined (b = 0 in div)."""
    task = TASKS[cfg.task]
    if task.needs_nonzero_b and b % cfg.p == 0:
        return None
    return int(task.op(torch.tensor([int(a)]), torch.tensor([int(b)]), cfg.p)[0])


def pair_split(dataset, a: int, b: int) -> str:
    """'train pair', 'test pair' or 'not in the task' for one input."""
    if not bool(valid_grid(dataset)[a, b]):
        return "not in the task"
    return "train pair" if bool(dataset.is_train_grid()[a, b]) else "test pair"


# --- ablation over checkpoints ---------------------------------------------------------------


def logits_baseline(
    logits: torch.Tensor, group: Group | None = None, arch: Architecture = REFERENCE
) -> ablation.Baseline:
    """An ``ablation.Baseline`` holding only the all-pairs logits [p*p, p].

    Enough for the logits and embedding sites (and its ``evaluate`` memoises the un-ablated
    metrics); the neurons site needs ``ablation.baseline(params)`` with the activations.
    """
    return ablation.Baseline(p=logits.shape[1], logits=logits, acts=None, group=group, arch=arch)


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
