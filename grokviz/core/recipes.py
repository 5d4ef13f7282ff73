"""Named recipes: published training setups as one flag (``grokviz train --recipe NAME``).

A recipe is a set of config values taken from a paper, applied under whatever the command line
gives explicitly (``--recipe power2022 --lr 3e-4`` keeps the paper's everything but the learning
rate). What a recipe does not copy from its source, and why, is in docs/depth.md.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from grokviz.core.config import Config


@dataclass(frozen=True)
class Recipe:
    """Config values from one source; ``batch_cap`` sets ``batch_size`` to min(cap, half the training set)."""

    source: str  # the source, in words
    values: dict = field(default_factory=dict)
    batch_cap: int | None = None

    def apply(self, cfg: Config, keep: Iterable[str] = ()) -> Config:
        """``cfg`` with the recipe's values, except the fields in ``keep`` (given explicitly)."""
        keep = set(keep)
        cfg = cfg.replace(**{name: value for name, value in self.values.items() if name not in keep})
        if self.batch_cap is not None and "batch_size" not in keep:
            cfg = cfg.replace(batch_size=max(1, min(self.batch_cap, cfg.train_size() // 2)))
        return cfg


RECIPES: dict[str, Recipe] = {
    # Power et al. (2022), "Grokking: Generalization Beyond Overfitting on Small Algorithmic
    # Datasets", appendix A.1: a decoder-only transformer with causal attention, 2 layers, width
    # 128, 4 heads; AdamW, lr 1e-3, weight decay 1, betas (0.9, 0.98), linear warm-up over 10
    # steps, minibatches of 512 or half the training set if that is smaller; p = 97.
    "power2022": Recipe(
        "Power et al. (2022)",
        {
            "p": 97,
            "n_layers": 2,
            "d_model": 128,
            "n_heads": 4,
            "d_head": 32,
            "d_mlp": 512,
            "attention": "causal",
            "lr": 1e-3,
            "weight_decay": 1.0,
            "beta1": 0.9,
            "beta2": 0.98,
            "warmup_steps": 10,
        },
        batch_cap=512,
    ),
}
