"""The frequency projections of an ablation at each of its three sites, and the logits after one.

Owns (definitions in docs/analysis.md, "Frequency ablation"): the sites and modes, and

* :func:`project_logits` — ``logits``: the all-pairs logits projected on/off the
  cos/sin(w_k(a+b)) directions (:func:`residue_sign` reads a-b for subtraction);
* :func:`project_embedding` — ``embedding``: W_E[:p] projected, for the model to run again;
* :func:`project_neurons_logits`, :func:`project_neurons_forward` — ``neurons``: each neuron's
  activations projected on/off the frequencies' 3x3 blocks (:func:`projected_activations`),
  continued through the rest of the model linearly through ``W_L = W_out W_U`` where that is
  exact (the last block's neurons, no LayerNorm), else by the model's own forward with the
  projected activations put in at ``blocks.{layer}.mlp.hook_post`` (the baseline's block; only
  the '=' position's activations change);
* :func:`ablated_logits` — the all-pairs logits after the ablation at a site, from a
  :class:`~grokviz.analysis.baseline.Baseline`.

Speed (p = 113, one CPU core; scripts/bench_analysis.py): from a baseline, ~10 ms at the logits
and neurons sites (the neurons site is linear in the activations, so it needs only the chosen
blocks), and one more all-pairs forward at the embedding site.

For subtraction the directions are cos/sin(w_k(a-b)) (detected from the dataset's labels);
for every other task a+b is used, which is only meaningful for ``add`` (callers label it).

With a discrete-log :class:`~grokviz.analysis.group.Group` (``mul``, ``div``; ``Baseline.group``)
every site works on the (p-1)^2 pairs with non-zero operands, re-indexed by log, with the
directions cos/sin(w_k(log a ± log b)), w_k = 2 pi k / (p-1): the logits and neurons of pairs
containing 0 are left as they are, and token 0's embedding row too.
"""

from __future__ import annotations

import torch
from einops import einsum, rearrange

from grokviz.analysis.baseline import Baseline
from grokviz.analysis.fourier import block_index, check_frequencies, fourier_basis, frequency_rows
from grokviz.analysis.group import Group
from grokviz.analysis.layers import neurons_hook
from grokviz.core.fast_path import all_pairs, forward_all_pairs
from grokviz.core.params import Params
from grokviz.core.tasks import Dataset

SITES = ("logits", "embedding", "neurons")
MODES = ("remove", "keep")


def residue_sign(dataset: Dataset) -> int:
    """-1 when the dataset's labels are (a - b) mod p (subtraction), else +1 (a + b)."""
    if torch.equal(dataset.labels, (dataset.a - dataset.b) % dataset.p):
        return -1
    return 1


def project_logits(
    logits: torch.Tensor, frequencies, mode: str = "remove", sign: int = 1, group: Group | None = None
) -> torch.Tensor:
    """The logits-site ablation, ANALYSIS.md's formulas, in O(p^3) instead of O(p^4).

    logits [p*p, p]. The directions c_k, s_k depend on (a, b) only through s = (a + sign*b) mod p,
    and every residue s occurs p times, so projecting on them is: average the logits over the
    pairs of each residue (M [p (s), p (class)]), project M on the chosen 1-D frequencies
    (B_S^T B_S M), and read the result back at each pair's residue.
    Keep-only adds back the per-class mean of L - L' (= the per-class mean of L, as the
    projected part has mean zero over pairs).
    A discrete-log ``group`` does the same on its n*n pairs (s = log a + sign log b mod n, the
    basis of Z_n); the rows of pairs containing 0 are returned unchanged. ``sign`` is then the group's.
    """
    check_mode(mode)
    p = logits.shape[1]
    chosen = check_frequencies(frequencies, p)
    discrete_log = group is not None and group.discrete_log
    if discrete_log:
        n, residue, sign = group.order, group.residue, group.sign
        on_group = group.on_group_rows(logits)  # [n*n, p]
    else:
        n, on_group = p, logits
        a, b = all_pairs(p)
        residue = (a + sign * b) % p  # [p*p]
    mean_by_residue = torch.zeros(n, p, dtype=logits.dtype).index_add_(0, residue, on_group) / n  # [n (s), p]
    basis = fourier_basis(n, logits.dtype)[frequency_rows(chosen, n)]  # [2|S|, n (s)]
    projected = (basis.T @ (basis @ mean_by_residue))[residue]  # [n*n, p]
    if mode == "remove":
        changed = on_group - projected
    else:
        changed = projected + on_group.mean(dim=0, keepdim=True)
    return group.onto_all_pairs(logits, changed) if discrete_log else changed


