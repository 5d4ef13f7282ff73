"""Young's orthogonal form: the real orthogonal irreducible representations of S_n.

Owns partitions (in reverse lexicographic order), their conjugates, standard Young tableaux and
the matrices of the adjacent transpositions s_i = (i i+1) in Young's orthogonal form. Extending
those to every permutation is grokviz.analysis.irreps' job (it walks the Cayley table).

Young's orthogonal form: the basis vectors e_T are the standard Young tableaux T of shape λ
filled with 0..n-1; with c_T(m) = column - row of the box holding m (its content) and the axial
distance d = c_T(i+1) - c_T(i),

    s_i e_T = (1/d) e_T + sqrt(1 - 1/d²) e_{s_i T},

where s_i T swaps i and i+1 (a standard tableau whenever |d| > 1; d = ±1 means i, i+1 share a
row (+1, s_i acts as 1) or a column (-1, s_i acts as -1)). Each s_i is a symmetric orthogonal
involution and the s_i satisfy the Coxeter relations, so they define an orthogonal
representation; it is irreducible and distinct for each λ (the trivial one is λ = (n), the
sign λ = (1, ..., 1)).
"""

from __future__ import annotations

import math

import numpy as np

Partition = tuple[int, ...]
Tableau = tuple[tuple[int, int], ...]  # (row, column) of the box holding 0, 1, ..., n-1


def partitions(n: int) -> list[Partition]:
    """The partitions of n in reverse lexicographic order: (n,), (n-1, 1), ..., (1,)*n."""

    def below(remaining: int, largest: int) -> list[Partition]:
        if remaining == 0:
            return [()]
        return [
            (part,) + rest for part in range(min(remaining, largest), 0, -1) for rest in below(remaining - part, part)
        ]

    return below(n, n)


def conjugate(shape: Partition) -> Partition:
    """The transposed partition (rows become columns): (3, 1, 1) <-> (3, 1, 1), (4, 1) <-> (2, 1, 1, 1)."""
    return tuple(sum(1 for row in shape if row > column) for column in range(shape[0]))


def label(shape: Partition) -> str:
    """The partition written with commas: (3, 1, 1) -> "3,1,1"."""
    return ",".join(map(str, shape))


def standard_tableaux(shape: Partition) -> list[Tableau]:
    """Every standard Young tableau of the shape (rows and columns increase), 0..n-1 placed in order.

    Deterministic order: 0, 1, 2, ... are placed one by one, trying the rows top to bottom.
    """
    n = sum(shape)
    found: list[Tableau] = []

    def place(boxes: list[tuple[int, int]], row_lengths: list[int]) -> None:
        if len(boxes) == n:
            found.append(tuple(boxes))
            return
        for row, length in enumerate(row_lengths):
            # A box may go at the end of a row if the row has room and the row above is longer.
            if length < shape[row] and (row == 0 or row_lengths[row - 1] > length):
                row_lengths[row] += 1
                place(boxes + [(row, length)], row_lengths)
                row_lengths[row] -= 1

    place([], [0] * len(shape))
    return found


def adjacent_transposition_matrices(shape: Partition) -> np.ndarray:
    """[n-1, dim, dim] float64: Young's orthogonal form of s_i = (i i+1) for i = 0..n-2 (the module docstring)."""
    n = sum(shape)
    tableaux = standard_tableaux(shape)
    index = {tableau: t for t, tableau in enumerate(tableaux)}
    matrices = np.zeros((n - 1, len(tableaux), len(tableaux)))  # [n-1, dim, dim]
    for i in range(n - 1):
        for t, tableau in enumerate(tableaux):
            (row_i, column_i), (row_next, column_next) = tableau[i], tableau[i + 1]
            distance = (column_next - row_next) - (column_i - row_i)  # the axial distance d, never 0
            matrices[i, t, t] = 1 / distance
            if abs(distance) > 1:
                swapped = list(tableau)
                swapped[i], swapped[i + 1] = swapped[i + 1], swapped[i]
                matrices[i, index[tuple(swapped)], t] = math.sqrt(1 - 1 / distance**2)
    return matrices
