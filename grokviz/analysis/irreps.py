"""Real orthogonal irreducible representations of the groups in grokviz.core.groups, and the
Fourier basis on a group built from their matrix entries.

Owns :class:`Irrep`, :func:`irreps` (cached per group name), :func:`fourier_basis`,
:func:`irrep_energy` / :func:`irrep_energy_per_column` and :func:`character_table`. Pure
functions of a :class:`~grokviz.core.groups.FiniteGroup` (or its name) and numpy arrays; every
returned array is read-only (shared through the caches). Matrices are indexed by token (the
token order of grokviz.core.groups), ``matrices[g] @ matrices[h] == matrices[table[g, h]]``.

Kinds. Over the reals an irreducible representation is of *real* type (it stays irreducible over
C) or of *complex* type (it is a pair of complex-conjugate complex irreps χ, χ̄ packed into one real
rep of twice the dimension). Only real dimension 2 occurs for complex type here, and its matrices
are rotations: ρ(g) = rotation by the angle of χ(g). Quaternionic type never occurs for these
groups; the decomposition refuses it in words. <χ, χ> = (1/|G|) Σ χ(g)² is 1 for real type and 2
for complex type; a complex-type irrep counts as two complex irreps (of dimension 1).

Labels and order:

* S_n: Young's orthogonal form (grokviz.analysis.young), one irrep per partition, labelled by the
  partition ("4,1"), partitions in reverse lexicographic order: "n" (trivial) first, "1,...,1"
  (sign) last. All real type.
* A_n: S_n's irreps restricted to the even permutations, in the same order. λ and its conjugate λ'
  restrict to the same irrep: kept once, labelled by the lexicographically larger of the two ("4,1"
  for A5's 4-dim, "3,1" for A4's 3-dim, "5" / "4" for the trivial). A self-conjugate λ splits:
  A5's "3,1,1" into two real 3-dim irreps "3,1,1+" and "3,1,1-" ("+" has the larger character at
  the first token where the two characters differ, the 5-cycle (0 1 2 3 4): (1+√5)/2 against (1-√5)/2);
  A4's "2,2" into the complex pair ω, ω² of A4 → A4/V4 ≅ Z3, kept as ONE real 2-dim irrep of complex
  type labelled "2,2" (rotations by 0, ±120°).
* D_n, ρ(r^k s^j) = R(2πmk/n) S^j with R(θ) the rotation by θ and S = diag(1, -1): "trivial";
  "flip" (r ↦ 1, s ↦ -1, the determinant); for even n also "alt" (r ↦ -1, s ↦ 1) and "alt-flip"
  (r ↦ -1, s ↦ -1); then the 2-dim "rot m" for m = 1..⌊(n-1)/2⌋. All real type.
* Z_n, ρ(x) = R(2πkx/n): "trivial" (k = 0), "freq k" for k = 1..⌊(n-1)/2⌋ (complex type, the pair
  e^{±2πikx/n}), and for even n last "alternating" (k = n/2, x ↦ (-1)^x, real type). Irrep "freq k"
  is frequency k of grokviz.analysis.fourier: the first column of R(2πkx/n) is (cos, sin) of
  2πkx/n, so :func:`fourier_basis` of Z_n equals ``grokviz.analysis.fourier.fourier_basis(n)``
  row for row (const, cos 1, sin 1, cos 2, ..., with cos n/2 last for even n).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from grokviz.analysis import young
from grokviz.core.groups import FiniteGroup, as_group, conjugacy_classes, parse_group

_TOLERANCE = 1e-8  # eigenvalue gaps and character norms are O(1); rounding is ~1e-13


@dataclass(frozen=True, eq=False)  # eq=False: arrays are not comparable with ==
class Irrep:
    """A real orthogonal irreducible representation: one orthogonal matrix per token."""

    label: str
    kind: str  # "real" | "complex" (module docstring)
    matrices: np.ndarray = field(repr=False)  # [order, dim, dim] float64, orthogonal
    character: np.ndarray = field(init=False, repr=False)  # [order] trace of each matrix

    def __post_init__(self):
        self.matrices.setflags(write=False)
        character = np.trace(self.matrices, axis1=1, axis2=2)  # [order]
        character.setflags(write=False)
        object.__setattr__(self, "character", character)

    @property
    def dim(self) -> int:
        """The real dimension of the matrices."""
        return self.matrices.shape[1]

    @property
    def complex_irreps(self) -> int:
        """How many complex irreducible representations this one stands for: 1 (real type) or 2 (complex)."""
        return 2 if self.kind == "complex" else 1


def irreps(group: FiniteGroup | str) -> list[Irrep]:
    """Every real irreducible representation of the group, in the documented order (module docstring)."""
    return list(_irreps(as_group(group).name))


@lru_cache(maxsize=32)
def _irreps(name: str) -> tuple[Irrep, ...]:
    group = parse_group(name)
    builders = {"S": _symmetric, "A": _alternating, "D": _dihedral, "Z": _cyclic}
    return tuple(builders[group.kind](group))


def _extend(group: FiniteGroup, generators: list[int], generator_matrices: np.ndarray) -> np.ndarray:
    """ρ on generators [n_gen, dim, dim] -> ρ on every token [order, dim, dim], by breadth-first search
    over the Cayley table: ρ(s∘g) = ρ(s) ρ(g). Any path gives the same matrix because the generators'
    matrices satisfy the group's relations (checked by the tests: ρ(gh) = ρ(g)ρ(h) for all pairs)."""
    dim = generator_matrices.shape[1]
    matrices = np.full((group.order, dim, dim), np.nan)  # [order, dim, dim], NaN until reached
    matrices[group.identity] = np.eye(dim)
    frontier = np.array([group.identity])
    while frontier.size:
        reached = []
        for generator, matrix in zip(generators, generator_matrices):
            targets = group.table[generator, frontier]  # [frontier] s∘g, distinct for one s
            new = np.isnan(matrices[targets, 0, 0])
            matrices[targets[new]] = matrix @ matrices[frontier[new]]
            reached.append(targets[new])
        frontier = np.concatenate(reached)
    return matrices


