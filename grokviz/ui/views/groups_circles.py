"""The Groups page's Circles tab, as data (pure: a group and W_E in, pandas frames and words out; no
Streamlit, no files): the tokens drawn in two dimensions for one irrep, a few lines of linear
algebra on W_E.

* :func:`irrep_plane`, for a 2-dimensional irrep ρ: the two functions of the token in ρ's first
  column, g ↦ ρ(g)[0, 0] and g ↦ ρ(g)[1, 0] (orthonormal after scaling by sqrt(2/|G|)), give two
  d_model vectors (the components of the centred W_E[:n] along them); every token's centred
  embedding is projected onto the plane they span (first axis along the first), as
  ``grokviz.analysis.circle`` does for a frequency of Z_p. A model that embeds g as ρ(g) puts the
  tokens at the angles of ρ(g)'s first column: a circle. D_n's r^k and r^k s have the same first
  column, so they sit at the same angle, but on two circles: the tokens whose ρ(g) is a rotation and
  those whose ρ(g) is a reflection are joined separately.
* :func:`irrep_pca`, for any other irrep: W_E[:n] projected onto the span of ρ's d² functions, and
  the top two principal components of that [n, d_model] matrix.
* :func:`no_circle_text`: why an irrep other than a 2-dimensional one draws no circle, in words.

Irreps are named and ordered as in ``grokviz.ui.views.groups``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from grokviz.analysis.irreps import fourier_basis, irreps
from grokviz.core.groups import FiniteGroup, conjugacy_classes
from grokviz.ui.views.groups import trivial_label

RINGS = ("ρ(g) a rotation", "ρ(g) a reflection")  # irrep_plane joins each kind of token on its own


@dataclass(frozen=True)
class Projection:
    """Tokens drawn in two dimensions for one irrep (:func:`irrep_plane` or :func:`irrep_pca`)."""

    frame: pd.DataFrame  # token, name, x, y, order (join order), angle (degrees), ring, group_class
    share: float  # irrep_plane: the fraction of the centred |W_E|² in the plane; irrep_pca: of it in ρ's span
    explained: tuple[float, float]  # irrep_pca: fraction of the projected |W_E|² on PC1 and PC2 (plane: 0, 0)


def two_dim_irreps(group: FiniteGroup) -> list[str]:
    return [irrep.label for irrep in irreps(group) if irrep.dim == 2]


def _class_names(group: FiniteGroup) -> list[str]:
    """[order] each token's conjugacy class, named by its first element ("class of (0 1)")."""
    out = [""] * group.order
    for members in conjugacy_classes(group):
        name = f"class of {group.label(members[0])}"
        for token in members:
            out[token] = name
    return out


def _irrep(group: FiniteGroup, label: str):
    for irrep in irreps(group):
        if irrep.label == label:
            return irrep
    raise ValueError(f"{label!r} is not an irrep of {group.name}")


