"""The grokking analysis of the "composition in a group" tasks, in the words of the group's irreps.

The modular analysis (grokviz.analysis.fourier, neurons, progress) speaks of frequencies of Z_p;
here the same measures speak of the real irreps of grokviz.analysis.irreps, so that on Z_p
("freq k" is frequency k) they give the modular numbers wherever they are defined the same way.
Pure functions of a :class:`~grokviz.core.groups.FiniteGroup` and arrays (numpy or CPU torch);
computed in float64. Pairs are row-major: pair ``i`` is (a, b) = (i // order, i % order), its
answer ``table[a, b]``; ``n = order``.

* :func:`embedding_spectrum` / :func:`unembedding_spectrum` — the fraction of the squared norm of
  ``W_E[:n]`` (rows: functions of the token) or ``W_U.T`` (rows: functions of the answer c) in
  each irrep's span (nothing centred: the trivial irrep holds the mean). On Z_p, "freq k" is
  ``fourier.embed_spectrum(params)[k-1]² / |W_E[:p]|²``.
* :func:`embedding_gini` — progress.gini of the non-trivial irreps' norms (square roots of the
  spectrum): on Z_p the modular ``gini_embed``. No weighting by dimension: an irrep of dimension d
  spans d² functions, so a random embedding already puts more of its norm in the larger irreps.
* :func:`character_fve` — of the logits L [n², n (c)], centred per pair, the fraction of variance
  along r_ρ(a, b, c) = χ_ρ(a·b·c⁻¹), i.e. <L, r_ρ>² / (|r_ρ|² |L|²). Over the full (a, b, c) grid
  the r_ρ of distinct irreps are orthogonal (Schur), so the FVEs add up to at most 1. For a
  complex-type irrep χ_ρ is the trace of the real 2-dim rep, χ + χ̄ (on Z_p: 2 cos(w_k(a+b-c))):
  only the cosine, the direction that peaks at the right answer, not sin(w_k(a+b-c)). The trivial
  irrep's regressor is constant in c, so 0 after centring: reported as 0.
* :func:`neuron_irreps` — per neuron N [n (a), n (b)], centred, C = B N Bᵀ with the orthonormal
  group Fourier basis B; the energy of ρ is the sum of C² over the blocks (ρ, trivial),
  (trivial, ρ), (ρ, ρ); FVE = energy / total; the neuron's irrep is the non-trivial ρ of largest
  FVE. On Z_p these are the modular neuron FVEs (the 3x3 block of frequency k minus (0, 0)).
  Dead neurons (RMS < neurons.DEAD_RMS) get irrep -1 and FVE 0. :func:`clustered_fraction` and
  :func:`neuron_counts` count the neurons with FVE >= threshold (0.85, as the modular one).
* :func:`key_irreps` — the irreps held by at least ``min_neurons`` clustered neurons (default
  max(2, ceil(1% of d_mlp)); the modular key frequencies take every frequency with one), most
  neurons first; when no irrep qualifies, those with character FVE >= 5%, largest first.
* :func:`restricted_and_excluded_logits` / :func:`restricted_and_excluded_loss` — with P the
  projection of L onto the key irreps' span and μ [n] the mean of L over pairs per class c:
  restricted = μ + P L, excluded = L - P L; cross-entropy in float64. Two spans (``span``):
  "character" (the default): the functions (a, b, c) ↦ f(a·b·c⁻¹), f in the span of ρ's matrix
  entries (d² functions, 2 for complex type; on Z_p cos and sin of w_k(a+b-c)). "product": per
  class c, the functions (a, b) ↦ f(a·b) with f in the same span: on Z_p this is
  projections.project_logits (cos/sin(w_k(a+b)) per output), i.e. progress.py's restricted and
  excluded loss, equal to it (tested). The character span lies inside the product span (ρ(s c⁻¹) =
  ρ(s)ρ(c)ᵀ); neither keeps everything with all irreps kept: "product" drops what depends on (a, b)
  other than through a·b, "character" also what depends on c other than through a·b·c⁻¹ or the mean.
* :func:`summarise_group_checkpoint` — all of it for one checkpoint, as a JSON-able dict.

Memory is O(n³) (the logits of all pairs) plus O(n² d_mlp): fine to S5 and D100 (order 200), not
meant for S6 (order 720: 518,400 pairs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from grokviz.analysis.irreps import fourier_basis, irrep_energy, irreps
from grokviz.analysis.neurons import DEAD_RMS
from grokviz.analysis.progress import gini
from grokviz.core.architecture import REFERENCE, Architecture
from grokviz.core.fast_path import forward_all_pairs
from grokviz.core.forward import unembed_matrix
from grokviz.core.groups import FiniteGroup, as_group
from grokviz.core.params import Params

SPANS = ("character", "product")
FALLBACK_CHARACTER_FVE = 0.05  # key_irreps' fallback: character FVE at least this

__all__ = [
    "SPANS",
    "NeuronIrreps",
    "character_fve",
    "clustered_fraction",
    "embedding_gini",
    "embedding_spectrum",
    "gini",
    "key_irreps",
    "neuron_counts",
    "neuron_irreps",
    "restricted_and_excluded_logits",
    "restricted_and_excluded_loss",
    "split_metrics",
    "summarise_group_checkpoint",
    "unembedding_spectrum",
]


def as_float64(values) -> np.ndarray:
    """A float64 numpy copy of ``values`` (a numpy array or a CPU torch tensor)."""
    if isinstance(values, torch.Tensor):
        return values.detach().cpu().double().numpy()
    return np.asarray(values, dtype=np.float64)


def trivial_index(group: FiniteGroup) -> int:
    """The index in :func:`~grokviz.analysis.irreps.irreps` of the trivial irrep."""
    return next(i for i, irrep in enumerate(irreps(group)) if irrep.dim == 1 and np.allclose(irrep.character, 1))


# --- spectra of the embedding and unembedding ---------------------------------------------------


def embedding_spectrum(group: FiniteGroup | str, W_E) -> dict[str, float]:
    """W_E [n + 1 (token, '=' last), d_model] -> {irrep label: fraction of |W_E[:n]|² in its span}."""
    group = as_group(group)
    return irrep_energy(group, as_float64(W_E)[: group.order])


def unembedding_spectrum(group: FiniteGroup | str, W_U) -> dict[str, float]:
    """W_U [d_model, n (answer c)] -> {irrep label: fraction of |W_U|² in its span, as functions of c}."""
    return irrep_energy(as_group(group), as_float64(W_U).T)


def embedding_gini(group: FiniteGroup | str, W_E) -> float:
    """Gini of the non-trivial irreps' norms of W_E[:n] (sqrt of the spectrum; module docstring)."""
    group = as_group(group)
    spectrum = embedding_spectrum(group, W_E)
    trivial = irreps(group)[trivial_index(group)].label
    return gini([math.sqrt(share) for label, share in spectrum.items() if label != trivial])


