"""MLP neurons in the Fourier basis: FVE per frequency, neuron frequencies, the probe.

Owns (definitions in shared/docs/ANALYSIS.md, "Neurons"):

* :func:`neuron_activations` — ``N[a, b, n]``, post-ReLU at position 2 for all pairs;
* :func:`neuron_stats` — per-neuron FVE of every frequency's 3x3 block, best frequency,
  clustered / dead flags; :func:`key_frequencies` — frequency -> number of clustered neurons;
* :func:`probe` — the cos·cos / sin·sin least-squares picture of one neuron at one input;
  :func:`term_correlations` — every neuron's Pearson correlation with the nine terms.

All pure functions of tensors. ``N`` is always evaluated on every one of the p^2 pairs, also
for tasks whose dataset omits some (``div`` has no b = 0): the model is defined there, and the
Fourier basis is orthogonal only over the full grid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd
import torch
from einops import einsum, rearrange

from .fourier import fourier_2d, n_frequencies
from .model import Params, forward_last

# A neuron whose activations vary by less than this (RMS over all pairs) is dead: a ReLU that
# never fires (or always gives the same value) has no frequency to report.
DEAD_RMS = 1e-6

TERMS = (
    "const", "cos(wa)", "sin(wa)", "cos(wb)", "sin(wb)",
    "cos(wa)cos(wb)", "cos(wa)sin(wb)", "sin(wa)cos(wb)", "sin(wa)sin(wb)",
)


def all_pairs(p: int) -> tuple[torch.Tensor, torch.Tensor]:
    """a, b [p*p] int64 in row-major order (index = a * p + b), every pair of Z_p x Z_p."""
    a = torch.arange(p).repeat_interleave(p)
    b = torch.arange(p).repeat(p)
    return a, b


def _key_major(pattern: torch.Tensor) -> torch.Tensor:
    """Same values, stored key-major, so that ``pattern[..., key]`` is a contiguous [batch, head] slice.

    forward_last contracts ``pattern[..., 0]`` (stride 3) with a batch of [head, d_model] tables;
    on a strided operand torch's batched matmul falls back to one tiny product per pair, which
    made the all-pairs forward ~2x slower at p = 113 (250 -> 90 ms on one core).
    """
    return pattern.permute(2, 0, 1).contiguous().permute(1, 2, 0)


def forward_all_pairs(params: Params, cache: dict | None = None) -> torch.Tensor:
    """Logits [p*p, p] of every pair, row-major, by ``model.forward_last`` (no gradients).

    ``cache`` receives forward_last's position-2 activations ([p*p, ...]).
    """
    p = params["unembed.W_U"].shape[1]
    a, b = all_pairs(p)
    with torch.no_grad():
        return forward_last(params, a, b, hooks={"blocks.0.attn.hook_pattern": _key_major}, cache=cache)


def neuron_activations(params: Params) -> torch.Tensor:
    """N [p (a), p (b), d_mlp]: post-ReLU MLP activations at the '=' position for every pair."""
    p = params["unembed.W_U"].shape[1]
    cache: dict = {}
    forward_all_pairs(params, cache)
    post = cache["blocks.0.mlp.hook_post"]  # [p*p, d_mlp]
    return rearrange(post, "(a b) neuron -> a b neuron", a=p)


@dataclass(frozen=True)
class NeuronStats:
    """Per-neuron Fourier summary. Frequency ``k`` sits at column ``k - 1`` of ``fve``."""

    fve: torch.Tensor  # [d_mlp, K] fraction of variance explained by each frequency's 3x3 block
    frequency: torch.Tensor  # [d_mlp] int64, argmax_k FVE_k (1..K); 0 for dead neurons
    best_fve: torch.Tensor  # [d_mlp] max_k FVE_k; 0 for dead neurons
    clustered: torch.Tensor  # [d_mlp] bool: best_fve >= threshold and not dead
    dead: torch.Tensor  # [d_mlp] bool: (near) zero variance over all pairs
    threshold: float = 0.85

    @property
    def fraction_clustered(self) -> float:
        return float(self.clustered.float().mean())

    def table(self) -> pd.DataFrame:
        """One row per neuron: neuron, frequency, best_fve, clustered, dead."""
        return pd.DataFrame({
            "neuron": range(len(self.frequency)),
            "frequency": self.frequency.tolist(),
            "best_fve": self.best_fve.tolist(),
            "clustered": self.clustered.tolist(),
            "dead": self.dead.tolist(),
        })


def block_energy(energy: torch.Tensor) -> torch.Tensor:
    """energy F^2 [p, p, n] -> [K, n] float64: its sum over each frequency's 3x3 block.

    The block of k is rows and columns {0, 2k-1, 2k}; F[0, 0] (the mean) is included, so pass
    the transform of centred data (or zero F[0, 0]) for variance fractions.
    """
    p = energy.shape[0]
    k = torch.arange(1, n_frequencies(p) + 1)
    index = torch.stack([torch.zeros_like(k), 2 * k - 1, 2 * k], dim=1)  # [K, 3]
    blocks = energy[index[:, :, None], index[:, None, :]]  # [K, 3, 3, n]
    return blocks.sum(dim=(1, 2), dtype=torch.float64)


def neuron_stats(acts: torch.Tensor, threshold: float = 0.85, coefficients: torch.Tensor | None = None) -> NeuronStats:
    """acts N [p, p, d_mlp] -> :class:`NeuronStats` (FVE per frequency, neuron frequency, ...).

    ``coefficients`` may pass a precomputed ``fourier_2d(acts)`` (the app caches it, as the
    neuron-site ablation uses it too). Centring over (a, b) only changes F[0, 0] (every other
    basis row sums to zero), so it is done by zeroing that entry.
    """
    p = acts.shape[0]
    F = fourier_2d(acts) if coefficients is None else coefficients  # [p, p, d_mlp]
    energy = F.pow(2)  # [p, p, d_mlp]
    energy[0, 0] = 0.0  # centre over (a, b)
    # Sums in float64 of the same squares: every block is a subset of the total, so FVEs sum to <= 1.
    total = energy.sum(dim=(0, 1), dtype=torch.float64)  # [d_mlp] = sum over pairs of the centred activation^2
    dead = total <= (DEAD_RMS**2) * p * p
    fve = (block_energy(energy) / total.clamp_min(1e-300)).T  # [d_mlp, K]
    fve[dead] = 0.0
    best_fve, best = fve.max(dim=1)
    frequency = torch.where(dead, torch.zeros_like(best), best + 1)
    return NeuronStats(
        fve=fve.float(), frequency=frequency, best_fve=best_fve.float(),
        clustered=(best_fve >= threshold) & ~dead, dead=dead, threshold=threshold,
    )


def key_frequencies(stats: NeuronStats, min_neurons: int = 1) -> dict[int, int]:
    """Frequency -> number of clustered neurons with it, ascending by frequency.

    ``min_neurons`` drops frequencies held by fewer neurons (default 1: every one, as defined).
    """
    counts = torch.bincount(stats.frequency[stats.clustered], minlength=1).tolist()
    return {k: n for k, n in enumerate(counts) if k >= 1 and n >= max(min_neurons, 1)}


def neuron_frequency_counts(stats: NeuronStats) -> dict[int, int]:
    """Frequency -> number of live neurons whose best frequency it is (clustered or not)."""
    counts = torch.bincount(stats.frequency[~stats.dead], minlength=1).tolist()
    return {k: n for k, n in enumerate(counts) if k >= 1 and n > 0}


# --- the cos·cos / sin·sin probe -----------------------------------------------------------


def term_values(p: int, frequency: int, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The nine regressors at inputs (a, b): [len(a), 9] float64, columns in ``TERMS`` order."""
    w = 2 * math.pi * frequency / p
    ca, sa = torch.cos(w * a.double()), torch.sin(w * a.double())
    cb, sb = torch.cos(w * b.double()), torch.sin(w * b.double())
    return torch.stack([torch.ones_like(ca), ca, sa, cb, sb, ca * cb, ca * sb, sa * cb, sa * sb], dim=1)


