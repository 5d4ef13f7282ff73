"""Minibatches: the training pairs of each step, drawn from the run's seed and the step number.

A run with ``batch_size`` set trains each step on ``batch_size`` of its training pairs, drawn
without replacement by a generator seeded from ``(seed, step)``, as the dropout masks are
(``grokviz.training.dropout``): a resumed run draws the batches it would have drawn, and an
ensemble member draws exactly its single run's batches. Without ``batch_size`` (the default) no
generator is made and the step is the full-batch step it always was, bit for bit. Reseeding on the
host each step is why a minibatch run is not captured as a CUDA graph. The indices are drawn on the
CPU whatever the device, so the batches do not depend on where the run trains.
"""

from __future__ import annotations

import torch

from grokviz.core.config import Config

# The dropout masks' stride (a large odd multiplier), and an offset so that a run with both draws
# its batches and its masks from different generators.
_STEP_STRIDE = 1_000_003
_OFFSET = 2**61 + 12_345


class BatchDraw:
    """The training-pair indices of every step of one run (``cfg.batch_size`` set) over ``n_train`` pairs."""

    def __init__(self, cfg: Config, n_train: int, device: torch.device):
        self.batch_size, self.seed, self.n_train, self.device = cfg.batch_size, cfg.seed, n_train, device

    def at(self, step: int) -> torch.Tensor:
        """The indices [batch_size] int64 into the training split of the update that follows ``step`` updates."""
        # Drawn on the CPU whatever the run's device (CPU and CUDA generators are different RNGs): a
        # run resumed on another device, or a member of a GPU ensemble, draws the same batches.
        generator = torch.Generator().manual_seed((self.seed * _STEP_STRIDE + step + _OFFSET) % 2**63)
        return torch.randperm(self.n_train, generator=generator)[: self.batch_size].to(self.device)


def draw_for(cfg: Config, n_train: int, device: torch.device) -> BatchDraw | None:
    """The run's batch source, or None for full-batch training (then every step reads every pair)."""
    return BatchDraw(cfg, n_train, device) if cfg.batch_size is not None and cfg.batch_size < n_train else None
