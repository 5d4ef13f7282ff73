"""The ``grokviz analyze --json`` object of a groups checkpoint (composition in a finite group):
the family table's summary for the ``groups`` family.

The modular keys that apply keep their meaning (step, p = |G|, task, train/test loss and accuracy,
fraction_neurons_clustered, restricted_loss, excluded_loss, n_neurons, n_dead_neurons,
gini_embed); the frequency keys are replaced by the group's: ``group``, ``key_irreps`` (labels),
``irrep_dims`` (label -> dimension), ``character_fve`` (label -> fraction of the logits' variance
along χ_ρ(a·b·c⁻¹)), ``neuron_irrep_counts``, the spectra of W_E and W_U per irrep. Definitions:
grokviz.analysis.groups and docs/groups.md. Pure: weights in, a dict out.
"""

from __future__ import annotations

from grokviz.analysis.groups import summarise_group_checkpoint
from grokviz.core.families import SummaryRequest
from grokviz.core.groups_config import GroupsConfig
from grokviz.errors import GrokvizError

# Every pair's logits are [n², n]: S5's 14,400 x 120 are 14 MB, S6's 518,400 x 720 would be 3 GB.
ORDER_MAX = 250


def summarise(cfg: GroupsConfig, step: int, params, threshold: float = 0.85) -> dict:
    data = cfg.dataset()
    out = summarise_group_checkpoint(
        cfg.finite_group, params, cfg.architecture, data.train_idx.numpy(), data.test_idx.numpy(), threshold
    )
    return {"step": step, "p": cfg.p, "task": cfg.task, **out}


def summarise_checkpoint(request: SummaryRequest) -> dict:
    """What ``grokviz analyze`` reports of a groups checkpoint (the family table's summary). The
    request's ``log`` and ``key_freqs`` are not read (``analyze`` refuses ``--key-freqs`` here)."""
    cfg = request.config
    if cfg.p > ORDER_MAX:
        raise GrokvizError(
            f"{request.source}: {cfg.group} has {cfg.p} elements; grokviz analyses groups of at most "
            f"{ORDER_MAX} elements live (every pair's logits alone would need "
            f"{cfg.p**3 * 8 / 2**30:.1f} GB); its training log can still be read"
        )
    return summarise(cfg, request.step, request.params, request.threshold)


def human(path: str, out: dict) -> str:
    """The short human-readable summary ``grokviz analyze`` prints without ``--json``."""
    dims = out["irrep_dims"]
    named = lambda labels: ", ".join(f"{label} ({dims[label]}-dim)" for label in labels) or "none"  # noqa: E731
    counts = ", ".join(f"{label} ({n})" for label, n in out["neuron_irrep_counts"].items() if n) or "none"
    top = sorted(out["character_fve"].items(), key=lambda kv: -kv[1])[:4]
    return "\n".join(
        [
            f"{path}: step {out['step']} of composition in {out['group']} ({out['order']} elements)",
            f"  train loss {out['train_loss']:.3g}, accuracy {out['train_accuracy']:.2%}   "
            f"test loss {out['test_loss']:.3g}, accuracy {out['test_accuracy']:.2%}",
            f"  key irreps: {named(out['key_irreps'])}",
            f"  clustered neurons per irrep: {counts}; {out['fraction_neurons_clustered']:.1%} of "
            f"{out['n_neurons']} clustered (FVE >= {out['clustered_threshold']}), {out['n_dead_neurons']} dead",
            "  logits' variance along each character χ(a·b·c⁻¹): "
            + ", ".join(f"{label} {fve:.1%}" for label, fve in top),
            f"  restricted loss {out['restricted_loss']:.3g} (keep only the key irreps), "
            f"excluded loss {out['excluded_loss']:.3g} (remove them; train pairs)",
        ]
    )