def probe_coefficients(acts: torch.Tensor, frequency: int) -> torch.Tensor:
    """[d_mlp, 9] least-squares coefficients of every neuron on the nine terms (float64).

    Over the full p x p grid the nine terms are mutually orthogonal (1 <= k <= (p-1)/2), so the
    least-squares fit is the projection on each term separately: <N, t> / <t, t>. This equals
    the frequency's 3x3 block of the 2-D transform written in the cos/sin basis.
    """
    p, d_mlp = acts.shape[0], acts.shape[2]
    _check_frequency(frequency, p)
    a, b = (t.reshape(-1) for t in torch.meshgrid(torch.arange(p), torch.arange(p), indexing="ij"))
    design = term_values(p, frequency, a, b)  # [p*p, 9]
    N = acts.reshape(p * p, d_mlp).double()  # [p*p, d_mlp]
    projections = einsum(design, N, "pair term, pair neuron -> neuron term")
    return projections / design.pow(2).sum(dim=0)


def term_correlations(acts: torch.Tensor, frequency: int) -> torch.Tensor:
    """[d_mlp, 9] Pearson correlation over all p^2 inputs of each neuron with each term.

    The constant term has no correlation (NaN), and neither has a dead neuron (NaN).
    Computed in fp32 after centring (means taken in float64): ~1e-6 absolute error, ~10x faster
    than converting the [p^2, d_mlp] activations to float64.
    """
    p, d_mlp = acts.shape[0], acts.shape[2]
    _check_frequency(frequency, p)
    a, b = (t.reshape(-1) for t in torch.meshgrid(torch.arange(p), torch.arange(p), indexing="ij"))
    design = term_values(p, frequency, a, b)  # [p*p, 9] float64
    design = (design - design.mean(dim=0)).to(acts.dtype)
    N = acts.reshape(p * p, d_mlp)
    N = N - N.mean(dim=0, dtype=torch.float64).to(acts.dtype)  # [p*p, d_mlp] centred
    covariance = einsum(N, design, "pair neuron, pair term -> neuron term")  # [d_mlp, 9]
    neuron_norm = N.norm(dim=0)  # [d_mlp]
    scale = neuron_norm[:, None] * design.norm(dim=0)[None, :]  # [d_mlp, 9]
    valid = (design.norm(dim=0)[None, :] > 1e-6) & (neuron_norm[:, None] > DEAD_RMS * p)
    return torch.where(valid, covariance / scale.clamp_min(1e-30), torch.nan)


