"""The neuron probe of a groups run: each MLP neuron's activation at (a, b) against its fit by one irrep.

The group counterpart of the modular probe (``grokviz.analysis.neurons``: a neuron read as
cos·cos / sin·sin terms of its frequency). A neuron's activations over all pairs form a grid
N [a, b]; its 2-D group Fourier transform is C = B N Bᵀ with B the orthonormal basis of
``grokviz.analysis.irreps.fourier_basis`` (rows: the matrix entries of the irreps). The *fit by ρ*
keeps the mean of N and the blocks (ρ, trivial), (trivial, ρ) and (ρ, ρ) of C:

    fit(a, b) = mean(N) + Σ c_ij,kl ρ_ij(a) ρ_kl(b) + Σ c_ij ρ_ij(a) + Σ c_kl ρ_kl(b)

(the functions ρ_ij(a), ρ_kl(b) and their products; coefficients by least squares, which for an
orthonormal basis is the projection). It is the orthogonal projection of N onto those functions, so
the R² of the fit over all pairs, 1 - |N - fit|² / |N - mean|², is exactly the neuron's FVE for ρ
in ``grokviz.analysis.groups.neuron_irreps``, and the fit is what
``grokviz.analysis.groups_ablation.project_neurons(..., mode="keep")`` leaves of the neuron.

:func:`character_readout` reads one pair's logits over the answers c through the irreps'
characters of a·b·c⁻¹ (the Prediction & attention tab).

Pure: a :class:`~grokviz.core.groups.FiniteGroup` and arrays (numpy or CPU torch) in, numpy
arrays or a small pandas frame out; float64 throughout. Pairs are row-major: pair ``i`` is
(a, b) = (i // order, i % order).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from grokviz.analysis.groups import as_float64, trivial_index
from grokviz.analysis.groups_ablation import project_neurons
from grokviz.analysis.irreps import irreps
from grokviz.core.groups import FiniteGroup, as_group

__all__ = ["irrep_fit", "neuron_fit", "r_squared"]


def irrep_fit(group: FiniteGroup | str, activations, label: str) -> np.ndarray:
    """activations [order², k] (k neurons, pairs row-major) -> their fits by the irrep ``label``, [order², k].

    The fit of each column: its mean plus its projection onto the functions ρ_ij(a), ρ_kl(b) and
    ρ_ij(a) ρ_kl(b) (module docstring). The trivial irrep's fit is the mean alone.
    """
    group = as_group(group)
    n = group.order
    acts = as_float64(activations)
    if acts.ndim == 1:
        acts = acts[:, None]
    if acts.shape[0] != n * n:
        raise ValueError(f"activations of {group.name} must be [{n * n}, neurons], got {list(acts.shape)}")
    # The neurons-site ablation's keep mode for this one irrep: the projection the module docstring describes.
    return project_neurons(group, torch.from_numpy(np.ascontiguousarray(acts)), [label], "keep").numpy()


def r_squared(actual, fit) -> float:
    """1 - |actual - fit|² / |actual - mean(actual)|² (0 for a constant ``actual``)."""
    actual, fit = as_float64(actual).reshape(-1), as_float64(fit).reshape(-1)
    total = float(((actual - actual.mean()) ** 2).sum())
    if total <= 0:
        return 0.0
    return 1.0 - float(((actual - fit) ** 2).sum()) / total


def neuron_fit(
    group: FiniteGroup | str,
    activations,
    neurons: Mapping[int, str] | Sequence[tuple[int, str]],
    a: int,
    b: int,
) -> pd.DataFrame:
    """Each neuron's activation at (a, b) and its fit there by its irrep.

    ``activations`` [order², d_mlp] (``blocks.0.mlp.hook_post`` of all pairs); ``neurons``: neuron
    index -> irrep label (e.g. each clustered neuron's irrep from ``neuron_irreps``), in the order
    the rows come out. Returns a frame (neuron, irrep, actual, fit, residual, r2): ``r2`` is the
    fit's R² over all pairs (the neuron's FVE for that irrep).
    """
    group = as_group(group)
    n = group.order
    if not (0 <= a < n and 0 <= b < n):
        raise ValueError(f"(a, b) = ({a}, {b}) is not a pair of {group.name}: both must be in 0..{n - 1}")
    pairs = list(neurons.items()) if isinstance(neurons, Mapping) else [(int(i), str(r)) for i, r in neurons]
    acts = as_float64(activations)
    if acts.ndim != 2 or acts.shape[0] != n * n:
        raise ValueError(f"activations of {group.name} must be [{n * n}, d_mlp], got {list(acts.shape)}")
    index = a * n + b
    rows = {}
    for label in dict.fromkeys(label for _, label in pairs):  # one transform per irrep, its neurons together
        members = [neuron for neuron, irrep in pairs if irrep == label]
        columns = acts[:, members]  # [n², m]
        fits = irrep_fit(group, columns, label)  # [n², m]
        for j, neuron in enumerate(members):
            actual, fitted = float(columns[index, j]), float(fits[index, j])
            rows[(neuron, label)] = {
                "neuron": int(neuron),
                "irrep": label,
                "actual": actual,
                "fit": fitted,
                "residual": actual - fitted,
                "r2": r_squared(columns[:, j], fits[:, j]),
            }
    ordered = [rows[(int(neuron), label)] for neuron, label in pairs]
    return pd.DataFrame(ordered, columns=["neuron", "irrep", "actual", "fit", "residual", "r2"])


@dataclass(frozen=True)
class Readout:
    """One pair's logits read out through characters (:func:`character_readout`)."""

    logits: np.ndarray  # [n (c)]
    answer: int  # argmax of the logits
    label: int  # the right answer, a·b
    mean: float  # the mean logit over c
    coefficients: dict[str, float]  # irrep -> α_ρ
    contributions: dict[str, float]  # irrep -> α_ρ χ_ρ(e): its part of the right answer's logit
    components: dict[str, np.ndarray]  # irrep -> α_ρ χ_ρ(a·b·c⁻¹) over c [n]


def character_readout(group: FiniteGroup | str, logits_row, a: int, b: int) -> Readout:
    """The logits of the pair (a, b) over the answers c [n], decomposed along each irrep's character
    of a·b·c⁻¹ (the group's version of the explorer's waves): L(c) = mean + Σ_ρ α_ρ χ_ρ(a·b·c⁻¹) +
    the rest. The regressors are orthogonal over c (Σ_c χ_ρ(s c⁻¹) χ_σ(s c⁻¹) = Σ_g χ_ρ(g) χ_σ(g)),
    so each α_ρ is a projection. Every χ_ρ peaks at c = a·b (χ_ρ(e) = d_ρ), so irreps with α_ρ > 0
    add up there: the constructive interference of the modular model's frequencies."""
    group = as_group(group)
    row = as_float64(logits_row).reshape(-1)  # [n]
    s = int(group.table[a, b])
    g = group.table[s, group.inverse]  # [n] a·b·c⁻¹ for every c
    mean = float(row.mean())
    coefficients, contributions, components = {}, {}, {}
    for index, irrep in enumerate(irreps(group)):
        if index == trivial_index(group):
            continue  # the constant: the mean
        regressor = irrep.character[g]  # [n]
        alpha = float((row - mean) @ regressor / (regressor @ regressor))
        coefficients[irrep.label] = alpha
        contributions[irrep.label] = alpha * float(irrep.character[group.identity])
        components[irrep.label] = alpha * regressor
    return Readout(row, int(row.argmax()), s, mean, coefficients, contributions, components)
