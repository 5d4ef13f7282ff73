"""The local learning coefficient (LLC) of a checkpoint, estimated by SGLD.

Owns (definition and sampler setting in docs/forecast.md):

* :class:`SamplerSettings` and :data:`SAMPLER` — the one fixed sampler setting every LLC grokviz
  shows is made with (LLC values are only comparable under one setting);
* :func:`estimate_llc` — the estimator for any full-batch loss over named tensors;
* :func:`checkpoint_llc` — a modular (or group) checkpoint's LLC on its training pairs.

The estimator (Lau et al. 2023, as in Timaeus's ``devinterp``): with n training examples,
beta = 1 / log n, and w drawn by SGLD localised at the checkpoint w*,

    w <- w - (eps / 2) * (n * beta * grad L_n(w) + gamma * (w - w*)) + N(0, eps)
    LLC = n * beta * (mean over draws of L_n(w) - L_n(w*)).

Written here rather than taken from ``devinterp`` (docs/forecast.md says why: it pulls
transformers, datasets, huggingface_hub and zarr beside torch, and samples an ``nn.Module`` through
a DataLoader, where grokviz's models are named tensors evaluated full batch). Pure functions: no
files; the per-checkpoint cache is ``grokviz.storage.timeline``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch

from grokviz.core.architecture import REFERENCE, Architecture
from grokviz.core.fast_path import forward_last
from grokviz.core.params import Params
from grokviz.core.tasks import Dataset
from grokviz.training.step import cross_entropy64


@dataclass(frozen=True)
class SamplerSettings:
    """One SGLD setting. ``step_size`` is eps above, ``localization`` gamma; each of ``chains``
    runs ``burn_in + draws`` steps from w*, each on ``batch_size`` examples drawn without
    replacement (all of them when there are fewer), and the last ``draws`` batch losses are
    averaged (each minus the same batch's loss at w*). The estimate is unbiased while step_size * n * beta * (the loss's largest
    curvature) stays below ~0.2; above it SGLD's discretisation reads high (+10% at ~0.3, tested on
    linear regression). ``float32`` weights: the steps (noise of sqrt(eps) ~ 5e-3) are far above fp32's
    rounding, and the loss itself is taken in float64."""

    step_size: float = 3e-5
    localization: float = 100.0
    chains: int = 2
    burn_in: int = 50
    draws: int = 50
    batch_size: int = 512
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


# The setting of every LLC in the timeline, the forecast and the app (docs/forecast.md).
SAMPLER = SamplerSettings()


LossFn = Callable[[dict[str, torch.Tensor], torch.Tensor], torch.Tensor]


def estimate_llc(
    loss_fn: LossFn, params: dict[str, torch.Tensor], n: int, settings: SamplerSettings = SAMPLER
) -> float:
    """LLC at ``params`` of ``loss_fn(w, idx)``: the mean loss (0-d) of named tensors ``w`` over
    the examples ``idx`` [batch] (int64 indices into ``range(n)``).

    ``n`` is the number of examples (beta = 1 / log n). NaN when a chain diverges (the step size
    is too large for this loss's curvature).
    """
    if n < 2:
        raise ValueError(f"n={n}: the LLC needs at least 2 examples (beta = 1 / log n)")
    n_beta = n / math.log(n)
    centre = {name: t.detach().float() for name, t in params.items()}  # w*
    everything = torch.arange(n)
    generator = torch.Generator().manual_seed(settings.seed)
    eps = settings.step_size
    means = []
    for _ in range(settings.chains):
        w = {name: t.clone().requires_grad_(True) for name, t in centre.items()}
        total = 0.0
        for i in range(settings.burn_in + settings.draws):
            idx = (
                everything
                if n <= settings.batch_size
                else torch.randperm(n, generator=generator)[: settings.batch_size]
            )
            loss = loss_fn(w, idx)
            grads = torch.autograd.grad(loss, list(w.values()))
            if i >= settings.burn_in:
                # L_batch(w) - L_batch(w*) on the same batch: the same mean as L_n(w) - L_n(w*),
                # without the batch-to-batch spread of the loss itself (a control variate).
                with torch.no_grad():
                    total += float(loss.detach()) - float(loss_fn(centre, idx))
            with torch.no_grad():
                for (name, t), g in zip(w.items(), grads):
                    drift = n_beta * g + settings.localization * (t - centre[name])
                    noise = torch.randn(t.shape, generator=generator, dtype=t.dtype)
                    t.add_(-0.5 * eps * drift + math.sqrt(eps) * noise)
        means.append(total / settings.draws)
    estimate = n_beta * sum(means) / len(means)
    return estimate if math.isfinite(estimate) else math.nan


def checkpoint_llc(
    params: Params, dataset: Dataset, arch: Architecture = REFERENCE, settings: SamplerSettings = SAMPLER
) -> float:
    """The LLC of a modular-model checkpoint on its training pairs (cross-entropy at position 2)."""
    a, b = dataset.a[dataset.train_idx], dataset.b[dataset.train_idx]  # [n_train]
    labels = dataset.labels[dataset.train_idx]

    def loss(w: dict[str, torch.Tensor], idx: torch.Tensor) -> torch.Tensor:
        return cross_entropy64(forward_last(w, a[idx], b[idx], arch=arch), labels[idx])

    return estimate_llc(loss, params, len(labels), settings)