def _symmetric(group: FiniteGroup) -> list[Irrep]:
    n = group.n
    swaps = []  # the tokens of the adjacent transpositions (i i+1)
    for i in range(n - 1):
        perm = list(range(n))
        perm[i], perm[i + 1] = i + 1, i
        swaps.append(group.token(perm))
    return [
        Irrep(young.label(shape), "real", _extend(group, swaps, young.adjacent_transposition_matrices(shape)))
        for shape in young.partitions(n)
    ]


def _alternating(group: FiniteGroup) -> list[Irrep]:
    symmetric = parse_group(f"S{group.n}")
    even = np.array([symmetric.token(perm) for perm in group.elements])  # [order] S_n token of each A_n token
    by_label = {irrep.label: irrep for irrep in irreps(symmetric)}
    out = []
    for shape in young.partitions(group.n):
        if young.conjugate(shape) > shape:
            continue  # the same irrep as its conjugate's restriction, kept under the larger label
        label = young.label(shape)
        parts = _real_parts(by_label[label].matrices[even])  # [order, dim, dim] restricted
        if len(parts) == 1:  # irreducible over R: λ != λ', or A4's complex pair "2,2"
            out.append(Irrep(label, parts[0][1], parts[0][0]))
            continue
        if len(parts) != 2 or any(kind != "real" for _, kind in parts):
            raise NotImplementedError(f"{group.name}'s restriction of {label} does not split into two real irreps")
        characters = [np.trace(matrices, axis1=1, axis2=2) for matrices, _ in parts]
        first = int(np.flatnonzero(np.abs(characters[0] - characters[1]) > 1e-6)[0])
        plus, minus = sorted(parts, key=lambda part: -np.trace(part[0][first]))
        out += [Irrep(f"{label}+", "real", plus[0]), Irrep(f"{label}-", "real", minus[0])]
    return out


