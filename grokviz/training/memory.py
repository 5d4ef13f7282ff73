"""How much memory a training run needs, estimated before anything is allocated, and the refusal
of one that cannot fit.

The estimate counts, in bytes: the float32 parameters, their gradients and AdamW's two moments;
the activations that training keeps for the backward pass (every pair of the training set, or of
the minibatch with ``batch_size``: attention, MLP pre- and post-activations, residual streams,
float32 logits and the float64 copy the loss is computed in; in a model of N blocks every block
but the last at all three positions), twice over for their gradients; and the no-grad passes of a
log step (the test set, and with minibatches the whole training set, whose metrics are logged).
An ensemble holds every member's parameters and optimiser state at once, but only one group's
activations (groups are stepped one after another, ``group_size`` members at a time).

It is an estimate of what the model's tensors need, not of the allocator's slack or of PyTorch
itself (a few hundred MB): :data:`OVERHEAD` is added for those.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from grokviz.core.config import Config
from grokviz.core.params import n_params, param_shapes
from grokviz.errors import GrokvizError

FLOAT32, FLOAT64 = 4, 8
OVERHEAD = 512 * 2**20  # PyTorch's own memory, the allocator's slack, the datasets
# Above this share of the free memory a run is "large": it is allowed, and said so.
LARGE_SHARE = 0.5


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes, by what holds them, for ``members`` models trained ``group_size`` at a time."""

    members: int
    group_size: int
    parameters: int
    gradients: int
    optimiser: int
    activations: int  # of one group, training and test passes

    @property
    def total(self) -> int:
        return self.parameters + self.gradients + self.optimiser + self.activations + OVERHEAD

    def describe(self) -> str:
        parts = [
            f"parameters {gib(self.parameters)}",
            f"gradients {gib(self.gradients)}",
            f"AdamW state {gib(self.optimiser)}",
            f"activations {gib(self.activations)}",
        ]
        who = "1 model" if self.members == 1 else f"{self.members:,} models, {self.group_size:,} at a time"
        return f"about {gib(self.total)} for {who} ({', '.join(parts)}, plus {gib(OVERHEAD)} for PyTorch)"


def gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def n_pairs(cfg: Config) -> tuple[int, int]:
    """(train pairs, test pairs) of the config's split, from the sizes alone (as ``make_dataset`` splits)."""
    total = cfg.pair_count()
    n_train = int(cfg.frac_train * total)
    return n_train, total - n_train


def activation_bytes_per_pair(cfg: Config) -> int:
    """What one pair's forward keeps: position 2's attention, MLP and residuals, and its logits;
    in a deeper model also every earlier block at all three positions."""
    attention = cfg.n_heads * (3 * 2 + cfg.d_head)  # scores and pattern over 3 keys, z
    residual = 4 * cfg.d_model  # attn_out, resid_mid, mlp_out, resid_post
    mlp = 2 * cfg.d_mlp  # pre and post
    logits = cfg.d_vocab_out * FLOAT32 + 2 * cfg.d_vocab_out * FLOAT64  # float32, float64 copy, log-softmax
    general = 0
    arch = cfg.architecture
    if not arch.is_reference or cfg.n_layers > 1:
        # The general path (and any model of more than one block) embeds all three positions and
        # projects their keys and values per pair (the 1-layer fast path gathers them from p-row
        # tables), normalises, and multiplies by masks.
        general = 3 * cfg.d_model + 2 * 3 * cfg.n_heads * cfg.d_head
        general += (3 + 2) * cfg.d_model if arch.layernorm != "none" else 0
        general += cfg.n_heads * 3 + 2 * cfg.d_model + cfg.d_mlp if cfg.dropout > 0 else 0
    earlier = (cfg.n_layers - 1) * _block_at_all_positions(cfg)
    return (attention + residual + mlp + general + earlier) * FLOAT32 + logits


def _block_at_all_positions(cfg: Config) -> int:
    """Floats one pair keeps of a block that is not the last (its output is read at all three
    positions by the next block's keys and values)."""
    width = cfg.n_heads * cfg.d_head
    per_position = 3 * width + width + 5 * cfg.d_model + 2 * cfg.d_mlp  # q, k, v; z; 5 streams; MLP pre, post
    if cfg.architecture.layernorm != "none":
        per_position += 2 * cfg.d_model  # the two normalised streams
    return 3 * per_position + 2 * cfg.n_heads * 3 * 3  # scores and pattern: [head, q_pos, k_pos]


