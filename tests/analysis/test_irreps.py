"""Real orthogonal irreps of the finite groups, checked against the facts of representation theory."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from grokviz.analysis import fourier, young
from grokviz.analysis.irreps import (
    character_table,
    fourier_basis,
    irrep_energy,
    irrep_energy_per_column,
    irreps,
)
from grokviz.core.groups import conjugacy_classes, parse_group
from grokviz.errors import GrokvizError

GROUPS = ["S3", "S4", "S5", "S6", "A4", "A5", "D3", "D4", "D5", "D6", "D12", "Z2", "Z7", "Z12"]
ATOL = 1e-9


def _pairs(order: int, limit: int = 20_000) -> tuple[np.ndarray, np.ndarray]:
    """Every pair (g, h) when there are at most `limit`, else `limit` random ones (S6: 518,400 pairs)."""
    if order * order <= limit:
        g, h = np.meshgrid(np.arange(order), np.arange(order), indexing="ij")
        return g.ravel(), h.ravel()
    return tuple(np.random.default_rng(order).integers(0, order, size=(2, limit)))


@pytest.mark.parametrize("name", GROUPS)
def test_irreps_are_orthogonal_homomorphisms(name):
    group = parse_group(name)
    g, h = _pairs(group.order)
    for irrep in irreps(group):
        rho = irrep.matrices  # [order, dim, dim]
        assert rho.shape == (group.order, irrep.dim, irrep.dim) and rho.dtype == np.float64
        identity = np.eye(irrep.dim)
        np.testing.assert_allclose(rho[group.identity], identity, atol=ATOL)
        np.testing.assert_allclose(np.einsum("gij,gkj->gik", rho, rho), np.broadcast_to(identity, rho.shape), atol=ATOL)
        products = rho[g] @ rho[h]  # [pairs, dim, dim] ρ(g)ρ(h)
        assert np.abs(products - rho[group.table[g, h]]).max() < ATOL, irrep.label  # (assert_allclose: 5x slower)
        np.testing.assert_allclose(irrep.character, np.trace(rho, axis1=1, axis2=2), atol=ATOL)


@pytest.mark.parametrize("name", GROUPS)
def test_dimensions_add_up_and_count_the_classes(name):
    group = parse_group(name)
    all_irreps = irreps(group)
    # A complex-type real irrep of real dimension 2 is two complex irreps of dimension 1.
    assert all(irrep.dim == 2 for irrep in all_irreps if irrep.kind == "complex")
    assert sum(irrep.dim**2 if irrep.kind == "real" else 2 for irrep in all_irreps) == group.order
    assert sum(irrep.complex_irreps for irrep in all_irreps) == len(conjugacy_classes(group))
    assert len({irrep.label for irrep in all_irreps}) == len(all_irreps)


@pytest.mark.parametrize("name", GROUPS)
def test_characters_are_orthogonal_and_irreducible(name):
    group = parse_group(name)
    all_irreps = irreps(group)
    characters = np.array([irrep.character for irrep in all_irreps])  # [n_irreps, order]
    gram = characters @ characters.T / group.order  # <χ, ψ> = (1/|G|) Σ χ(g) ψ(g) (real characters)
    expected = np.diag([1.0 if irrep.kind == "real" else 2.0 for irrep in all_irreps])
    np.testing.assert_allclose(gram, expected, atol=ATOL)
    # Frobenius-Schur: (1/|G|) Σ χ(g²) is 1 for real type and 0 for a complex pair (-2 would be quaternionic).
    squares = group.table[np.arange(group.order), np.arange(group.order)]  # [order] token of g∘g
    indicators = characters[:, squares].sum(axis=1) / group.order
    np.testing.assert_allclose(indicators, [1.0 if irrep.kind == "real" else 0.0 for irrep in all_irreps], atol=ATOL)


@pytest.mark.parametrize("name", GROUPS)
def test_fourier_basis_is_orthonormal_and_complete(name):
    group = parse_group(name)
    basis, labels, index = fourier_basis(group)
    assert basis.shape == (group.order, group.order) and len(labels) == group.order == len(index)
    np.testing.assert_allclose(basis @ basis.T, np.eye(group.order), atol=ATOL)
    np.testing.assert_allclose(basis.T @ basis, np.eye(group.order), atol=ATOL)
    all_irreps = irreps(group)
    rows_per_irrep = np.bincount(index, minlength=len(all_irreps))
    assert rows_per_irrep.tolist() == [irrep.dim**2 if irrep.kind == "real" else 2 for irrep in all_irreps]
    assert (np.diff(index) >= 0).all()  # irrep by irrep, in irreps()' order
    assert labels[0] == all_irreps[0].label  # the trivial irrep: the constant row
    np.testing.assert_allclose(basis[0], np.full(group.order, 1 / math.sqrt(group.order)), atol=ATOL)


def test_symmetric_group_irreps():
    group = parse_group("S5")
    all_irreps = irreps(group)
    assert [irrep.label for irrep in all_irreps] == ["5", "4,1", "3,2", "3,1,1", "2,2,1", "2,1,1,1", "1,1,1,1,1"]
    assert [irrep.dim for irrep in all_irreps] == [1, 4, 5, 6, 5, 4, 1]
    assert all(irrep.kind == "real" for irrep in all_irreps)
    signs = np.array([group.sign(t) for t in range(group.order)])
    fixed_points = np.array([sum(perm[i] == i for i in range(5)) for perm in group.elements])
    np.testing.assert_allclose(all_irreps[0].character, 1.0)
    np.testing.assert_allclose(all_irreps[-1].character, signs, atol=ATOL)
    # The standard representation (n-1, 1) is the permutation representation minus the trivial one.
    np.testing.assert_allclose(all_irreps[1].character, fixed_points - 1, atol=ATOL)
    # Tensoring with the sign gives the conjugate partition: χ_λ' = sign · χ_λ.
    by_label = {irrep.label: irrep for irrep in all_irreps}
    for irrep in all_irreps:
        conjugate = young.label(young.conjugate(tuple(map(int, irrep.label.split(",")))))
        np.testing.assert_allclose(by_label[conjugate].character, signs * irrep.character, atol=ATOL)


def test_young_tableaux_and_partitions():
    assert young.partitions(4) == [(4,), (3, 1), (2, 2), (2, 1, 1), (1, 1, 1, 1)]
    assert young.conjugate((4, 1)) == (2, 1, 1, 1) and young.conjugate((3, 1, 1)) == (3, 1, 1)
    # The hook length formula: 16 standard tableaux of shape (3, 2, 1), 5 of (3, 3).
    assert len(young.standard_tableaux((3, 2, 1))) == 16 and len(young.standard_tableaux((3, 3))) == 5
    assert [irrep.dim for irrep in irreps("S6")] == [1, 5, 9, 10, 5, 16, 10, 5, 9, 5, 1]


def test_alternating_group_a5():
    group = parse_group("A5")
    all_irreps = irreps(group)
    assert [(irrep.label, irrep.dim, irrep.kind) for irrep in all_irreps] == [
        ("5", 1, "real"),
        ("4,1", 4, "real"),
        ("3,2", 5, "real"),
        ("3,1,1+", 3, "real"),
        ("3,1,1-", 3, "real"),
    ]
    assert sorted(irrep.dim for irrep in all_irreps) == [1, 3, 3, 4, 5]
    five_cycle = group.token((1, 2, 3, 4, 0))
    assert group.label(five_cycle) == "(0 1 2 3 4)"
    golden = (1 + math.sqrt(5)) / 2
    assert all_irreps[3].character[five_cycle] == pytest.approx(golden, abs=ATOL)
    assert all_irreps[4].character[five_cycle] == pytest.approx(1 - golden, abs=ATOL)
    table = character_table(group)
    assert table.labels == ["5", "4,1", "3,2", "3,1,1+", "3,1,1-"]
    assert sorted(table.class_sizes.tolist()) == [1, 12, 12, 15, 20]
    # Weighted by class size, the rows of the character table are orthonormal.
    gram = (table.values * table.class_sizes) @ table.values.T / group.order
    np.testing.assert_allclose(gram, np.eye(5), atol=ATOL)


def test_alternating_group_a4_has_one_complex_type_irrep():
    group = parse_group("A4")
    by_label = {irrep.label: irrep for irrep in irreps(group)}
    assert [(label, irrep.dim, irrep.kind) for label, irrep in by_label.items()] == [
        ("4", 1, "real"),
        ("3,1", 3, "real"),
        ("2,2", 2, "complex"),
    ]
    rho = by_label["2,2"].matrices  # [12, 2, 2]: rotations by 0, ±120° (the pair ω, ω² as one real irrep)
    np.testing.assert_allclose(np.linalg.det(rho), 1.0, atol=ATOL)
    np.testing.assert_allclose(rho[:, 0, 0], rho[:, 1, 1], atol=ATOL)
    np.testing.assert_allclose(rho[:, 0, 1], -rho[:, 1, 0], atol=ATOL)
    three_cycles = [t for t in range(group.order) if len(group.label(t)) == len("(0 1 2)")]
    assert len(three_cycles) == 8
    np.testing.assert_allclose(by_label["2,2"].character[three_cycles], -1.0, atol=ATOL)
    table = character_table(group)
    assert table.values.shape == (3, 4)  # fewer real irreps than classes: the complex pair is one row


@pytest.mark.parametrize("n", [3, 4, 5, 6, 12])
def test_dihedral_irreps(n):
    group = parse_group(f"D{n}")
    all_irreps = irreps(group)
    one_dim = ["trivial", "flip"] + (["alt", "alt-flip"] if n % 2 == 0 else [])
    rotations = [f"rot {m}" for m in range(1, (n - 1) // 2 + 1)]
    assert [irrep.label for irrep in all_irreps] == one_dim + rotations
    assert [irrep.dim for irrep in all_irreps] == [1] * len(one_dim) + [2] * len(rotations)
    assert all(irrep.kind == "real" for irrep in all_irreps)
    r, s = 1, n
    by_label = {irrep.label: irrep for irrep in all_irreps}
    assert by_label["flip"].matrices[s, 0, 0] == -1 and by_label["flip"].matrices[r, 0, 0] == 1
    if n % 2 == 0:
        assert by_label["alt"].matrices[r, 0, 0] == -1 and by_label["alt"].matrices[s, 0, 0] == 1
        assert by_label["alt-flip"].matrices[r, 0, 0] == -1 and by_label["alt-flip"].matrices[s, 0, 0] == -1
    angle = 2 * math.pi / n
    np.testing.assert_allclose(
        by_label["rot 1"].matrices[r], [[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]]
    )
    np.testing.assert_allclose(by_label["rot 1"].matrices[s], [[1, 0], [0, -1]])


@pytest.mark.parametrize("n", [3, 7, 12, 113])
def test_cyclic_basis_is_grokviz_modular_fourier_basis(n):
    basis, labels, _ = fourier_basis(f"Z{n}")
    reference = fourier.fourier_basis(n, torch.float64).numpy()  # [n, n] const, cos 1, sin 1, ...
    np.testing.assert_allclose(basis, reference, atol=1e-12)
    # Irrep "freq k" is frequency k: its rows are "cos k" then "sin k"; for even n "alternating" is cos n/2.
    assert [_fourier_label(label, n) for label in labels] == fourier.basis_labels(n)


def _fourier_label(label: str, n: int) -> str:
    """The name grokviz.analysis.fourier gives the row: "freq 3 sin" -> "sin 3", "trivial" -> "const"."""
    if label in ("trivial", "alternating"):
        return "const" if label == "trivial" else f"cos {n // 2}"
    _, k, wave = label.split(" ")
    return f"{wave} {k}"


def test_cyclic_irreps_are_rotations_by_frequency():
    n, x = 12, np.arange(12)
    all_irreps = irreps("Z12")
    assert [(irrep.label, irrep.kind) for irrep in all_irreps] == [("trivial", "real")] + [
        (f"freq {k}", "complex") for k in range(1, 6)
    ] + [("alternating", "real")]
    angle = 2 * np.pi * 5 * x / n
    np.testing.assert_allclose(all_irreps[5].matrices[:, :, 0], np.stack([np.cos(angle), np.sin(angle)], 1))
    np.testing.assert_allclose(all_irreps[-1].character, (-1.0) ** x)


def test_cyclic_energy_matches_the_frequency_norms():
    p, d_model = 23, 6
    values = np.random.default_rng(1).standard_normal((p, d_model))  # like W_E's token rows
    energy = irrep_energy(f"Z{p}", values)
    coefficients = fourier.fourier_basis(p, torch.float64) @ torch.from_numpy(values)
    norms = fourier.frequency_norms(coefficients).numpy()  # [K]
    total = float((values**2).sum())
    for k in range(1, p // 2 + 1):
        assert energy[f"freq {k}"] == pytest.approx(norms[k - 1] ** 2 / total, rel=1e-9)
    assert sum(energy.values()) == pytest.approx(1.0, abs=ATOL)


@pytest.mark.parametrize("name", ["S4", "A5", "D6", "Z12"])
def test_irrep_energy(name):
    group = parse_group(name)
    basis, _, index = fourier_basis(group)
    all_irreps = irreps(group)
    # A basis row puts all of its energy in its irrep.
    row = int(np.flatnonzero(index == len(all_irreps) - 1)[0])
    energy = irrep_energy(group, basis[row])
    assert energy[all_irreps[-1].label] == pytest.approx(1.0, abs=ATOL)
    assert sum(energy.values()) == pytest.approx(1.0, abs=ATOL)
    # Per column: [n_irreps, columns], each column's fractions sum to 1; a column of zeros gets zeros.
    values = np.random.default_rng(0).standard_normal((group.order, 4))
    values[:, 2] = 0.0
    fractions = irrep_energy_per_column(group, torch.from_numpy(values))  # CPU tensors are accepted
    assert fractions.shape == (len(all_irreps), 4)
    np.testing.assert_allclose(fractions.sum(axis=0), [1, 1, 0, 1], atol=ATOL)
    # The pooled energy weights each column by its squared norm.
    weights = (values**2).sum(axis=0)
    pooled = irrep_energy(group, values)
    np.testing.assert_allclose(list(pooled.values()), fractions @ weights / weights.sum(), atol=ATOL)
    # A constant function lies in the trivial irrep; an all-zero one has no energy anywhere.
    assert irrep_energy(group, np.ones(group.order))[all_irreps[0].label] == pytest.approx(1.0)
    assert set(irrep_energy(group, np.zeros(group.order)).values()) == {0.0}


def test_irreps_are_cached_read_only_and_accept_names():
    first, again = irreps("S5"), irreps(parse_group("s5"))
    assert all(a is b for a, b in zip(first, again))
    with pytest.raises(ValueError):
        first[1].matrices[0, 0, 0] = 2.0
    basis, _, _ = fourier_basis("S5")
    with pytest.raises(ValueError):
        basis[0, 0] = 2.0
    with pytest.raises(GrokvizError, match="group 'S9' is not supported"):
        irreps("S9")
