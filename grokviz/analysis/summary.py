"""One checkpoint summarised as the JSON object of ``grokviz analyze --json``.

The keys are a contract other tools read (docs/cli.md): step, p, task, train/test loss and
accuracy, key_frequencies, neuron_frequency_counts, fraction_neurons_clustered, excluded_loss,
restricted_loss, basis ("additive", or "discrete-log" for mul and div, whose key frequencies
are over Z_{p-1}) and generator (the primitive root g of the logs; null when additive), and a
few more. Pure: weights in, a dict out.
"""

from __future__ import annotations

from grokviz.analysis.baseline import baseline, evaluate
from grokviz.analysis.group import group_for
from grokviz.analysis.neurons import key_frequencies, neuron_stats
from grokviz.analysis.progress import progress_measures_from_logits
from grokviz.core.config import Config, dataset_for
from grokviz.core.params import Params
from grokviz.core.tasks import FOURIER_TASKS


def summarise(
    cfg: Config, step: int, params: Params, key_freqs: list[int] | None = None, threshold: float = 0.85
) -> dict:
    """The JSON object of one checkpoint (see the module docstring)."""
    group = group_for(cfg.task, cfg.p)  # discrete-log for mul and div: frequencies over Z_{p-1}
    base = baseline(params, group, cfg.architecture)  # one all-pairs forward serves the neurons and the losses
    stats = neuron_stats(base.group_acts, threshold=threshold, blocks=base.blocks)
    counts = key_frequencies(stats)
    used = sorted(counts) if key_freqs is None else key_freqs
    dataset = dataset_for(cfg)
    measures = progress_measures_from_logits(params, base.logits, dataset, used, group)
    every = evaluate(base.logits, dataset)[0]["all"]
    return {
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
        "fraction_neurons_clustered": stats.fraction_clustered,
        "n_neurons": int(stats.dead.numel()),
        "n_dead_neurons": int(stats.dead.sum()),
        "clustered_threshold": threshold,
        "ablation_frequencies": used,
        "excluded_loss": measures["excluded_loss"],
        "restricted_loss": measures["restricted_loss"],
        "restricted_loss_train": measures["restricted_loss_train"],
        "gini_embed": measures["gini_embed"],
        "gini_unembed": measures["gini_unembed"],
        "sum_sq_weights": measures["sum_sq_weights"],
    }
