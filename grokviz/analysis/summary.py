"""One checkpoint summarised as the JSON object of ``grokviz analyze --json``.

The keys are a contract other tools read (docs/cli.md): step, p, task, train/test loss and
accuracy, key_frequencies, neuron_frequency_counts, fraction_neurons_clustered, excluded_loss,
restricted_loss, basis ("additive", or "discrete-log" for mul and div, whose key frequencies
are over Z_{p-1}) and generator (the primitive root g of the logs; null when additive), and a
few more. A model with more than one block adds ``n_layers`` and ``layers`` (each block's neuron
facts); its top-level key frequencies, counts and clustered fraction are over every block's
neurons, and ``gini_unembed`` is the last block's W_L. Pure: weights in, a dict out.
"""

from __future__ import annotations

import torch

from grokviz.analysis.baseline import baseline, evaluate
from grokviz.analysis.group import group_for
from grokviz.analysis.neurons import (
    NeuronStats,
    key_frequencies,
    layer_activations,
    layers_key_frequencies,
    neuron_stats,
)
from grokviz.analysis.progress import progress_measures_from_logits
from grokviz.core.config import Config, check_analysable, dataset_for
from grokviz.core.families import SummaryRequest
from grokviz.core.params import Params, n_layers_of
from grokviz.core.tasks import FOURIER_TASKS
from grokviz.errors import GrokvizError


def summarise(
    cfg: Config, step: int, params: Params, key_freqs: list[int] | None = None, threshold: float = 0.85
) -> dict:
    """The JSON object of one checkpoint (see the module docstring)."""
    group = group_for(cfg.task, cfg.p)  # discrete-log for mul and div: frequencies over Z_{p-1}
    cache: dict = {}  # one all-pairs forward serves every block and the losses
    base = baseline(params, group, cfg.architecture, cache=cache)
    stats = neuron_stats(base.group_acts, threshold=threshold, blocks=base.blocks)  # the last block's
    per_layer = _earlier_layers_stats(params, cache, group, threshold) + [stats]
    counts = layers_key_frequencies(per_layer)  # one block: key_frequencies(stats)
    used = sorted(counts) if key_freqs is None else key_freqs
    dataset = dataset_for(cfg)
    measures = progress_measures_from_logits(params, base.logits, dataset, used, group)
    every = evaluate(base.logits, dataset)[0]["all"]
    out = {
        "step": step,
        "p": cfg.p,
        "task": cfg.task,
        "fourier_task": cfg.task in FOURIER_TASKS,
        "basis": group.basis,
        "generator": group.generator,
        "train_loss": measures["train_loss"],
        "test_loss": measures["test_loss"],
        "train_accuracy": measures["train_accuracy"],
        "test_accuracy": measures["test_accuracy"],
        # Over every pair of the task, whatever the split (an imported model's split may be unknown).
        "all_loss": every.loss,
        "all_accuracy": every.accuracy,
        "key_frequencies": sorted(counts),
        "neuron_frequency_counts": {str(k): n for k, n in counts.items()},
        "fraction_neurons_clustered": _fraction_clustered(per_layer),
        "n_neurons": sum(int(one.dead.numel()) for one in per_layer),
        "n_dead_neurons": sum(int(one.dead.sum()) for one in per_layer),
        "clustered_threshold": threshold,
        "ablation_frequencies": used,
        "excluded_loss": measures["excluded_loss"],
        "restricted_loss": measures["restricted_loss"],
        "restricted_loss_train": measures["restricted_loss_train"],
        "gini_embed": measures["gini_embed"],
        "gini_unembed": measures["gini_unembed"],
        "sum_sq_weights": measures["sum_sq_weights"],
    }
    if len(per_layer) > 1:  # a 1-layer summary keeps exactly the keys it always had
        out["n_layers"] = len(per_layer)
        out["layers"] = [_layer_facts(layer, one) for layer, one in enumerate(per_layer)]
    return out


def _earlier_layers_stats(params: Params, cache: dict, group, threshold: float) -> list[NeuronStats]:
    """:func:`neuron_stats` of every block but the last ([] for one layer), from the baseline's forward (``cache``)."""
    if n_layers_of(params) == 1:
        return []
    acts = layer_activations(params, cache=cache)[:-1]
    return [neuron_stats(group.on_group(one), threshold=threshold) for one in acts]