def project_embedding(params: Params, frequencies, mode: str = "remove", group: Group | None = None) -> Params:
    """Params with W_E[:p] projected off (remove) or onto (keep) the frequencies' cos/sin rows.

    Keep-only also keeps the constant (mean) embedding row: it is the same for every token,
    carries no information about it, and keeping it makes keep-all equal to the original.
    The '=' row is untouched; with a discrete-log ``group`` the rows of tokens 1..p-1 are
    projected in log order on the basis of Z_{p-1}, and token 0's row is untouched too.
    """
    check_mode(mode)
    W_E = params["embed.W_E"]  # [d_vocab, d_model]
    p = W_E.shape[0] - 1
    chosen = check_frequencies(frequencies, p)
    tokens = group.tokens if group is not None and group.discrete_log else torch.arange(p)  # [n]
    n = len(tokens)
    rows = frequency_rows(chosen, n) if mode == "remove" else [0] + frequency_rows(chosen, n)
    basis = fourier_basis(n, W_E.dtype)[rows]  # [n_rows, n (element)]
    on_group = W_E[tokens]  # [n, d_model]
    projected = basis.T @ (basis @ on_group)  # [n, d_model]
    out = dict(params)
    new = W_E.clone()
    new[tokens] = on_group - projected if mode == "remove" else projected
    out["embed.W_E"] = new
    return out