def _real_parts(matrices: np.ndarray, seed: int = 0) -> list[tuple[np.ndarray, str]]:
    """Split a real orthogonal representation [order, d, d] into real irreducibles [(matrices, kind)].

    <χ, χ> is the dimension of the commutant (the matrices commuting with every ρ(g)). The group
    average of a random symmetric matrix lies in the commutant and is symmetric: it is a scalar
    exactly when the commutant has no symmetric element besides the scalars (the commutant is C:
    complex type, or H: quaternionic), otherwise its eigenspaces are invariant subspaces.
    """
    order, d, _ = matrices.shape
    character = np.trace(matrices, axis1=1, axis2=2)  # [order]
    norm = round(float(character @ character) / order)
    if norm == 1:
        return [(matrices, "real")]
    random = np.random.default_rng(seed).standard_normal((d, d))
    averaged = np.einsum("gij,jk,glk->il", matrices, random + random.T, matrices) / order  # [d, d]
    values, vectors = np.linalg.eigh(averaged)  # ascending
    breaks = np.flatnonzero(np.diff(values) > _TOLERANCE * max(1.0, np.abs(values).max())) + 1
    if breaks.size == 0:
        if norm == 2:
            return [(matrices, "complex")]
        raise NotImplementedError(f"an irreducible representation with <χ, χ> = {norm} (quaternionic type)")
    parts = []
    for basis in np.split(vectors, breaks, axis=1):  # [d, m] orthonormal columns of one eigenspace
        parts += _real_parts(np.einsum("ia,gij,jb->gab", basis, matrices, basis), seed + 1)
    return parts


def _rotations(angles: np.ndarray) -> np.ndarray:
    """angles [order] -> [order, 2, 2] rotation matrices R(θ) = [[cos, -sin], [sin, cos]]."""
    cos, sin = np.cos(angles), np.sin(angles)
    return np.stack([np.stack([cos, -sin], axis=-1), np.stack([sin, cos], axis=-1)], axis=-2)


def _one_dim(values: np.ndarray) -> np.ndarray:
    return values.astype(np.float64)[:, None, None]  # [order] -> [order, 1, 1]


