"""Full-batch AdamW with the reference warm-up, as plain tensor updates.

Numerically the same update as ``torch.optim.AdamW`` (tested against it), written out because
the trainer needs its state as plain named tensors: a checkpoint stores it in safetensors (no
pickle) for an exact ``--resume``, and the step can be captured in a CUDA graph.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .config import Config
from .model import Params


@dataclass
class AdamWState:
    """``step`` = updates done so far; moments keyed like the parameters."""

    step: int
    exp_avg: Params
    exp_avg_sq: Params

    @classmethod
    def zeros_like(cls, params: Params) -> "AdamWState":
        return cls(
            step=0,
            exp_avg={k: torch.zeros_like(v) for k, v in params.items()},
            exp_avg_sq={k: torch.zeros_like(v) for k, v in params.items()},
        )


def learning_rate(cfg: Config, step: int) -> float:
    """lr of update number ``step`` (0-based): linear from 0 over ``warmup_steps``, as LambdaLR
    ``min(step / warmup, 1)`` in the reference code (so the very first update has lr 0)."""
    if cfg.warmup_steps == 0:
        return cfg.lr
    return cfg.lr * min(step / cfg.warmup_steps, 1.0)


@torch.no_grad()
def adamw_step(params: Params, grads: Params, state: AdamWState, cfg: Config, eps: float = 1e-8) -> None:
    """One in-place AdamW update of ``params`` (decoupled weight decay, bias-corrected moments)."""
    lr = learning_rate(cfg, state.step)
    state.step += 1
    bias_correction1 = 1 - cfg.beta1**state.step
    bias_correction2_sqrt = math.sqrt(1 - cfg.beta2**state.step)
    for name, param in params.items():
        grad = grads[name]
        exp_avg, exp_avg_sq = state.exp_avg[name], state.exp_avg_sq[name]
        param.mul_(1 - lr * cfg.weight_decay)
        exp_avg.lerp_(grad, 1 - cfg.beta1)
        exp_avg_sq.mul_(cfg.beta2).addcmul_(grad, grad, value=1 - cfg.beta2)
        denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)
        param.addcdiv_(exp_avg, denom, value=-lr / bias_correction1)