def estimate(cfg: Config, members: int = 1, group_size: int | None = None) -> MemoryEstimate:
    """The memory ``members`` models of ``cfg``'s sizes need when trained ``group_size`` at a time."""
    group = members if group_size is None else max(1, min(group_size, members))
    weights = n_params(param_shapes(cfg)) * FLOAT32 * members  # from the config alone
    n_train, n_test = n_pairs(cfg)
    per_pair = activation_bytes_per_pair(cfg)
    # Training keeps the update's activations (the training set's, or the minibatch's) and holds
    # their gradients during the backward; a no-grad pass frees as it goes, but its largest
    # tensors coexist. A minibatch run's log steps also pass over the whole training set.
    update_rows = n_train if cfg.batch_size is None else min(cfg.batch_size, n_train)
    evaluated_rows = n_test if cfg.batch_size is None else max(n_train, n_test)
    activations = group * (2 * update_rows * per_pair + evaluated_rows * per_pair)
    return MemoryEstimate(members, group, weights, weights, 2 * weights, activations)


def digits_estimate(cfg) -> MemoryEstimate:
    """One adder model (``DigitsConfig``): weights, and the activations of a training batch (33
    positions up to attention, the 12 answer positions after it) and of the validation pass."""
    from grokviz.core.digits_model import param_shapes as digits_shapes

    weights = n_params(digits_shapes(cfg)) * FLOAT32
    d, heads = cfg.d_model, cfg.n_heads
    prompt = 33 * (8 * d) + heads * 12 * 33 * 3  # embeddings, ln1, q/k/v, z; scores, pattern, mask
    answer = 12 * (6 * d + 2 * cfg.d_mlp)  # residuals, ln2, ln_final; FFN pre and post
    logits = 12 * cfg.d_vocab * (FLOAT32 + 2 * FLOAT64)  # float32, float64 copy, log-softmax
    per_example = (prompt + answer) * FLOAT32 + logits
    activations = 2 * cfg.batch_size * per_example + min(cfg.val_size, 4096) * per_example
    return MemoryEstimate(1, 1, weights, weights, 2 * weights, activations)


def estimate_sweep(configs: list, group_size: int | None = None, counts: list[int] | None = None) -> MemoryEstimate:
    """The memory of an ensemble of ``configs`` (of one family, any shapes): every member's weights
    and AdamW state at once, and the largest group's activations (``group_size`` members at a time).
    ``counts``: how many members each config stands for (default 1 each)."""
    counts = counts or [1] * len(configs)
    ones = [digits_estimate(c) if c.family == "digits" else estimate(c) for c in configs]
    members = sum(counts)
    group = members if group_size is None else max(1, min(group_size, members))
    total = lambda field: sum(getattr(one, field) * n for one, n in zip(ones, counts))  # noqa: E731
    largest = max(one.activations for one in ones)
    return MemoryEstimate(members, group, total("parameters"), total("gradients"), total("optimiser"), group * largest)


def free_memory(dev: torch.device) -> int:
    """Bytes free for this process now: the GPU's free memory, or the machine's available memory."""
    if dev.type == "cuda":
        free, _ = torch.cuda.mem_get_info(dev)
        return int(free)
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")


def check_fits(need: MemoryEstimate, dev: torch.device, free: int | None = None) -> str | None:
    """Refuse (GrokvizError) a run that cannot fit in the free memory of ``dev``; for one that fits
    but is large, return a sentence saying so (None otherwise). Allocates nothing."""
    free = free_memory(dev) if free is None else free
    where = "the GPU's free memory" if dev.type == "cuda" else "this machine's available memory"
    smaller = ""
    if need.members > 1:
        one_at_a_time = estimate_like(need, group_size=1)
        smaller = (
            f"; a smaller --group-size lowers the activations (one member at a time needs {gib(one_at_a_time.total)})"
            if need.group_size > 1
            else ""
        )
    if need.total > free:
        raise GrokvizError(
            f"this run needs {need.describe()}, more than {where} ({gib(free)}){smaller}; "
            "make the model or the ensemble smaller"
        )
    if need.total > LARGE_SHARE * free:
        return f"this run is large: it needs {need.describe()} of {where} ({gib(free)}){smaller}"
    return None


def estimate_like(need: MemoryEstimate, group_size: int) -> MemoryEstimate:
    """The same estimate with another group size (activations scale with it)."""
    per_member = need.activations // need.group_size
    group = max(1, min(group_size, need.members))
    return MemoryEstimate(need.members, group, need.parameters, need.gradients, need.optimiser, per_member * group)