# --- the logits as functions of (a, b, c) -------------------------------------------------------


def _logits(group: FiniteGroup, logits) -> np.ndarray:
    out = as_float64(logits)
    if out.shape != (group.order**2, group.order):
        raise ValueError(f"logits of {group.name} must be [{group.order**2}, {group.order}], got {list(out.shape)}")
    return out


def _product_mean(group: FiniteGroup, logits: np.ndarray) -> np.ndarray:
    """logits [n², n (c)] -> A [n (s), n (c)]: the mean over the n pairs with a·b = s."""
    n = group.order
    by_product = np.argsort(group.table.reshape(-1), kind="stable")  # [n²]: the pairs of s = 0 first, ...
    return logits[by_product].reshape(n, n, n).mean(axis=1)


def _character_mean(group: FiniteGroup, product_mean: np.ndarray) -> np.ndarray:
    """A [n (s), n (c)] -> M [n (g)]: the mean of L over the n³ / n cells with a·b·c⁻¹ = g (s = g·c)."""
    return product_mean[group.table, np.arange(group.order)].mean(axis=1)


def character_fve(group: FiniteGroup | str, logits) -> dict[str, float]:
    """logits [n², n] -> {irrep label: FVE of the regressor χ_ρ(a·b·c⁻¹)} (module docstring).

    <L, r_ρ> = n² Σ_g M[g] χ_ρ(g) with M the mean of L over each fibre of g = a·b·c⁻¹ (every g
    has n² cells), and |r_ρ|² = n² Σ_g χ_ρ(g)² (n³ for real type, 2 n³ for complex type).
    """
    group = as_group(group)
    L = _logits(group, logits)
    n = group.order
    total = float(((L - L.mean(axis=1, keepdims=True)) ** 2).sum())  # |L|² centred per pair
    M = _character_mean(group, _product_mean(group, L))  # [n (g)]
    trivial = trivial_index(group)
    out = {}
    for index, irrep in enumerate(irreps(group)):
        chi = irrep.character  # [n]
        inner, norm = n * n * float(M @ chi), n * n * float(chi @ chi)
        out[irrep.label] = 0.0 if index == trivial or total <= 0 else inner * inner / (norm * total)
    return out


