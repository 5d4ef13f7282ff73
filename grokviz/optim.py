"""Full-batch AdamW with the reference warm-up, as plain tensor updates with every scalar on the device.

Numerically the same update as ``torch.optim.AdamW`` with the reference ``LambdaLR`` warm-up
(tested against it), written out for three reasons:

* the trainer needs its state as plain named tensors: a checkpoint stores it in safetensors (no
  pickle) for an exact ``--resume``;
* the per-step scalars (learning rate under warm-up, bias corrections) are computed *on the
  device* from a device step counter, so a step holds no host value that changes from step to
  step and can be captured once as a CUDA graph and replayed (``grokviz.graphs``);
* one update serves a single run (scalar ``lr``/``weight_decay``) and an ensemble
  (``[member]`` tensors broadcast over ``[member, ...]`` parameters), so an ensemble member
  follows its single run by construction.

The scalars are computed in float64, as Python floats are, and rounded to float32 once (where
the tensor arithmetic meets them), so the update is the one a loop with Python-float scalars
computes: bit for bit on a CPU (tested); on CUDA its float64 ``pow`` may differ in the last bit,
which rounding to float32 almost never shows.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .config import Config
from .model import Params


@dataclass
class AdamWState:
    """``step`` = updates done so far (0-d float64 on the parameters' device); moments keyed like
    the parameters."""

    step: torch.Tensor
    exp_avg: Params
    exp_avg_sq: Params

    @classmethod
    def zeros_like(cls, params: Params, step: int = 0) -> "AdamWState":
        device = next(iter(params.values())).device
        return cls(
            step=torch.tensor(float(step), dtype=torch.float64, device=device),
            exp_avg={k: torch.zeros_like(v) for k, v in params.items()},
            exp_avg_sq={k: torch.zeros_like(v) for k, v in params.items()},
        )

    def tensors(self) -> list[torch.Tensor]:
        """Everything a step changes in place (for saving and restoring around a graph capture)."""
        return [self.step, *self.exp_avg.values(), *self.exp_avg_sq.values()]


@dataclass(frozen=True)
class Hyper:
    """AdamW's hyperparameters: ``lr`` and ``weight_decay`` as float64 device tensors, ``[]`` for a
    single run or ``[member]`` for an ensemble; warm-up and betas shared."""

    lr: torch.Tensor
    weight_decay: torch.Tensor
    warmup: torch.Tensor  # warmup_steps as a float64 device tensor: on CUDA, dividing by a host
    # number multiplies by its reciprocal, which is not always the quotient Python computes
    warmup_steps: int
    beta1: float
    beta2: float
    eps: float = 1e-8

    @classmethod
    def of(cls, configs: Config | list[Config], device: torch.device | str = "cpu") -> "Hyper":
        """From one config (scalars) or from an ensemble's configs (one entry per member)."""
        many = isinstance(configs, list)
        group = configs if many else [configs]
        first = group[0]
        shared = {(c.warmup_steps, c.beta1, c.beta2) for c in group}
        if len(shared) > 1:
            raise ValueError("members of one AdamW must share warmup_steps, beta1 and beta2")

        def column(name: str) -> torch.Tensor:
            values = torch.tensor([getattr(c, name) for c in group], dtype=torch.float64, device=device)
            return values if many else values[0]

        warmup = torch.tensor(float(first.warmup_steps), dtype=torch.float64, device=device)
        return cls(column("lr"), column("weight_decay"), warmup, first.warmup_steps, first.beta1, first.beta2)


def learning_rate(cfg: Config, step: int) -> float:
    """lr of update number ``step`` (0-based): linear from 0 over ``warmup_steps``, as LambdaLR
    ``min(step / warmup, 1)`` in the reference code (so the very first update has lr 0).

    The host-side statement of what :func:`adamw_step` computes on the device."""
    if cfg.warmup_steps == 0:
        return cfg.lr
    return cfg.lr * min(step / cfg.warmup_steps, 1.0)


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
    step = state.step  # updates done before this one
    device = next(iter(params.values())).device
    if not step.device == hyper.lr.device == device:
        # A host scalar would be read once at capture and frozen into a CUDA graph.
        raise ValueError(f"AdamW state on {step.device}, hyperparameters on {hyper.lr.device}, parameters on {device}")
    if hyper.warmup_steps:
        lr = hyper.lr * torch.clamp(step / hyper.warmup, max=1.0)
    else:
        lr = hyper.lr
    step.add_(1)
    bias_correction1 = 1 - torch.pow(hyper.beta1, step)
    bias_correction2_sqrt = torch.sqrt(1 - torch.pow(hyper.beta2, step)).float()
    decay = (1 - lr * hyper.weight_decay).float()
    step_size = (-lr / bias_correction1).float()

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
    torch._foreach_div_(denom, bias_correction2_sqrt)
    torch._foreach_add_(denom, hyper.eps)
    update = torch._foreach_mul(exp_avg, _per_member(step_size, values))
    torch._foreach_div_(update, denom)
    torch._foreach_add_(values, update)