def _dihedral(group: FiniteGroup) -> list[Irrep]:
    n = group.n
    k, j = np.arange(group.order) % n, np.arange(group.order) // n  # token k + n j is r^k s^j
    flip = np.where(j == 1, -1, 1)
    out = [Irrep("trivial", "real", _one_dim(np.ones(group.order))), Irrep("flip", "real", _one_dim(flip))]
    if n % 2 == 0:  # r ↦ -1 respects r^n = 1 only for even n
        alt = np.where(k % 2 == 1, -1, 1)
        out += [Irrep("alt", "real", _one_dim(alt)), Irrep("alt-flip", "real", _one_dim(alt * flip))]
    reflection = np.array([[[1.0, 0.0], [0.0, -1.0]]])  # S = diag(1, -1), applied for j = 1
    s_power = np.where(j[:, None, None] == 1, reflection, np.eye(2))  # [order, 2, 2]
    for m in range(1, (n - 1) // 2 + 1):
        out.append(Irrep(f"rot {m}", "real", _rotations(2 * np.pi * m * k / n) @ s_power))
    return out


def _cyclic(group: FiniteGroup) -> list[Irrep]:
    n = group.n
    x = np.arange(n)
    out = [Irrep("trivial", "real", _one_dim(np.ones(n)))]
    for k in range(1, (n - 1) // 2 + 1):
        out.append(Irrep(f"freq {k}", "complex", _rotations(2 * np.pi * k * x / n)))
    if n % 2 == 0:
        out.append(Irrep("alternating", "real", _one_dim(np.where(x % 2 == 1, -1, 1))))
    return out


def fourier_basis(group: FiniteGroup | str) -> tuple[np.ndarray, list[str], np.ndarray]:
    """(basis [order (row), order (token)] orthonormal, labels [order] per row, irrep_index [order] per row).

    The rows are the matrix entries of the irreps, irrep by irrep in :func:`irreps`' order: all d²
    entries (i, j), row-major, scaled by sqrt(d/|G|) for real type ("4,1 [0,2]"; a 1-dim irrep's row
    is labelled by the irrep alone); for complex type the first column, (cos, sin) of the rotation
    angle, scaled by sqrt(2/|G|) ("freq 3 cos", "freq 3 sin"). Schur orthogonality makes the rows
    orthonormal and there are Σ d² (real) + 2 (complex) = |G| of them, so the basis is complete.
    ``irrep_index[row]`` is the position in :func:`irreps` of the row's irrep.
    """
    basis, labels, index = _fourier_basis(as_group(group).name)
    return basis, list(labels), index


@lru_cache(maxsize=16)
def _fourier_basis(name: str) -> tuple[np.ndarray, tuple[str, ...], np.ndarray]:
    order = parse_group(name).order
    rows, labels, index = [], [], []
    for position, irrep in enumerate(_irreps(name)):
        d = irrep.dim
        if irrep.kind == "complex":
            if d != 2:
                raise NotImplementedError(f"complex-type irrep {irrep.label} of real dimension {d} (only 2 occurs)")
            rows.append(irrep.matrices[:, :, 0].T * np.sqrt(2 / order))  # [2 (cos, sin), order]
            labels += [f"{irrep.label} cos", f"{irrep.label} sin"]
        else:
            rows.append(irrep.matrices.reshape(order, d * d).T * np.sqrt(d / order))  # [d², order] row-major
            labels += [irrep.label] if d == 1 else [f"{irrep.label} [{i},{j}]" for i in range(d) for j in range(d)]
        index += [position] * rows[-1].shape[0]
    basis = np.concatenate(rows)  # [order, order]
    index = np.array(index)  # [order]
    for array in (basis, index):
        array.setflags(write=False)
    return basis, tuple(labels), index


def irrep_energy_per_column(group: FiniteGroup | str, values) -> np.ndarray:
    """values [order, ...] (a function on G per column, e.g. W_E's token rows [order, d_model]) ->
    [n_irreps, ...]: the fraction of each column's squared norm in each irrep's span (a column of
    zeros gets zeros). Accepts anything ``np.asarray`` takes (a CPU torch tensor included)."""
    basis, _, index = fourier_basis(group)
    values = np.asarray(values, dtype=np.float64)
    flat = values.reshape(values.shape[0], -1)  # [order, columns]
    squared = (basis @ flat) ** 2  # [order (basis row), columns]
    per_irrep = np.zeros((int(index.max()) + 1, flat.shape[1]))  # [n_irreps, columns]
    np.add.at(per_irrep, index, squared)
    total = per_irrep.sum(axis=0)  # [columns]
    fractions = np.divide(per_irrep, total, out=np.zeros_like(per_irrep), where=total > 0)
    return fractions.reshape(per_irrep.shape[0], *values.shape[1:])


def irrep_energy(group: FiniteGroup | str, values) -> dict[str, float]:
    """values [order, ...] -> {irrep label: fraction of the whole array's squared norm in its span}.

    All columns are pooled (the squared norm of every column added up); the fractions sum to 1
    (all 0 for an all-zero array).
    """
    values = np.asarray(values, dtype=np.float64)
    flat = values.reshape(values.shape[0], -1)  # [order, columns]
    weights = (flat**2).sum(axis=0)  # [columns]: each column's share of the total
    pooled = irrep_energy_per_column(group, flat) @ weights  # [n_irreps]
    total = weights.sum()
    return {irrep.label: float(share / total) if total > 0 else 0.0 for irrep, share in zip(irreps(group), pooled)}


@dataclass(frozen=True, eq=False)
class CharacterTable:
    """The characters of the real irreps on the conjugacy classes.

    With complex-type irreps there are fewer rows than classes: each complex-type row is the real
    character χ + χ̄ of a complex pair (Z_n, A4).
    """

    labels: list[str]  # [n_irreps] as in irreps()
    classes: tuple[tuple[int, ...], ...]  # [n_classes] tokens, ordered by smallest token (identity's first)
    values: np.ndarray = field(repr=False)  # [n_irreps, n_classes] float64

    @property
    def class_sizes(self) -> np.ndarray:
        return np.array([len(members) for members in self.classes])  # [n_classes]


def character_table(group: FiniteGroup | str) -> CharacterTable:
    """Each real irrep's character on each conjugacy class (see :class:`CharacterTable`)."""
    group = as_group(group)
    classes = conjugacy_classes(group)
    representatives = [members[0] for members in classes]
    all_irreps = irreps(group)
    values = np.array([irrep.character[representatives] for irrep in all_irreps])  # [n_irreps, n_classes]
    return CharacterTable([irrep.label for irrep in all_irreps], classes, values)