def _check_irreps(group: FiniteGroup, labels) -> list[int]:
    known = [irrep.label for irrep in irreps(group)]
    bad = [label for label in labels if label not in known]
    if bad:
        raise ValueError(f"{bad} are not irreps of {group.name}; choose from {known}")
    return sorted({known.index(label) for label in labels} - {trivial_index(group)})


def restricted_and_excluded_logits(
    group: FiniteGroup | str, logits, key: list[str], span: str = "character"
) -> tuple[np.ndarray, np.ndarray]:
    """logits [n², n] -> (restricted, excluded) [n², n] float64: μ + P L and L - P L (module docstring).

    ``key``: irrep labels (the trivial one, if named, adds nothing: μ is kept anyway). Both spans
    are functions of a·b (and c), so P L is read back from a projection on G, as
    projections.project_logits does on Z_p: O(n³).
    """
    group = as_group(group)
    if span not in SPANS:
        raise ValueError(f"span={span!r} is unknown; choose one of {SPANS}")
    L = _logits(group, logits)
    basis, _, irrep_index = fourier_basis(group)
    rows = basis[np.isin(irrep_index, _check_irreps(group, key))]  # [r, n]: the key irreps' basis functions
    products = group.table.reshape(-1)  # [n²] s = a·b of each pair
    A = _product_mean(group, L)  # [n (s), n (c)]
    if span == "product":
        projected = (rows.T @ (rows @ A))[products]  # per class, the key part of the function of s
    else:
        on_g = rows.T @ (rows @ _character_mean(group, A))  # [n (g)] the key part of the function of g
        projected = on_g[group.table[:, group.inverse]][products]  # at g = s·c⁻¹, [n², n]
    return projected + L.mean(axis=0, keepdims=True), L - projected


def _cross_entropy(group: FiniteGroup, logits: np.ndarray, pairs=None) -> float:
    labels = torch.from_numpy(group.table.reshape(-1).copy())
    chosen = torch.as_tensor(logits)
    if pairs is not None:
        index = torch.as_tensor(np.asarray(pairs, dtype=np.int64))
        chosen, labels = chosen[index], labels[index]
    if len(labels) == 0:
        return float("nan")
    return float(F.cross_entropy(chosen.double(), labels))


def restricted_and_excluded_loss(
    group: FiniteGroup | str, logits, key: list[str], restricted_idx=None, excluded_idx=None, span: str = "character"
) -> tuple[float, float]:
    """(restricted loss, excluded loss): mean cross-entropy in float64 of the restricted logits on the
    pairs ``restricted_idx`` and of the excluded logits on ``excluded_idx`` (None: every pair; indices
    a·n + b). progress.py takes the restricted loss on all pairs and the excluded loss on the train pairs."""
    group = as_group(group)
    restricted, excluded = restricted_and_excluded_logits(group, logits, key, span)
    return _cross_entropy(group, restricted, restricted_idx), _cross_entropy(group, excluded, excluded_idx)