@dataclass
class ProbeResult:
    """One neuron at one input, explained by the nine terms of one frequency.

    ``terms`` columns: term, value (the term at (a, b)), coefficient (least squares over all
    inputs), contribution (= coefficient * value), correlation (Pearson over all inputs).
    ``fit`` = sum of contributions; ``residual`` = activation - fit.
    """

    neuron: int
    frequency: int
    a: int
    b: int
    activation: float
    terms: pd.DataFrame
    fit: float
    residual: float
    fve: float = float("nan")  # of this frequency's block for this neuron


def probe(acts: torch.Tensor, neuron: int, a: int, b: int, frequency: int | None = None) -> ProbeResult:
    """Explain neuron ``neuron`` at input (a, b) with the cos·cos / sin·sin terms of ``frequency``.

    ``frequency`` defaults to the neuron's own (argmax FVE). For a dead neuron with no frequency
    given, frequency 1 is used (every coefficient but the constant is then zero).
    """
    p, d_mlp = acts.shape[0], acts.shape[2]
    if not 0 <= neuron < d_mlp:
        raise ValueError(f"neuron {neuron} is outside 0..{d_mlp - 1}")
    if not (0 <= a < p and 0 <= b < p):
        raise ValueError(f"input ({a}, {b}) is outside 0..{p - 1}")
    column = acts[:, :, neuron : neuron + 1]  # [p, p, 1]
    stats = neuron_stats(column)
    if frequency is None:
        frequency = int(stats.frequency[0]) or 1
    _check_frequency(frequency, p)
    coefficients = probe_coefficients(column, frequency)[0]  # [9]
    values = term_values(p, frequency, torch.tensor([a]), torch.tensor([b]))[0]  # [9]
    contributions = coefficients * values
    correlations = term_correlations(column, frequency)[0]
    activation = float(column[a, b, 0])
    fit = float(contributions.sum())
    frame = pd.DataFrame({
        "term": list(TERMS),
        "value": values.tolist(),
        "coefficient": coefficients.tolist(),
        "contribution": contributions.tolist(),
        "correlation": correlations.double().tolist(),
    })
    return ProbeResult(neuron=neuron, frequency=frequency, a=a, b=b, activation=activation, terms=frame,
                       fit=fit, residual=activation - fit, fve=float(stats.fve[0, frequency - 1]))


def _check_frequency(frequency: int, p: int) -> None:
    if not 1 <= int(frequency) <= n_frequencies(p):
        raise ValueError(f"frequency {frequency} is outside 1..{n_frequencies(p)} for p={p}")