def irrep_plane(group: FiniteGroup, W_E, label: str) -> Projection:
    """A 2-dimensional irrep's plane: each token's centred embedding projected on the span of the
    components of W_E[:n] along ρ's first-column functions (module docstring); joined by angle."""
    irrep = _irrep(group, label)
    if irrep.dim != 2:
        raise ValueError(f"{label} is {irrep.dim}-dimensional: only a 2-dimensional irrep has a circle")
    n = group.order
    rows = np.asarray(W_E, dtype=np.float64)[:n]  # [n, d_model]
    centred = rows - rows.mean(axis=0)
    functions = irrep.matrices[:, :, 0].T * np.sqrt(2 / n)  # [2, n]: g ↦ ρ(g)[0, 0], ρ(g)[1, 0]
    components = functions @ centred  # [2, d_model]
    q, r = np.linalg.qr(components.T)  # q [d_model, 2]: the plane, first axis along the first component
    signs = np.sign(np.diag(r))
    q = q * np.where(signs == 0, 1.0, signs)
    xy = centred @ q  # [n, 2]
    total = float((centred**2).sum())
    # Degrees, rounded so that 0 and 360 - 1e-13 are one angle (D_30's rot 3 has 10 angles, not 11).
    angle = np.mod(np.round(np.degrees(np.arctan2(irrep.matrices[:, 1, 0], irrep.matrices[:, 0, 0])), 6), 360.0)
    # ρ(g) is a rotation (det +1) or a reflection (det -1) of the plane. The two kinds go round two circles
    # (the second column of a reflection flips sign, which moves its point when the model's vectors for
    # the two columns are not orthogonal), so each kind is joined on its own.
    rotation = np.linalg.det(irrep.matrices) > 0  # [n]
    ring = np.where(rotation, RINGS[0], RINGS[1])
    order = np.lexsort((np.arange(n), angle, ~rotation))  # rotations first; by angle, ties by token
    rank = np.empty(n, dtype=int)
    rank[order] = np.arange(n)
    frame = pd.DataFrame(
        {
            "token": np.arange(n),
            "name": group.labels(),
            "x": xy[:, 0],
            "y": xy[:, 1],
            "order": rank,
            "angle": angle,
            "ring": ring,
            "group_class": _class_names(group),
        }
    ).sort_values("order", ignore_index=True)
    return Projection(frame, float((xy**2).sum()) / total if total > 0 else 0.0, (0.0, 0.0))


def irrep_pca(group: FiniteGroup, W_E, label: str) -> Projection:
    """W_E[:n] projected onto the span of ρ's d² functions of the token, and its top two principal
    components: each token a 2-D point (module docstring)."""
    n = group.order
    basis, _, irrep_index = fourier_basis(group)
    position = [irrep.label for irrep in irreps(group)].index(_irrep(group, label).label)
    rows = basis[irrep_index == position]  # [d², n]
    embed = np.asarray(W_E, dtype=np.float64)[:n]  # [n, d_model]
    projected = rows.T @ (rows @ embed)  # [n, d_model]
    centred = projected - projected.mean(axis=0)  # the trivial irrep: all zero
    u, s, _ = np.linalg.svd(centred, full_matrices=False)
    points = np.zeros((n, 2))
    k = min(2, len(s))
    points[:, :k] = u[:, :k] * s[:k]
    power = s**2
    explained = tuple(float(power[i] / power.sum()) if i < len(s) and power.sum() > 0 else 0.0 for i in range(2))
    total = float(((embed - embed.mean(axis=0)) ** 2).sum())
    share = float((centred**2).sum()) / total if total > 0 else 0.0
    frame = pd.DataFrame(
        {
            "token": np.arange(n),
            "name": group.labels(),
            "x": points[:, 0],
            "y": points[:, 1],
            "order": np.arange(n),
            "angle": np.zeros(n),
            "ring": RINGS[0],
            "group_class": _class_names(group),
        }
    )
    return Projection(frame, share, explained)


def no_circle_text(group: FiniteGroup, label: str) -> str:
    """Why an irrep other than a 2-dimensional one draws no circle, in words."""
    irrep = _irrep(group, label)
    if label == trivial_label(group):
        return (
            f"{label} is the trivial irrep: its one function is the constant, so it holds only the mean embedding, "
            "the same for every token. There is nothing to draw."
        )
    if irrep.dim == 1:
        return (
            f"{label} is 1-dimensional: ρ(g) is ±1, so the tokens can only sit at two points on a line "
            "(the two signs), not on a circle. Below: the projection described in the caption."
        )
    return (
        f"{label} is {irrep.dim}-dimensional: ρ(g) is a {irrep.dim}×{irrep.dim} orthogonal matrix, and the "
        f"tokens' embeddings in its span live in a {irrep.dim**2}-dimensional space of functions (the "
        f"{irrep.dim}² entries of ρ), not in a plane, so there is no circle to draw. Below: the projection "
        "described in the caption."
    )