def split_metrics(group: FiniteGroup | str, logits, train_idx, test_idx) -> dict[str, float]:
    """Loss (float64 cross-entropy) and accuracy of ``logits`` [n², n] on the train and test pairs
    (indices a·n + b; None: no pairs); NaN for an empty split, as ``baseline.evaluate`` gives."""
    group = as_group(group)
    L = _logits(group, logits)
    labels = group.table.reshape(-1)  # [n²]
    out = {}
    for split, index in (("train", train_idx), ("test", test_idx)):
        index = np.asarray([] if index is None else index, dtype=np.int64)
        out[f"{split}_loss"] = _cross_entropy(group, L, index)
        out[f"{split}_accuracy"] = float((L[index].argmax(axis=1) == labels[index]).mean()) if len(index) else math.nan
    return out


# --- neurons ----------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class NeuronIrreps:
    """Each MLP neuron's irrep (module docstring); arrays over neurons, irreps in irreps() order."""

    irrep: np.ndarray  # [d_mlp] int64: index into irreps()/labels of the best non-trivial irrep; -1 if dead
    fve: np.ndarray  # [d_mlp] float64: that irrep's FVE (0 if dead)
    labels: list[str]  # [n_irreps] the irreps' labels
    fves: np.ndarray  # [d_mlp, n_irreps] float64: every irrep's FVE (0 for the trivial one and dead neurons)
    dead: np.ndarray  # [d_mlp] bool: RMS over the pairs below neurons.DEAD_RMS

    def clustered(self, threshold: float = 0.85) -> np.ndarray:
        """[d_mlp] bool: FVE >= threshold and not dead."""
        return (self.fve >= threshold) & ~self.dead


def neuron_irreps(group: FiniteGroup | str, activations) -> NeuronIrreps:
    """activations [n², d_mlp] (pairs row-major, e.g. ``blocks.0.mlp.hook_post``) -> :class:`NeuronIrreps`."""
    group = as_group(group)
    n = group.order
    acts = as_float64(activations)
    if acts.ndim != 2 or acts.shape[0] != n * n:
        raise ValueError(f"activations of {group.name} must be [{n * n}, d_mlp], got {list(acts.shape)}")
    d_mlp = acts.shape[1]
    # In torch: numpy's stacked matmul (basis @ [n, n, d_mlp]) is ~10x slower than one GEMM.
    centred = torch.from_numpy(acts - acts.mean(axis=0))  # [n², d_mlp] float64
    total = centred.pow(2).sum(dim=0).numpy()  # [d_mlp]
    dead = total <= DEAD_RMS**2 * n * n
    basis, _, irrep_index = fourier_basis(group)  # [n (row), n (token)]
    B = torch.from_numpy(basis.copy())
    over_a = (B @ centred.reshape(n, n * d_mlp)).reshape(n, n, d_mlp)  # [row of a, b, neuron]
    energy = torch.matmul(B, over_a).pow(2)  # [row of a, row of b, neuron]: C²
    n_irreps = int(irrep_index.max()) + 1
    one_hot = torch.from_numpy((irrep_index[None, :] == np.arange(n_irreps)[:, None]).astype(np.float64))
    by_rows = (one_hot @ energy.reshape(n, n * d_mlp)).reshape(n_irreps, n, d_mlp)  # [irrep of a, row of b, neuron]
    blocks = torch.matmul(one_hot, by_rows).numpy()  # [irrep of a, irrep of b, neuron]
    t = trivial_index(group)
    diagonal = blocks[np.arange(n_irreps), np.arange(n_irreps)]  # [n_irreps, d_mlp]: (ρ, ρ)
    per_irrep = blocks[:, t] + blocks[t, :] + diagonal  # [n_irreps, d_mlp]
    fves = np.clip(per_irrep / np.maximum(total, 1e-300), 0.0, 1.0).T  # [d_mlp, n_irreps]
    fves[:, t] = 0.0
    fves[dead] = 0.0
    candidates = fves.copy()
    candidates[:, t] = -np.inf
    best = candidates.argmax(axis=1)  # [d_mlp]
    return NeuronIrreps(
        irrep=np.where(dead, -1, best).astype(np.int64),
        fve=np.where(dead, 0.0, fves[np.arange(d_mlp), best]),
        labels=[irrep.label for irrep in irreps(group)],
        fves=fves,
        dead=dead,
    )


