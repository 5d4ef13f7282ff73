"""The real Fourier basis over Z_p and the spectra built on it (definitions in docs/analysis.md).

Owns: the orthonormal basis ``B`` (rows: constant, then cos k, sin k for k = 1..(p-1)/2, cos
before sin), its labels, the per-frequency grouping of its rows, 1-D spectra of the embedding
and of the neurons-to-logits map ``W_L`` (``grokviz.analysis.logit_map``; the last block's,
``W_out @ W_U``, unless a layer is chosen), the 2-D
transform of anything indexed by ``(a, b)``, and each frequency's 3x3 block of that transform
(:func:`block_index`, :func:`blocks_of`, :func:`frequency_blocks`).

Pure functions of tensors; the basis is cached per ``p`` because every analysis needs it and
building it repeatedly would cost more than using it. Frequencies are the ints ``k = 1..K``,
``K = (p-1)//2``; arrays indexed by frequency put frequency ``k`` at index ``k - 1``.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch

from grokviz.analysis.group import Group
from grokviz.analysis.logit_map import neuron_logit_map
from grokviz.core.architecture import Architecture
from grokviz.core.fast_path import all_pairs
from grokviz.core.params import Params


def n_frequencies(p: int) -> int:
    """K = p//2: the non-constant frequencies of Z_p ((p-1)/2 for odd p; for even n, n/2 with the
    last one, n/2, a cosine only). Z_p and the discrete-log group Z_{p-1} both have (p-1)//2."""
    return p // 2


def frequencies(p: int) -> list[int]:
    """[1, 2, ..., K]."""
    return list(range(1, n_frequencies(p) + 1))


@lru_cache(maxsize=8)
def _basis_float64(p: int) -> torch.Tensor:  # [p, p]
    x = torch.arange(p, dtype=torch.float64)
    rows = [torch.ones(p, dtype=torch.float64)]
    for k in frequencies(p):
        angle = 2 * math.pi * k * x / p
        # For even p the last frequency p/2 is cos(pi x) = (-1)^x; its sine is zero at every integer.
        rows += [torch.cos(angle)] if 2 * k == p else [torch.cos(angle), torch.sin(angle)]
    basis = torch.stack(rows)  # [p, p]
    # Built in float64 and normalised there, so the fp32 copy is orthonormal to ~1e-7.
    return basis / basis.norm(dim=1, keepdim=True)