def block_entries(frequencies, n: int | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The entries of the union of the frequencies' 3x3 blocks, minus (0, 0), as indices
    (frequency - 1, position in block row, position in block column), positions 0..2 standing for
    basis rows (0, 2k-1, 2k).

    (0, 0) is each neuron's mean over all pairs: it belongs to no frequency, so remove leaves
    it and keep-only keeps it (as the logits site keeps the per-class mean). The other entries
    belong to exactly one frequency, so the union has no repeats. For an even basis size ``n``
    frequency n/2 has no sine row, so its block is 2x2 (positions 0 and 1).
    """
    which, rows, cols = [], [], []
    for k in frequencies:
        size = 2 if n is not None and 2 * k == n else 3
        for row in range(size):
            for col in range(size):
                if (row, col) != (0, 0):
                    which.append(k - 1), rows.append(row), cols.append(col)
    as_long = lambda values: torch.tensor(values, dtype=torch.long)  # noqa: E731
    return as_long(which), as_long(rows), as_long(cols)


def project_neurons_logits(base: Baseline, frequencies, mode: str = "remove") -> torch.Tensor:
    """The neurons-site ablation as logits [p*p, p], from the cached baseline.

    The logits are linear in the activations N (logits = rest + N @ W_L), so projecting N onto
    the blocks (P N) changes them by (P N) @ W_L, and P N only involves the chosen entries of
    F = B N B^T (``base.blocks``): (P N)[a, b] = sum over block entries (i, j) of B[i, a] B[j, b] F[i, j].
    Each neuron's mean is kept in both modes (see :func:`block_entries`).
    Keep-all is not the original here: cross-frequency terms (i of k, j of k' != k) lie in no
    block, and keep-only drops them too. With a discrete-log group, N is the group pairs'
    activations (log order) and only their logits change.
    """
    check_mode(mode)
    n = base.frame.order
    design, entries = _block_projection(base, frequencies, base.logits.dtype)
    projected = design @ (entries @ base.W_L)  # [n*n, p] = (P N) @ W_L, without the mean
    on_group = base.frame.on_group_rows(base.logits)  # [n*n, p]
    if mode == "remove":
        changed = on_group - projected
    else:
        mean_logits = (base.blocks[0, 0, 0] / n) @ base.W_L  # [p]: F[0, 0] B[0, a] B[0, b] = mean N
        changed = on_group - base.mlp_logits + mean_logits + projected
    return base.frame.onto_all_pairs(base.logits, changed)


def projected_activations(base: Baseline, frequencies, mode: str = "remove") -> torch.Tensor:
    """[p*p, d_mlp] the activations after the neurons-site projection, row-major over all pairs.

    The same projection as :func:`project_neurons_logits`, written out on the activations:
    remove gives N - P N, keep gives mean(N) + P N; pairs outside a discrete-log group keep theirs.
    """
    check_mode(mode)
    design, entries = _block_projection(base, frequencies, base.acts.dtype)
    projected = design @ entries  # [n*n, d_mlp] = P N without the mean
    on_group = rearrange(base.group_acts, "a b neuron -> (a b) neuron")
    changed = on_group - projected if mode == "remove" else base.blocks[0, 0, 0] / base.frame.order + projected
    return base.frame.onto_all_pairs(rearrange(base.acts, "a b neuron -> (a b) neuron"), changed)


def _block_projection(base: Baseline, frequencies, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """The neurons-site projection P N = design @ entries (without each neuron's mean), as
    (design [n*n, n_entries], entries [n_entries, d_mlp] = F[i, j]) over the chosen block entries."""
    n = base.frame.order
    chosen = check_frequencies(frequencies, base.p)
    which, rows, cols = block_entries(chosen, n)
    index = block_index(n)  # [K, 3] basis rows (0, 2k-1, 2k)
    i, j = index[which, rows], index[which, cols]  # basis rows of each entry, [n_entries]
    basis = fourier_basis(n, dtype)  # [n, n]
    design = einsum(basis[i], basis[j], "entry a, entry b -> a b entry").reshape(n * n, -1)  # [n*n, n_entries]
    return design, base.blocks[which, rows, cols]


def project_neurons_forward(base: Baseline, frequencies, mode: str = "remove", params: Params | None = None):
    """The neurons-site ablation as logits [p*p, p], by the model's own forward: the projected
    activations replace the '=' position's ``blocks.{base.layer}.mlp.hook_post`` and the rest of
    the model runs on them.

    Exact for every architecture and block; for the last block of a model without LayerNorm it
    equals :func:`project_neurons_logits` (tested), which needs no forward."""
    params = base.params if params is None else params
    if params is None:
        raise ValueError("the neurons site of this architecture runs the model again: pass params")
    acts = projected_activations(base, frequencies, mode)
    return forward_all_pairs(params, arch=base.arch, hooks={neurons_hook(base.layer): lambda _: acts})


def ablated_logits(
    base: Baseline, frequencies, mode: str = "remove", site: str = "logits", params: Params | None = None, sign: int = 1
) -> torch.Tensor:
    """[p*p, p] logits after the ablation (``params``, or ``base.params``, runs the model again at
    the embedding site, and at the neurons site of a model with LayerNorm or of an earlier block)."""
    check_site(site)
    params = base.params if params is None else params
    if site == "logits":
        return project_logits(base.logits, frequencies, mode, sign, base.group)
    if site == "neurons":
        if base.linear_neurons:
            return project_neurons_logits(base, frequencies, mode)
        return project_neurons_forward(base, frequencies, mode, params)
    if params is None:  # the embedding site
        raise ValueError("the embedding site runs the model again: pass params")
    return forward_all_pairs(project_embedding(params, frequencies, mode, base.group), arch=base.arch)


def check_mode(mode: str) -> None:
    """A ValueError naming the choices unless ``mode`` is one of :data:`MODES`."""
    if mode not in MODES:
        raise ValueError(f"mode={mode!r} is unknown; choose one of {MODES}")


def check_site(site: str) -> None:
    """A ValueError naming the choices unless ``site`` is one of :data:`SITES`."""
    if site not in SITES:
        raise ValueError(f"site={site!r} is unknown; choose one of {SITES}")