def clustered_fraction(neurons: NeuronIrreps, threshold: float = 0.85) -> float:
    """Clustered neurons (FVE >= threshold, not dead) over all d_mlp neurons."""
    return float(neurons.clustered(threshold).mean()) if len(neurons.fve) else 0.0


def neuron_counts(neurons: NeuronIrreps, threshold: float = 0.85) -> dict[str, int]:
    """{irrep label: number of clustered neurons on it}, irreps with none left out, in irreps() order."""
    counts = np.bincount(neurons.irrep[neurons.clustered(threshold)], minlength=len(neurons.labels))
    return {label: int(count) for label, count in zip(neurons.labels, counts) if count > 0}


def key_irreps(
    neurons: NeuronIrreps,
    character_fves: dict[str, float] | None = None,
    threshold: float = 0.85,
    min_neurons: int | None = None,
) -> list[str]:
    """The key irreps of a checkpoint, most important first.

    The irreps with at least ``min_neurons`` clustered neurons (FVE >= ``threshold``; default
    ``min_neurons`` = max(2, ceil(d_mlp / 100))), by number of neurons (ties: irreps() order).
    When none has that many: the irreps with ``character_fves`` (of :func:`character_fve`) at least
    ``FALLBACK_CHARACTER_FVE`` (5%), by FVE; empty without them.
    """
    if min_neurons is None:
        min_neurons = max(2, math.ceil(len(neurons.fve) / 100))
    counts = neuron_counts(neurons, threshold)
    held = [label for label in counts if counts[label] >= min_neurons]
    if held:
        return sorted(held, key=lambda label: -counts[label])  # stable: ties keep irreps() order
    fallback = [label for label, fve in (character_fves or {}).items() if fve >= FALLBACK_CHARACTER_FVE]
    return sorted(fallback, key=lambda label: -character_fves[label])


# --- one checkpoint -----------------------------------------------------------------------------


def summarise_group_checkpoint(
    group: FiniteGroup | str,
    params: Params,
    arch: Architecture = REFERENCE,
    train_idx=None,
    test_idx=None,
    threshold: float = 0.85,
) -> dict:
    """One checkpoint of a group task as a JSON-able dict (one all-pairs forward).

    ``train_idx``, ``test_idx``: pair indices a·n + b (None: no pairs; its loss and accuracy are NaN,
    as baseline.evaluate gives for an empty split). The restricted loss is taken on all pairs and
    the excluded loss on the train pairs, as in progress.py; ``restricted_loss`` / ``excluded_loss``
    use the character span, ``*_product`` the product span (module docstring).
    """
    group = as_group(group)
    n = group.order
    cache: dict = {}
    logits = _logits(group, forward_all_pairs(params, cache, arch))  # [n², n]
    train = np.asarray([] if train_idx is None else train_idx, dtype=np.int64)
    splits = split_metrics(group, logits, train, test_idx)
    fves = character_fve(group, logits)
    neurons = neuron_irreps(group, cache["blocks.0.mlp.hook_post"])
    key = key_irreps(neurons, fves, threshold)
    losses = {}
    for span, suffix in (("character", ""), ("product", "_product")):
        restricted, excluded = restricted_and_excluded_loss(group, logits, key, None, train, span)
        losses |= {f"restricted_loss{suffix}": restricted, f"excluded_loss{suffix}": excluded}
    return {
        "group": group.name,
        "order": n,
        **{name: splits[name] for name in ("train_loss", "test_loss", "train_accuracy", "test_accuracy")},
        "irrep_dims": {irrep.label: irrep.dim for irrep in irreps(group)},
        "key_irreps": key,
        "character_fve": fves,
        "embedding_spectrum": embedding_spectrum(group, params["embed.W_E"]),
        "unembedding_spectrum": unembedding_spectrum(group, unembed_matrix(params)),
        "neuron_irrep_counts": neuron_counts(neurons, threshold),
        "fraction_neurons_clustered": clustered_fraction(neurons, threshold),
        "n_neurons": len(neurons.fve),
        "n_dead_neurons": int(neurons.dead.sum()),
        "clustered_threshold": threshold,
        **losses,
        "gini_embed": embedding_gini(group, params["embed.W_E"]),
    }
