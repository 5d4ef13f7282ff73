"""Dropout masks for a training step, drawn from the run's seed and the step number.

The forward takes its masks as inputs (``grokviz.core.forward``), so a step stays a function of
what it is given. Each step's masks come from a generator seeded by ``(seed, step)``: a resumed
run draws the masks it would have drawn, and an ensemble member draws exactly its single run's
masks (same seed, shapes and device), stacked along the member axis. Reseeding on the host each
step is why a run with dropout is not captured as a CUDA graph.
"""

from __future__ import annotations

import sys

import torch

from grokviz.core.config import Config
from grokviz.core.forward import dropout_masks, dropout_shapes

# A large odd multiplier spreads (seed, step) over the generator's seed space without collisions
# for any step count a run can have.
_STEP_STRIDE = 1_000_003


class DropoutDraw:
    """The masks of every training step of one run (``cfg.dropout`` > 0) over ``n_rows`` pairs
    (the training set, or the minibatch)."""

    def __init__(self, cfg: Config, n_rows: int, device: torch.device):
        self.rate, self.seed, self.device = cfg.dropout, cfg.seed, device
        self.shapes = dropout_shapes(n_rows, cfg.n_heads, cfg.d_model, cfg.d_mlp, cfg.n_ctx)

    def at(self, step: int) -> dict[str, torch.Tensor]:
        """The masks of the update that follows ``step`` updates."""
        generator = torch.Generator(self.device).manual_seed((self.seed * _STEP_STRIDE + step) % 2**63)
        return dropout_masks(self.rate, self.shapes, generator, self.device)


def draw_for(cfg: Config, n_rows: int, device: torch.device) -> DropoutDraw | None:
    """The run's mask source, or None without dropout (then the step draws nothing)."""
    return DropoutDraw(cfg, n_rows, device) if cfg.dropout > 0 else None


def capturable(use_graphs: bool, dev: torch.device, reseeded: bool) -> bool:
    """Whether the steps may be captured as CUDA graphs: not with dropout or minibatches (their
    generators are reseeded on the host each step), which is then said on stderr."""
    if use_graphs and reseeded and dev.type == "cuda":
        print("note: dropout or minibatches: the steps run eagerly, not as CUDA graphs", file=sys.stderr)
        return False
    return use_graphs


def stacked(draws: list[DropoutDraw], step: int) -> dict[str, torch.Tensor]:
    """Per-member masks of one step, stacked: site -> [member, ...]."""
    per_member = [draw.at(step) for draw in draws]
    return {site: torch.stack([masks[site] for masks in per_member]) for site in per_member[0]}
