"""The finite groups of the group-composition tasks: names, token order (a contract), products."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from grokviz.core.groups import (
    ALTERNATING_DEGREES,
    CYCLIC_ORDERS,
    DIHEDRAL_DEGREES,
    SYMMETRIC_DEGREES,
    conjugacy_classes,
    parse_group,
)
from grokviz.errors import GrokvizError

GROUPS = ["S3", "S4", "S5", "S6", "A4", "A5", "D3", "D4", "D5", "D6", "D12", "Z2", "Z7", "Z12"]


def _is_even(perm) -> bool:
    inversions = sum(1 for i, j in itertools.combinations(range(len(perm)), 2) if perm[i] > perm[j])
    return inversions % 2 == 0


def test_s3_tokens_are_the_permutations_in_lexicographic_order():
    group = parse_group("S3")
    assert group.elements == ((0, 1, 2), (0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0))
    assert group.labels() == ["e", "(1 2)", "(0 1)", "(0 1 2)", "(0 2 1)", "(0 2)"]
    # (0 2 1) ∘ (1 0 2): [a[b[0]], a[b[1]], a[b[2]]] = [a[1], a[0], a[2]] = (2, 0, 1), token 4.
    assert group.compose(1, 2) == 4
    assert group.compose(2, 1) == 3  # (1 0 2) ∘ (0 2 1) = (1, 2, 0): S3 is not abelian
    assert [group.sign(t) for t in range(6)] == [1, -1, -1, 1, 1, -1]


@pytest.mark.parametrize("n", list(SYMMETRIC_DEGREES))
def test_symmetric_group_tokens_and_composition(n):
    group = parse_group(f"S{n}")
    assert group.elements == tuple(itertools.permutations(range(n)))
    assert group.order == len(group.elements) and group.identity == 0
    rng = np.random.default_rng(n)
    for a, b in rng.integers(0, group.order, size=(200, 2)):
        perm_a, perm_b = group.elements[a], group.elements[b]
        assert group.elements[group.table[a, b]] == tuple(perm_a[perm_b[i]] for i in range(n))


@pytest.mark.parametrize("n", list(ALTERNATING_DEGREES))
def test_alternating_group_is_the_even_permutations_in_lexicographic_order(n):
    group = parse_group(f"A{n}")
    assert group.elements == tuple(perm for perm in itertools.permutations(range(n)) if _is_even(perm))
    assert all(group.sign(t) == 1 for t in range(group.order))
    symmetric = parse_group(f"S{n}")
    # The product of A_n is the product of S_n on the same permutations.
    for a, b in itertools.product(range(group.order), repeat=2):
        product = symmetric.table[symmetric.token(group.elements[a]), symmetric.token(group.elements[b])]
        assert group.elements[group.table[a, b]] == symmetric.elements[product]


@pytest.mark.parametrize("n", [3, 4, 5, 6, 7, 12])
def test_dihedral_tokens_follow_the_formula(n):
    group = parse_group(f"D{n}")
    assert group.order == 2 * n
    assert group.elements == tuple((k, j) for j in (0, 1) for k in range(n))
    for (k1, j1), (k2, j2) in itertools.product(group.elements, repeat=2):
        expected = (k1 + (-1) ** j1 * k2) % n + n * (j1 ^ j2)
        assert group.table[k1 + n * j1, k2 + n * j2] == expected
    # r = token 1 has order n, s = token n is an involution, and s r s = r^-1.
    r, s = 1, n
    assert group.compose(s, s) == 0
    assert group.compose(group.compose(s, r), s) == group.inverse[r] == n - 1
    assert [group.label(t) for t in (0, 1, 2, n, n + 1, n + 2)] == ["e", "r", "r^2", "s", "r s", "r^2 s"]


@pytest.mark.parametrize("n", [2, 7, 12, 113, 997])
def test_cyclic_group_is_modular_addition(n):
    group = parse_group(f"Z{n}")
    a, b = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    np.testing.assert_array_equal(group.table, (a + b) % n)
    assert group.elements == tuple(range(n)) and group.label(n - 1) == str(n - 1)


@pytest.mark.parametrize("name", GROUPS)
def test_group_axioms(name):
    group = parse_group(name)
    order, table = group.order, group.table
    assert table.shape == (order, order) and table.dtype == np.int64
    every = np.arange(order)
    # Latin square: every row and every column is a permutation of the tokens.
    assert (np.sort(table, axis=1) == every).all() and (np.sort(table, axis=0) == every[:, None]).all()
    assert (table[group.identity] == every).all() and (table[:, group.identity] == every).all()
    assert (table[every, group.inverse] == group.identity).all()
    assert (table[group.inverse, every] == group.identity).all()
    rng = np.random.default_rng(0)
    a, b, c = rng.integers(0, order, size=(3, 5000))
    np.testing.assert_array_equal(table[table[a, b], c], table[a, table[b, c]])
    assert group.equals_token == order
    assert group.token(group.elements[order - 1]) == order - 1
    assert len(set(group.labels())) == order


def test_orders_and_canonical_names():
    assert parse_group("S5").order == 120
    assert parse_group("A5").order == 60
    assert parse_group("D7").order == 14
    assert parse_group("S6").order == 720
    assert parse_group("Z997").order == 997
    assert parse_group("D100").order == 200
    assert parse_group("s5") is parse_group("S5")  # cached; names are case-insensitive
    assert parse_group(" d12 ").name == "D12"


@pytest.mark.parametrize("name", GROUPS)
def test_tables_are_read_only(name):
    group = parse_group(name)
    with pytest.raises(ValueError):
        group.table[0, 0] = 1
    with pytest.raises(ValueError):
        group.inverse[0] = 1


@pytest.mark.parametrize("name", ["S9", "S2", "A3", "A6", "D2", "D101", "Z1", "Z998", "X5", "S", "", "S5x", "Q8"])
def test_bad_names_are_refused_with_one_sentence(name):
    with pytest.raises(GrokvizError) as error:
        parse_group(name)
    assert str(error.value) == f"group {name!r} is not supported: choose S3..S6, A4, A5, D3..D100 or Z2..Z997"


def test_allowed_ranges():
    assert (SYMMETRIC_DEGREES[0], SYMMETRIC_DEGREES[-1]) == (3, 6)
    assert list(ALTERNATING_DEGREES) == [4, 5]
    assert (DIHEDRAL_DEGREES[0], DIHEDRAL_DEGREES[-1]) == (3, 100)
    assert (CYCLIC_ORDERS[0], CYCLIC_ORDERS[-1]) == (2, 997)


def test_sign_is_only_for_permutation_groups():
    with pytest.raises(ValueError):
        parse_group("D4").sign(1)


@pytest.mark.parametrize(
    "name, sizes",
    [
        ("S3", [1, 2, 3]),
        ("S4", [1, 3, 6, 6, 8]),
        ("S5", [1, 10, 15, 20, 20, 24, 30]),
        ("A4", [1, 3, 4, 4]),
        ("A5", [1, 12, 12, 15, 20]),
        ("D5", [1, 2, 2, 5]),
        ("D6", [1, 1, 2, 2, 3, 3]),
        ("Z12", [1] * 12),
    ],
)
def test_conjugacy_classes(name, sizes):  # sizes: sorted, from the cycle types (S, A) and r^k ~ r^-k (D)
    group = parse_group(name)
    classes = conjugacy_classes(group)
    assert classes[0] == (group.identity,)
    assert sorted(t for members in classes for t in members) == list(range(group.order))
    for members in classes:  # closed under conjugation
        for h in range(group.order):
            conjugates = {group.compose(group.compose(h, g), int(group.inverse[h])) for g in members}
            assert conjugates == set(members)
    assert sorted(len(members) for members in classes) == sizes
