"""Full-batch AdamW with the reference warm-up, as plain tensor updates with its schedule on the device.

Numerically the same update as ``torch.optim.AdamW`` with the reference ``LambdaLR`` warm-up
(tested against it), written out for three reasons:

* the trainer needs its state as plain named tensors: a checkpoint stores it in safetensors (no
  pickle) for an exact ``--resume``;
* a step must hold no host value that changes from step to step, so that it can be captured once
  as a CUDA graph and replayed (``grokviz.training.graphs``). The per-step scalars (weight decay factor
  under the warm-up learning rate, step size with its bias correction, second-moment bias
  correction) depend only on the step number: they are computed for every step up front, on the
  host in Python floats exactly as a plain loop would, and each update reads its row from a
  device table with a device step counter (one gather, not a dozen scalar kernels per step);
* one update serves a single run (scalar rows) and an ensemble (``[member]`` rows broadcast over
  ``[member, ...]`` parameters), so an ensemble member follows its single run by construction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from grokviz.core.config import Config
from grokviz.core.digits_config import DigitsConfig
from grokviz.core.groups_config import GroupsConfig
from grokviz.core.params import Params


@dataclass
class AdamWState:
    """``step`` = updates done so far (0-d int64 on the parameters' device); moments keyed like
    the parameters."""

    step: torch.Tensor
    exp_avg: Params
    exp_avg_sq: Params

    @classmethod
    def zeros_like(cls, params: Params, step: int = 0) -> AdamWState:
        device = next(iter(params.values())).device
        return cls(
            step=torch.tensor(step, dtype=torch.int64, device=device),
            exp_avg={k: torch.zeros_like(v) for k, v in params.items()},
            exp_avg_sq={k: torch.zeros_like(v) for k, v in params.items()},
        )

    def tensors(self) -> list[torch.Tensor]:
        """Everything a step changes in place (for saving and restoring around a graph capture)."""
        return [self.step, *self.exp_avg.values(), *self.exp_avg_sq.values()]


def learning_rate(cfg: Config, step: int) -> float:
    """lr of update number ``step`` (0-based): linear from 0 over ``warmup_steps``, as LambdaLR
    ``min(step / warmup, 1)`` in the reference code (so the very first update has lr 0); then
    constant, or (``lr_schedule="cosine"``) a cosine decay that reaches 0 at ``steps``.

    The peak is ``cfg.peak_lr`` (``lr``, or ``lr / (1 + lamb)`` with ``grokfast_divide_lr``).
    A constant schedule does not depend on ``steps``: that is what lets ``--resume --steps N``
    extend a run bit for bit."""
    peak = cfg.peak_lr
    if step < cfg.warmup_steps:
        return peak * (step / cfg.warmup_steps)
    if cfg.lr_schedule == "cosine":
        progress = (step - cfg.warmup_steps) / max(cfg.steps - cfg.warmup_steps, 1)
        return peak * 0.5 * (1.0 + math.cos(math.pi * progress))
    return peak


def adder_learning_rate(cfg: DigitsConfig, step: int) -> float:
    """The adder's lr of update ``step`` (0-based), optax.warmup_cosine_decay_schedule's formula:
    linear from 0 over the warm-up, then a cosine from the peak to ``min_lr_ratio`` x peak at ``steps``."""
    warmup = cfg.warmup_steps
    if step < warmup:
        return cfg.lr * step / warmup
    span = max(cfg.steps - warmup, 1)
    progress = min((step - warmup) / span, 1.0)
    cosine = 0.5 * (1 + math.cos(math.pi * progress))
    return cfg.lr * ((1 - cfg.min_lr_ratio) * cosine + cfg.min_lr_ratio)


# Each family's learning rate (the arithmetic of each is kept as it was, so its runs stay bit-exact).
# A groups run (GroupsConfig, a Config) trains on the modular recipe's schedule.
LEARNING_RATES = {
    Config.family: learning_rate,
    DigitsConfig.family: adder_learning_rate,
    GroupsConfig.family: learning_rate,
}


def schedule(cfg: Config | DigitsConfig) -> list[tuple[float, float, float]]:
    """Per update number: (1 - lr * weight_decay, -lr / (1 - beta1^t), sqrt(1 - beta2^t)), t = step + 1,
    in Python floats: the scalars a plain AdamW loop computes, under the family's learning rate."""
    lr_of = LEARNING_RATES[cfg.family]
    rows = []
    for step in range(cfg.steps):
        lr, t = lr_of(cfg, step), step + 1
        rows.append((1 - lr * cfg.weight_decay, -lr / (1 - cfg.beta1**t), math.sqrt(1 - cfg.beta2**t)))
    return rows


AnyConfig = Config | DigitsConfig


@dataclass(frozen=True)
class Hyper:
    """The update's schedule as a device table: [steps, 3] float32 for a single run, [steps, 3, member]
    for an ensemble (columns: weight decay factor, step size, second-moment bias correction)."""

    table: torch.Tensor
    beta1: float
    beta2: float
    eps: float = 1e-8

    @classmethod
    def of(cls, configs: AnyConfig | list[AnyConfig], device: torch.device | str = "cpu") -> Hyper:
        """From one config (scalars per step) or from an ensemble's configs (one column per member),
        of either family (the adder's warm-up + cosine schedule, or the modular one)."""
        many = isinstance(configs, list)
        group = configs if many else [configs]
        first = group[0]
        if len({(c.steps, c.warmup_steps, c.beta1, c.beta2) for c in group}) > 1:
            raise ValueError("members of one AdamW must share steps, warmup_steps, beta1 and beta2")
        if len({(c.family, getattr(c, "lr_schedule", None)) for c in group}) > 1:
            raise ValueError("members of one AdamW must share their family and lr_schedule")
        # Members that differ only in seeds share a table (its rows do not depend on them).
        key = lambda cfg: cfg.replace(seed=0, data_seed=None)  # noqa: E731
        tables: dict = {}
        for cfg in group:
            tables.setdefault(key(cfg), schedule(cfg))
        # Rounded to float32 once, from float64, where the tensor arithmetic meets the scalars.
        columns = [torch.tensor(tables[key(c)], dtype=torch.float64).float() for c in group]
        table = torch.stack(columns, dim=-1) if many else columns[0]  # [steps, 3(, member)]
        return cls(table.to(device), first.beta1, first.beta2)


def _per_member(values: torch.Tensor, like: list[torch.Tensor]) -> torch.Tensor | list[torch.Tensor]:
    """A scalar stays one tensor (one multi-tensor kernel); ``[member]`` values become one view per
    parameter that broadcasts over its own axes."""
    if values.dim() == 0:
        return values
    return [values.view(-1, *(1,) * (t.dim() - 1)) for t in like]


@torch.no_grad()
def adamw_step(params: Params, grads: Params, state: AdamWState, hyper: Hyper) -> None:
    """One in-place AdamW update of ``params`` (decoupled weight decay, bias-corrected moments).

    No host sync and no host value that changes between steps: safe to capture in a CUDA graph.
    """
    device = next(iter(params.values())).device
    if not state.step.device == hyper.table.device == device:
        raise ValueError(
            f"AdamW state on {state.step.device}, schedule on {hyper.table.device}, parameters on {device}"
        )
    # index_select, not table[step]: indexing with a 0-d tensor reads it on the host.
    row = hyper.table.index_select(0, state.step.view(1))[0]  # [3] or [3, member]
    decay, step_size, bias_correction2_sqrt = row[0], row[1], row[2]
    state.step.add_(1)

    names = list(params)
    values = [params[n] for n in names]
    grad = [grads[n] for n in names]
    exp_avg = [state.exp_avg[n] for n in names]
    exp_avg_sq = [state.exp_avg_sq[n] for n in names]
    # Multi-tensor ("foreach") ops: on CUDA one kernel per line for all parameters.
    torch._foreach_mul_(values, _per_member(decay, values))
    torch._foreach_lerp_(exp_avg, grad, 1 - hyper.beta1)
    torch._foreach_mul_(exp_avg_sq, hyper.beta2)
    torch._foreach_addcmul_(exp_avg_sq, grad, grad, value=1 - hyper.beta2)
    denom = torch._foreach_sqrt(exp_avg_sq)
    # The second-moment correction is shared by all members (betas are): one scalar.
    torch._foreach_div_(denom, bias_correction2_sqrt if bias_correction2_sqrt.dim() == 0 else bias_correction2_sqrt[0])
    torch._foreach_add_(denom, hyper.eps)
    update = torch._foreach_mul(exp_avg, _per_member(step_size, values))
    torch._foreach_div_(update, denom)
    torch._foreach_add_(values, update)
