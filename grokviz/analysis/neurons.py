"""MLP neurons in the Fourier basis: FVE per frequency, neuron frequencies, the probe.

Owns (definitions in docs/analysis.md, "Neurons"):

* :func:`neuron_activations` — ``N[a, b, n]``, post-ReLU at position 2 for all pairs, of one
  block (``layer``; None: the last, see ``grokviz.analysis.layers``); :func:`layer_activations`
  — every block's, from one forward;
* :func:`neuron_stats` — per-neuron FVE of every frequency's 3x3 block, best frequency,
  clustered / dead flags; :func:`key_frequencies` — frequency -> number of clustered neurons;
  :func:`layers_key_frequencies` — the same over every block's neurons (counts added), and
  :func:`blocks_key_frequencies` from the blocks' activations;
* :func:`probe` — the cos·cos / sin·sin least-squares picture of one neuron at one input;
  :func:`term_correlations` — every neuron's Pearson correlation with the nine terms.

The Fourier blocks the FVEs are read from are ``grokviz.analysis.fourier``'s
(:func:`~grokviz.analysis.fourier.frequency_blocks`). All pure functions of tensors. ``N`` is always evaluated on every one of the p^2 pairs, also
for tasks whose dataset omits some (``div`` has no b = 0): the model is defined there, and the
Fourier basis is orthogonal only over the full grid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd
import torch
from einops import einsum, rearrange

from grokviz.analysis.fourier import blocks_of, frequency_blocks, n_frequencies
from grokviz.analysis.layers import neurons_hook, resolve_layer
from grokviz.core.architecture import REFERENCE, Architecture
from grokviz.core.fast_path import forward_all_pairs
from grokviz.core.params import Params, n_layers_of, p_of

# A neuron whose activations vary by less than this (RMS over all pairs) is dead: a ReLU that
# never fires (or always gives the same value) has no frequency to report.
DEAD_RMS = 1e-6

TERMS = (
    "const",
    "cos(wa)",
    "sin(wa)",
    "cos(wb)",
    "sin(wb)",
    "cos(wa)cos(wb)",
    "cos(wa)sin(wb)",
    "sin(wa)cos(wb)",
    "sin(wa)sin(wb)",
)


def neuron_activations(params: Params, arch: Architecture = REFERENCE, layer: int | None = None) -> torch.Tensor:
    """N [p (a), p (b), d_mlp]: post-activation MLP neurons of block ``layer`` (None: the last) at
    the '=' position for every pair."""
    layer = resolve_layer(params, layer)
    return layer_activations(params, arch)[layer]


def layer_activations(params: Params, arch: Architecture = REFERENCE, cache: dict | None = None) -> list[torch.Tensor]:
    """[N of block 0, N of block 1, ...], each [p (a), p (b), d_mlp] at the '=' position: one forward,
    or none when ``cache`` already holds the all-pairs forward of these params."""
    p = p_of(params)
    if cache is None:
        cache = {}
        forward_all_pairs(params, cache, arch)
    posts = [cache[neurons_hook(layer)] for layer in range(n_layers_of(params))]  # each [p*p, d_mlp]
    return [rearrange(post, "(a b) neuron -> a b neuron", a=p) for post in posts]


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
        return pd.DataFrame(
            {
                "neuron": range(len(self.frequency)),
                "frequency": self.frequency.tolist(),
                "best_fve": self.best_fve.tolist(),
                "clustered": self.clustered.tolist(),
                "dead": self.dead.tolist(),
            }
        )


def neuron_stats(
    acts: torch.Tensor,
    threshold: float = 0.85,
    coefficients: torch.Tensor | None = None,
    blocks: torch.Tensor | None = None,
) -> NeuronStats:
    """acts N [p, p, d_mlp] -> :class:`NeuronStats` (FVE per frequency, neuron frequency, ...).

    FVE_k = energy of frequency k's 3x3 block of the centred transform / total centred energy.
    Centring over (a, b) only changes F[0, 0] (every other basis row sums to zero), so it is
    done by leaving that entry out. ``blocks`` (from :func:`frequency_blocks`, e.g. a cached
    ``baseline.Baseline.blocks``) or ``coefficients`` (a full ``fourier_2d(acts)``) skip
    recomputing them.
    """
    p = acts.shape[0]
    if blocks is None:
        blocks = blocks_of(coefficients) if coefficients is not None else frequency_blocks(acts)
    energy = blocks.double().pow(2)  # [K, 3, 3, d_mlp]
    energy[:, 0, 0] = 0.0  # centre over (a, b)
    flat = acts.reshape(p * p, -1)
    # Total centred energy (Parseval: = sum of F^2 without F[0, 0]). Centred before squaring:
    # sum(N^2) - sum(N)^2 / p^2 would cancel catastrophically for a neuron with a large mean.
    # fp32 reductions (pairwise sums, ~1e-7 relative); torch's float64-accumulating ones are ~20x slower.
    centred = flat - flat.mean(dim=0)
    total = centred.pow(2).sum(dim=0).double()  # [d_mlp]
    dead = total <= (DEAD_RMS**2) * p * p
    # Blocks are disjoint but for the (dropped) F[0, 0], so FVEs sum to at most 1; the clamp only
    # absorbs rounding (~1e-7) on neurons that are a single frequency.
    fve = (energy.sum(dim=(1, 2)) / total.clamp_min(1e-300)).T.clamp(0.0, 1.0)  # [d_mlp, K]
    fve[dead] = 0.0
    best_fve, best = fve.max(dim=1)
    frequency = torch.where(dead, torch.zeros_like(best), best + 1)
    return NeuronStats(
        fve=fve.float(),
        frequency=frequency,
        best_fve=best_fve.float(),
        clustered=(best_fve >= threshold) & ~dead,
        dead=dead,
        threshold=threshold,
    )


def key_frequencies(stats: NeuronStats, min_neurons: int = 1) -> dict[int, int]:
    """Frequency -> number of clustered neurons with it, ascending by frequency.

    ``min_neurons`` drops frequencies held by fewer neurons (default 1: every one, as defined).
    """
    counts = torch.bincount(stats.frequency[stats.clustered], minlength=1).tolist()
    return {k: n for k, n in enumerate(counts) if k >= 1 and n >= max(min_neurons, 1)}


def layers_key_frequencies(stats: list[NeuronStats], min_neurons: int = 1) -> dict[int, int]:
    """Frequency -> number of clustered neurons with it in any block (each block's counts added).

    The key frequencies of a model with several blocks are those of all its neurons: a frequency
    counts once a neuron of any block is clustered on it. One block: :func:`key_frequencies`.
    """
    total: dict[int, int] = {}
    for one in stats:
        for k, n in key_frequencies(one).items():
            total[k] = total.get(k, 0) + n
    return {k: n for k, n in sorted(total.items()) if n >= max(min_neurons, 1)}


def blocks_key_frequencies(layer_acts: list[torch.Tensor], group) -> dict[int, int]:
    """Frequency -> clustered neurons over blocks' activations (each [p, p, d_mlp], as
    :func:`layer_activations` gives them), read in ``group``'s order (``Group.on_group``)."""
    return layers_key_frequencies([neuron_stats(group.on_group(acts)) for acts in layer_acts])


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
    norms = design.pow(2).sum(dim=0)  # [9]; the sine terms of k = p/2 (even p) are zero everywhere
    return torch.where(norms > 1e-9, projections / norms.clamp_min(1e-9), torch.zeros_like(projections))


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
    frame = pd.DataFrame(
        {
            "term": list(TERMS),
            "value": values.tolist(),
            "coefficient": coefficients.tolist(),
            "contribution": contributions.tolist(),
            "correlation": correlations.double().tolist(),
        }
    )
    return ProbeResult(
        neuron=neuron,
        frequency=frequency,
        a=a,
        b=b,
        activation=activation,
        terms=frame,
        fit=fit,
        residual=activation - fit,
        fve=float(stats.fve[0, frequency - 1]),
    )


def _check_frequency(frequency: int, p: int) -> None:
    if not 1 <= int(frequency) <= n_frequencies(p):
        raise ValueError(f"frequency {frequency} is outside 1..{n_frequencies(p)} for p={p}")
