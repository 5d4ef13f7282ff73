"""Irrep ablations of a groups run: remove (or keep only) chosen irreps at the logits, the
embedding or the MLP neurons (their metrics: ``grokviz.analysis.groups.split_metrics``). The group counterpart of
grokviz.analysis.projections / ablation, with the same conventions (docs/groups.md):

* ``logits``: per class c, the logits as a function of (a, b) projected off (remove) or onto
  (keep) the functions (a, b) ↦ f(a·b), f in the span of the irreps' matrix entries; keep-only
  also keeps the per-class mean. On Z_p this is projections.project_logits (the ``"product"``
  span of grokviz.analysis.groups.restricted_and_excluded_logits).
* ``embedding``: W_E[:n] projected off / onto the irreps' basis functions of the token; keep-only
  also keeps the constant row (the mean embedding), so keep-all is the original. The '=' row is
  untouched. The model runs again.
* ``neurons``: each neuron's activations N [a, b] projected off / onto the blocks (ρ, trivial),
  (trivial, ρ), (ρ, ρ) of its 2-D group Fourier transform B N Bᵀ for the chosen ρ; each neuron's
  mean is kept in both modes. The projected activations replace ``blocks.0.mlp.hook_post`` and the
  rest of the model runs on them (exact for every architecture).

Pure: tensors in, tensors out; float64 where it is compared.
"""

from __future__ import annotations

import numpy as np
import torch

from grokviz.analysis.groups import restricted_and_excluded_logits, trivial_index
from grokviz.analysis.irreps import fourier_basis, irreps
from grokviz.core.architecture import REFERENCE, Architecture
from grokviz.core.fast_path import forward_all_pairs
from grokviz.core.groups import FiniteGroup, as_group
from grokviz.core.params import Params

SITES = ("logits", "embedding", "neurons")
MODES = ("remove", "keep")
NEURONS_HOOK = "blocks.0.mlp.hook_post"


def chosen_rows(group: FiniteGroup, labels: list[str]) -> np.ndarray:
    """[n] bool: the basis functions of the irreps named ``labels`` (the trivial one excluded: the
    mean is kept or left by each site's own rule). An unknown label is refused naming the choices."""
    known = [irrep.label for irrep in irreps(group)]
    bad = [label for label in labels if label not in known]
    if bad:
        raise ValueError(f"{', '.join(map(repr, bad))} not an irrep of {group.name}; choose from {known}")
    _, _, irrep_index = fourier_basis(group)
    wanted = {known.index(label) for label in labels} - {trivial_index(group)}
    return np.isin(irrep_index, sorted(wanted))


def _trivial_rows(group: FiniteGroup) -> np.ndarray:
    """[n] bool: the constant function's row of the basis."""
    _, _, irrep_index = fourier_basis(group)
    return irrep_index == trivial_index(group)


def project_embedding(group: FiniteGroup | str, params: Params, labels: list[str], mode: str = "remove") -> Params:
    """Params with W_E[:n] projected off (remove) or onto (keep, with the constant row) the irreps."""
    group = as_group(group)
    _check(mode, MODES, "mode")
    W_E = params["embed.W_E"]  # [n + 1, d_model]
    basis, _, _ = fourier_basis(group)
    rows = chosen_rows(group, labels)
    if mode == "keep":
        rows = rows | _trivial_rows(group)
    B = torch.tensor(basis[rows], dtype=W_E.dtype)  # [r, n]
    on_group = W_E[: group.order]  # [n, d_model]
    projected = B.T @ (B @ on_group)  # [n, d_model]
    new = W_E.clone()
    new[: group.order] = on_group - projected if mode == "remove" else projected
    return {**params, "embed.W_E": new}


def project_neurons(
    group: FiniteGroup | str, acts: torch.Tensor, labels: list[str], mode: str = "remove"
) -> torch.Tensor:
    """acts [n², k] (row-major pairs) -> the same after the neurons-site projection (its keep mode
    for one irrep is ``groups_probe.irrep_fit``, the probe's fit)."""
    group = as_group(group)
    _check(mode, MODES, "mode")
    n = group.order
    basis, _, irrep_index = fourier_basis(group)
    chosen, trivial = chosen_rows(group, labels), _trivial_rows(group)  # [n] each
    # Only the chosen irreps' rows and the constant row take part, so the transform C = B N Bᵀ is
    # taken on those rows alone (S5: 17 of 120 rows for one 4-dim irrep).
    rows = np.flatnonzero(chosen | trivial)
    chosen, trivial, irrep_index = chosen[rows], trivial[rows], irrep_index[rows]  # [r] each
    # Block mask over (row of a, row of b): (ρ, trivial), (trivial, ρ) and (ρ, ρ) of one ρ each.
    mask = (
        (chosen[:, None] & trivial[None, :])
        | (trivial[:, None] & chosen[None, :])
        | (chosen[:, None] & chosen[None, :] & (irrep_index[:, None] == irrep_index[None, :]))
    )
    B = torch.tensor(basis[rows], dtype=torch.float64)  # [r, n] (a copy: the cached basis is read-only)
    grid = acts.double().reshape(n, n, -1)  # [a, b, neuron]
    over_a = torch.einsum("ia,abk->ibk", B, grid)  # [row of a, b, neuron]
    transform = torch.einsum("ibk,jb->ijk", over_a, B) * torch.from_numpy(mask)[:, :, None]  # [row a, row b, neuron]
    part = torch.einsum("ia,ijk,jb->abk", B, transform, B)  # [a, b, neuron]
    mean = grid.mean(dim=(0, 1), keepdim=True)  # [1, 1, neuron]
    out = grid - part if mode == "remove" else mean + part
    return out.reshape(n * n, -1).to(acts.dtype)


def ablate_irreps(
    group: FiniteGroup | str,
    params: Params,
    arch: Architecture = REFERENCE,
    labels: list[str] = (),
    mode: str = "remove",
    site: str = "logits",
) -> torch.Tensor:
    """The all-pairs logits [n², n] after removing (or keeping only) the irreps ``labels`` at ``site``."""
    group = as_group(group)
    _check(site, SITES, "site")
    _check(mode, MODES, "mode")
    labels = list(labels)
    chosen_rows(group, labels)  # refuses unknown labels before any forward
    if site == "embedding":
        return forward_all_pairs(project_embedding(group, params, labels, mode), arch=arch)
    if site == "logits":
        logits = forward_all_pairs(params, arch=arch)
        restricted, excluded = restricted_and_excluded_logits(group, logits, labels, span="product")
        return torch.as_tensor(restricted if mode == "keep" else excluded, dtype=logits.dtype)
    cache: dict = {}
    forward_all_pairs(params, cache=cache, arch=arch)
    acts = project_neurons(group, cache[NEURONS_HOOK], labels, mode)
    return forward_all_pairs(params, arch=arch, hooks={NEURONS_HOOK: lambda _: acts})


def _check(value: str, allowed: tuple[str, ...], name: str) -> None:
    if value not in allowed:
        raise ValueError(f"{name}={value!r} is unknown; choose one of {allowed}")
