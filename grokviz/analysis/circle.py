"""Numbers drawn on their circles: the tokens' embeddings (and unembeddings) in one frequency's plane.

Owns :func:`circle`: for a frequency k, the plane of W_E's cos-k and sin-k Fourier components
(two d_model vectors: rows 2k-1 and 2k of ``B @ W_E[tokens]``), and every token's centred
embedding projected on it. A model that represents x as the rotation by angle w·x puts the
tokens on a circle there, token x at angle w·x (up to the plane's own rotation and a stretch);
joined in the order of x·k mod p, the points go round the circle once. For ``mul`` and ``div``
x is replaced by log_g x, k·log x mod (p-1) orders the points, and token 0 is left out.
The unembedding side does the same with the columns of W_U (one d_model vector per output c)
and the cos-k, sin-k components of W_U over its output axis.

Pure: weights in, a small dataclass out. When gcd(k, n) = d > 1 only n/d angles occur, so d
tokens share each point (the frequency cannot tell them apart).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from grokviz.analysis.fourier import check_frequencies, fourier_basis, frequency_rows
from grokviz.analysis.group import Group, additive
from grokviz.core.forward import unembed_matrix
from grokviz.core.params import Params, p_of

SIDES = ("embedding", "unembedding")


@dataclass(frozen=True)
class Circle:
    """One frequency's plane, and each token's position in it, in the order the circle joins them."""

    frequency: int
    side: str  # "embedding" (rows of W_E) or "unembedding" (columns of W_U)
    tokens: torch.Tensor  # [n] int64 token (or output class), in join order: k * element mod n ascending
    xy: torch.Tensor  # [n, 2] float64 coordinates in the plane (first axis along the cos-k component)
    angle: torch.Tensor  # [n] float64 the ideal angle 2*pi*k*element/n of each token, in [0, 2*pi)
    plane_share: float  # fraction of the tokens' centred squared norm that lies in the plane


def vectors(params: Params, side: str, group: Group) -> torch.Tensor:
    """[n, d_model] the vector of each group element's token (W_E rows, or W_U columns), element order."""
    if side == "embedding":
        return params["embed.W_E"][group.tokens].double()
    if side == "unembedding":
        return unembed_matrix(params)[:, group.tokens].T.double()
    raise ValueError(f"side={side!r} is unknown; choose one of {SIDES}")


def circle(params: Params, frequency: int, side: str = "embedding", group: Group | None = None) -> Circle:
    """Project every token of the group onto the plane of its vectors' cos-k and sin-k components."""
    p = p_of(params)
    group = group if group is not None else additive(p)
    (k,) = check_frequencies([frequency], p)
    rows = vectors(params, side, group)  # [n, d_model]
    n = rows.shape[0]
    centred = rows - rows.mean(dim=0)  # the constant component carries no token information
    components = fourier_basis(n, torch.float64)[frequency_rows([k], n)] @ centred  # [1 or 2, d_model]
    # An orthonormal basis of the plane, its first axis along the cos component (QR keeps its direction).
    q, r = torch.linalg.qr(components.T)  # q [d_model, 1 or 2]
    q = q * torch.sign(torch.diagonal(r)).where(torch.diagonal(r) != 0, torch.ones(1, dtype=r.dtype))
    xy = centred @ q  # [n, 1 or 2]
    if xy.shape[1] == 1:  # frequency n/2 of an even n: a cosine only, the "circle" is two points on a line
        xy = torch.cat([xy, torch.zeros_like(xy)], dim=1)
    total = float(centred.pow(2).sum())
    share = float(xy.pow(2).sum()) / total if total > 0 else 0.0
    elements = torch.arange(n)
    position = (k * elements) % n  # where element l sits on the ideal circle, in units of 2*pi/n
    order = torch.argsort(position * n + elements)  # by angle, ties by element: a stable drawing
    return Circle(
        frequency=k,
        side=side,
        tokens=group.tokens[order],
        xy=xy[order],
        angle=(2 * torch.pi * position[order].double() / n),
        plane_share=share,
    )