def fourier_basis(p: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """B [p (basis row), p (token x)], orthonormal: row 0 = const, row 2k-1 = cos k, row 2k = sin k.

    For even p (the discrete-log group Z_{p-1} of a prime p) the last row is cos(pi x) alone, so
    the basis stays square and orthonormal.
    """
    if p < 3:
        raise ValueError(f"the Fourier basis needs p >= 3, got {p}")
    return _basis_float64(p).to(dtype)  # a copy: callers may modify it


def basis_labels(p: int) -> list[str]:
    """Names of B's rows: ["const", "cos 1", "sin 1", "cos 2", ...] (even p: the last is "cos p/2")."""
    labels = ["const"]
    for k in frequencies(p):
        labels += [f"cos {k}"] if 2 * k == p else [f"cos {k}", f"sin {k}"]
    return labels


def frequency_rows(frequency_list, p: int | None = None) -> list[int]:
    """Rows of B belonging to the given frequencies: [2k-1, 2k] for each k, in order.

    ``p`` (the basis size) is needed only when it is even: frequency p/2 then has row p-1 alone.
    """
    rows = []
    for k in frequency_list:
        k = int(k)
        rows += [2 * k - 1] if p is not None and 2 * k == p else [2 * k - 1, 2 * k]
    return rows


def check_frequencies(frequency_list, p: int) -> list[int]:
    """Validated, de-duplicated, sorted ints in 1..K (a ValueError names the bad one)."""
    out = sorted({int(k) for k in frequency_list})
    bad = [k for k in out if not 1 <= k <= n_frequencies(p)]
    if bad:
        raise ValueError(f"frequencies {bad} are outside 1..{n_frequencies(p)} for p={p}")
    return out


def frequency_norms(coefficients: torch.Tensor) -> torch.Tensor:
    """coefficients [p (basis row), ...] -> [K] norm per frequency, sqrt(|cos row|^2 + |sin row|^2).

    Everything after the first axis is flattened into the norm; the constant row is dropped.
    """
    p = coefficients.shape[0]
    squared = coefficients.reshape(p, -1).pow(2).sum(dim=1)  # [p]
    cos_part, sin_part = squared[1::2], squared[2::2]  # [K], and [K - 1] for even p (no sin p/2)
    sin_part = torch.cat([sin_part, sin_part.new_zeros(len(cos_part) - len(sin_part))])
    return (cos_part + sin_part).sqrt()  # rows (2k-1, 2k) -> [K]


def fourier_2d(x: torch.Tensor) -> torch.Tensor:
    """x [p (a), p (b), ...channels] -> F = B x B^T per channel, [p (row of a), p (row of b), ...].

    Two matrix products, one per input axis, on views that need no copies: [113, 113, 512]
    takes ~30 ms on one core (a single three-operand einsum picked a slower order).
    """
    return _transform_2d(x, fourier_basis(x.shape[0], x.dtype).to(x.device))


def inverse_fourier_2d(coefficients: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`fourier_2d` (B is orthonormal, so the inverse is B^T F B)."""
    basis = fourier_basis(coefficients.shape[0], coefficients.dtype).to(coefficients.device)
    return _transform_2d(coefficients, basis.T.contiguous())


def _transform_2d(x: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """M x M^T over the first two axes of x [p, p, ...] (trailing axes are channels)."""
    p = x.shape[0]
    channels = x.shape[2:]
    flat = x.reshape(p, p, -1)  # [a, b, channel]
    over_a = (matrix @ flat.reshape(p, -1)).reshape(p, p, -1)  # [row_a, b, channel]
    over_b = torch.matmul(matrix, over_a)  # [row_a, row_b, channel]: matrix applied per row_a
    return over_b.reshape(p, p, *channels)


def block_index(p: int) -> torch.Tensor:
    """[K, 3] rows/columns of each frequency's block: (0, 2k-1, 2k) for k = 1..K.

    For even p (the discrete-log group) the last frequency p/2 has no sine row: its "2k" is p,
    one past the basis, which :func:`blocks_of` reads as zeros (a 2x2 block in a 3x3 frame).
    """
    k = torch.arange(1, n_frequencies(p) + 1)
    return torch.stack([torch.zeros_like(k), 2 * k - 1, 2 * k], dim=1)


def blocks_of(coefficients: torch.Tensor) -> torch.Tensor:
    """Full transform F [p, p, n] -> its frequency blocks [K, 3, 3, n] (see :func:`frequency_blocks`)."""
    p = coefficients.shape[0]
    index = block_index(p)  # [K, 3]
    if p % 2 == 0:  # the missing sine row of frequency p/2 reads as zeros
        padded = coefficients.new_zeros(p + 1, p + 1, *coefficients.shape[2:])
        padded[:p, :p] = coefficients
        coefficients = padded
    return coefficients[index[:, :, None], index[:, None, :]]


def frequency_blocks(acts: torch.Tensor) -> torch.Tensor:
    """acts N [p, p, n] -> [K, 3, 3, n]: F[i, j] for i, j in (0, 2k-1, 2k), F = B N B^T.

    Equal to ``blocks_of(fourier_2d(acts))`` in O(p^2 n) instead of O(p^3 n) (~8x faster at
    p = 113): the block entries only need N summed along rows, along columns, and along the
    diagonals a+b = s and a-b = s, because by the product-to-sum identities
    cos(wa)cos(wb) = (cos w(a+b) + cos w(a-b)) / 2,  sin(wa)sin(wb) = (cos w(a-b) - cos w(a+b)) / 2,
    cos(wa)sin(wb) = (sin w(a+b) - sin w(a-b)) / 2,  sin(wa)cos(wb) = (sin w(a+b) + sin w(a-b)) / 2.
    Any p >= 3: for even p the last frequency's sine entries are zero (it has no sine row).
    """
    p, n = acts.shape[0], acts.shape[2]
    K = n_frequencies(p)
    flat = acts.reshape(p * p, n)
    a, b = all_pairs(p)
    basis = fourier_basis(p, acts.dtype)  # [p (row), p]
    # 1-D transforms of the four sums, [p (row), n]; products in acts' dtype, entries then float64.
    by_sum = basis @ torch.zeros(p, n, dtype=acts.dtype).index_add_(0, (a + b) % p, flat)
    by_difference = basis @ torch.zeros(p, n, dtype=acts.dtype).index_add_(0, (a - b) % p, flat)
    over_a = basis @ acts.sum(dim=1)  # rows of a, after summing over b
    over_b = basis @ acts.sum(dim=0)  # rows of b, after summing over a
    by_sum, by_difference, over_a, over_b = (t.double() for t in (by_sum, by_difference, over_a, over_b))

    def cos_rows(t):  # [K, n] rows 2k-1
        return t[1::2]

    def sin_rows(t):  # [K, n] rows 2k, zeros for the sine-less frequency p/2 of an even p
        rows = t[2::2]
        return torch.cat([rows, rows.new_zeros(K - len(rows), n)])

    # Row 2k-1 of B is scale_k cos(w_k x), scale_k = sqrt(2/p) (sqrt(1/p) for k = p/2), so
    # sum_{a,b} N cos(w_k(a+b)) = (row 2k-1 of by_sum) / scale_k, and F[2k-1, 2k-1] =
    # scale_k^2 sum N cos(wa)cos(wb) = scale_k / 2 * (row 2k-1 of by_sum + of by_difference).
    scale = torch.full((K, 1), math.sqrt(2 / p), dtype=torch.float64)
    if p % 2 == 0:
        scale[-1] = math.sqrt(1 / p)
    half = scale / 2
    blocks = torch.empty(K, 3, 3, n, dtype=torch.float64)
    blocks[:, 0, 0] = over_a[0] / math.sqrt(p)  # F[0, 0] = sum(N) / p
    blocks[:, 0, 1], blocks[:, 0, 2] = cos_rows(over_b) / math.sqrt(p), sin_rows(over_b) / math.sqrt(p)
    blocks[:, 1, 0], blocks[:, 2, 0] = cos_rows(over_a) / math.sqrt(p), sin_rows(over_a) / math.sqrt(p)
    blocks[:, 1, 1] = half * (cos_rows(by_sum) + cos_rows(by_difference))
    blocks[:, 2, 2] = half * (cos_rows(by_difference) - cos_rows(by_sum))
    blocks[:, 1, 2] = half * (sin_rows(by_sum) - sin_rows(by_difference))  # cos(wa) sin(wb)
    blocks[:, 2, 1] = half * (sin_rows(by_sum) + sin_rows(by_difference))  # sin(wa) cos(wb)
    if p % 2 == 0:  # no sine row at all for k = p/2 (the identities above put 0 there, up to rounding)
        blocks[-1, 2, :] = 0.0
        blocks[-1, :, 2] = 0.0
    return blocks.to(acts.dtype)


def embed_fourier(params: Params, group: Group | None = None) -> torch.Tensor:
    """B @ W_E[tokens]: [n (basis row), d_model], the token embedding in the group's Fourier basis.

    Additive (default): the rows of tokens 0..p-1 ('=' excluded). Discrete-log: the rows of
    tokens g^0, g^1, ..., g^(p-2), i.e. re-indexed by their log (token 0 excluded).
    """
    W_E = params["embed.W_E"]  # [d_vocab, d_model]
    p = W_E.shape[0] - 1
    rows = W_E[:p] if group is None or not group.discrete_log else W_E[group.tokens]  # [n, d_model]
    return fourier_basis(rows.shape[0], W_E.dtype) @ rows


def embed_spectrum(params: Params, group: Group | None = None) -> torch.Tensor:
    """[K] norm of each frequency in the token embedding (see :func:`embed_fourier`)."""
    return frequency_norms(embed_fourier(params, group))


def unembed_fourier(
    params: Params, group: Group | None = None, layer: int | None = None, arch: Architecture | None = None
) -> torch.Tensor:
    """W_L @ B^T, transposed: [n (basis row), d_mlp], W_L in the Fourier basis of its output axis
    (discrete-log: the outputs c = g^l in log order, c = 0 left out). ``layer``: whose neurons
    (None: the last block's, the only one a 1-layer model has; ``arch`` runs an earlier one's)."""
    W_L = neuron_logit_map(params, arch, layer)  # [d_mlp, p]
    if group is not None and group.discrete_log:
        W_L = W_L[:, group.tokens]  # [d_mlp, n]
    return (W_L @ fourier_basis(W_L.shape[1], W_L.dtype).T).T


def unembed_spectrum(
    params: Params, group: Group | None = None, layer: int | None = None, arch: Architecture | None = None
) -> torch.Tensor:
    """[K] norm of each frequency of W_L over its output (logit) axis: W_L @ B^T (None: the last block's W_L)."""
    return frequency_norms(unembed_fourier(params, group, layer, arch))
