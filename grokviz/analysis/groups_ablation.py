"""Irrep ablations of a groups run: remove (or keep only) chosen irreps at the logits, the
embedding or the MLP neurons, and the metrics after one. The group counterpart of
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
import torch.nn.functional as F

from grokviz.analysis.groups import restricted_and_excluded_logits
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
    trivial = known.index(
        next(irrep.label for irrep in irreps(group) if irrep.dim == 1 and (irrep.character == 1).all())
    )
    wanted = [known.index(label) for label in labels if known.index(label) != trivial]
    return np.isin(irrep_index, wanted)


def _trivial_rows(group: FiniteGroup) -> np.ndarray:
    basis, _, _ = fourier_basis(group)
    return np.abs(basis - basis[0, 0]).max(axis=1) < 1e-12  # [n] the constant function's row


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
    """acts [n², d_mlp] (row-major pairs) -> the same after the neurons-site projection."""
    group = as_group(group)
    _check(mode, MODES, "mode")
    n = group.order
    basis, _, _ = fourier_basis(group)
    B = torch.tensor(basis, dtype=torch.float64)  # [n, n] (a copy: the cached basis is read-only)
    chosen = torch.as_tensor(chosen_rows(group, labels))  # [n]
    trivial = torch.as_tensor(_trivial_rows(group))  # [n]
    # Block mask over (row of a, row of b): (ρ, trivial), (trivial, ρ) and (ρ, ρ) of one ρ each.
    _, _, irrep_index = fourier_basis(group)
    same = torch.as_tensor(irrep_index[:, None] == irrep_index[None, :])  # [n, n]
    mask = (
        (chosen[:, None] & trivial[None, :])
        | (trivial[:, None] & chosen[None, :])
        | (chosen[:, None] & chosen[None, :] & same)
    )
    grid = acts.double().reshape(n, n, -1)  # [a, b, neuron]
    transform = torch.einsum("ia,abk,jb->ijk", B, grid, B)  # [row a, row b, neuron]
    part = torch.einsum("ia,ijk,jb->abk", B, transform * mask[:, :, None], B)  # [a, b, neuron]
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


def split_metrics(group: FiniteGroup | str, logits: torch.Tensor, train_idx, test_idx) -> dict[str, float]:
    """Loss (float64 cross-entropy) and accuracy on the train and test pairs (indices a·n + b)."""
    group = as_group(group)
    labels = torch.as_tensor(group.table.reshape(-1).copy())  # [n²]
    out = {}
    for split, index in (("train", train_idx), ("test", test_idx)):
        index = torch.as_tensor(index, dtype=torch.long)
        chosen = logits[index].double()
        out[f"{split}_loss"] = float(F.cross_entropy(chosen, labels[index])) if len(index) else float("nan")
        out[f"{split}_accuracy"] = float((chosen.argmax(-1) == labels[index]).double().mean()) if len(index) else 0.0
    return out


def _check(value: str, allowed: tuple[str, ...], name: str) -> None:
    if value not in allowed:
        raise ValueError(f"{name}={value!r} is unknown; choose one of {allowed}")