def _fraction_clustered(per_layer: list[NeuronStats]) -> float:
    """Clustered neurons over every block's neurons (one block: its ``fraction_clustered``)."""
    if len(per_layer) == 1:
        return per_layer[0].fraction_clustered
    return float(torch.cat([one.clustered for one in per_layer]).float().mean())


def _layer_facts(layer: int, stats: NeuronStats) -> dict:
    """One block's neuron facts, as the summary reports them for the whole model."""
    counts = key_frequencies(stats)
    return {
        "layer": layer,
        "key_frequencies": sorted(counts),
        "neuron_frequency_counts": {str(k): n for k, n in counts.items()},
        "fraction_neurons_clustered": stats.fraction_clustered,
        "n_neurons": int(stats.dead.numel()),
        "n_dead_neurons": int(stats.dead.sum()),
    }


def summarise_checkpoint(request: SummaryRequest) -> dict:
    """What ``grokviz analyze`` reports of a modular checkpoint (the family table's summary): the
    options checked in words first (too large to analyse live, bad ``--key-freqs``), then
    :func:`summarise`. The request's ``log`` is not read (the modular summary comes from the weights)."""
    cfg = request.config
    check_analysable(cfg, request.source)
    key_freqs = parse_key_frequencies(request.key_freqs, cfg.p)
    return summarise(cfg, request.step, request.params, key_freqs, request.threshold)


def parse_key_frequencies(text: str | None, p: int) -> list[int] | None:
    if text is None:
        return None
    try:
        values = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise GrokvizError(f"--key-freqs={text!r}: expected comma-separated integers, e.g. 14,35,41") from None
    if not values:
        raise GrokvizError(f"--key-freqs={text!r} names no frequency; give comma-separated integers, e.g. 14,35,41")
    bad = [k for k in values if not 1 <= k <= (p - 1) // 2]
    if bad:
        raise GrokvizError(f"--key-freqs: {bad} outside 1..{(p - 1) // 2} (the frequencies of p={p})")
    return values


def human(path: str, out: dict) -> str:
    """The short human-readable summary ``grokviz analyze`` prints without ``--json``."""
    lines = [f"{path}: step {out['step']} of {out['task']} (p={out['p']})"]
    lines.append(
        f"  train loss {out['train_loss']:.3g}, accuracy {out['train_accuracy']:.2%}   "
        f"test loss {out['test_loss']:.3g}, accuracy {out['test_accuracy']:.2%}"
    )
    counts = ", ".join(f"{k} ({n})" for k, n in out["neuron_frequency_counts"].items()) or "none"
    if out.get("basis") == "discrete-log":
        lines.append(
            f"  basis: discrete-log, generator g = {out['generator']}: frequencies over Z_{out['p'] - 1}, "
            "pairs containing 0 left out"
        )
    lines.append(f"  key frequencies (clustered neurons): {counts}")
    lines.append(
        f"  clustered neurons: {out['fraction_neurons_clustered']:.1%} of {out['n_neurons']} "
        f"(FVE >= {out['clustered_threshold']}), {out['n_dead_neurons']} dead"
        + (f", over {out['n_layers']} layers" if "layers" in out else "")
    )
    for facts in out.get("layers", []):
        layer_counts = ", ".join(f"{k} ({n})" for k, n in facts["neuron_frequency_counts"].items()) or "none"
        lines.append(
            f"    layer {facts['layer']}: {facts['fraction_neurons_clustered']:.1%} of {facts['n_neurons']} clustered, "
            f"{facts['n_dead_neurons']} dead; frequencies {layer_counts}"
        )
    lines.append(
        f"  restricted loss {out['restricted_loss']:.3g} (keep only {out['ablation_frequencies']}), "
        f"excluded loss {out['excluded_loss']:.3g} (remove them; train pairs)"
    )
    if not out["fourier_task"]:
        lines.append(
            f"  note: the Fourier measures describe addition; for task {out['task']!r} they are shown, not meaningful"
        )
    if "phases" in out:
        ph = out["phases"]
        lines.append(
            f"  timeline: {len(out['timeline'])} checkpoints; phases end at memorisation "
            f"{ph['memorisation_end']}, circuit formation {ph['circuit_formation_end']}, cleanup {ph['cleanup_end']}"
        )
    return "\n".join(lines)
