"""The finite groups of the "composition in a group" tasks: their tokens, products and element names.

Owns :func:`parse_group` (a name such as "S5" -> :class:`FiniteGroup`, cached per name), the
allowed names (the ``*_DEGREES`` / ``CYCLIC_ORDERS`` constants) and :func:`conjugacy_classes`.
Pure: names and ints in, read-only numpy arrays out.

Token order — a contract (datasets, stored runs and the irreps in grokviz.analysis.irreps rely on it):

* A permutation of 0..n-1 is the tuple g with g[i] the image of i; composition is
  (a∘b)[i] = a[b[i]] (b acts first, then a).
* S_n: token t is the t-th permutation of 0..n-1 in lexicographic order of that tuple (token 0
  is the identity).
* A_n: the even permutations, in the same lexicographic order.
* D_n (order 2n): the element r^k s^j (k in 0..n-1, j in 0..1) is token k + n·j, and
  (k1, j1)(k2, j2) = (k1 + (−1)^j1 k2 mod n, j1 xor j2); r is the rotation by 2π/n, s a reflection.
* Z_n: the element k is token k, composition is addition mod n (exactly the modular addition
  task mod n).
* The model's '=' token is |G| (:attr:`FiniteGroup.equals_token`); the answer to the pair (a, b)
  is the token of a∘b, i.e. ``table[a, b]``.

Element names (:meth:`FiniteGroup.label`): permutations in cycle notation, fixed points left out,
each cycle starting at its smallest entry ("(0 1 2)" sends 0→1→2→0), the identity "e"; dihedral
elements "e", "r", "r^2", "s", "r s", "r^2 s"; cyclic elements their number "0".."n-1".
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from types import MappingProxyType

import numpy as np

from grokviz.errors import GrokvizError

SYMMETRIC_DEGREES = range(3, 7)  # S3..S6 (S6 has 720 elements; S7's 5040² table would be 200 MB)
ALTERNATING_DEGREES = range(4, 6)  # A4, A5
DIHEDRAL_DEGREES = range(3, 101)  # D3..D100, D_n of order 2n
CYCLIC_ORDERS = range(2, 998)  # Z2..Z997, the largest prime below 1000 as the top
KINDS = {"S": SYMMETRIC_DEGREES, "A": ALTERNATING_DEGREES, "D": DIHEDRAL_DEGREES, "Z": CYCLIC_ORDERS}


def allowed_names() -> str:
    """The allowed names as the error message lists them, built from the constants so it never drifts."""
    parts = []
    for kind, degrees in KINDS.items():
        if len(degrees) <= 2:
            parts += [f"{kind}{n}" for n in degrees]
        else:
            parts.append(f"{kind}{degrees[0]}..{kind}{degrees[-1]}")
    return ", ".join(parts[:-1]) + " or " + parts[-1]


@dataclass(frozen=True, eq=False)  # eq=False: arrays are not comparable with ==; identity is enough (cached)
class FiniteGroup:
    """A finite group whose elements are the tokens 0..order-1 (token order: see the module docstring)."""

    name: str  # canonical, e.g. "S5"
    kind: str  # "S" | "A" | "D" | "Z"
    n: int  # the degree (S, A), the polygon's sides (D) or the order (Z)
    elements: tuple  # [order]: permutation tuples (S, A), (k, j) pairs for r^k s^j (D), ints (Z)
    table: np.ndarray = field(repr=False)  # [order, order] int64, table[a, b] = token of a∘b
    inverse: np.ndarray = field(repr=False)  # [order] int64, the token of a^-1
    identity: int = 0
    _tokens: Mapping = field(default_factory=dict, repr=False)  # element -> token

    @property
    def order(self) -> int:
        return len(self.elements)

    @property
    def equals_token(self) -> int:
        """The model's '=' token: |G|, one past the last element."""
        return self.order

    def compose(self, a: int, b: int) -> int:
        """The token of a∘b."""
        return int(self.table[a, b])

    def token(self, element) -> int:
        """The token of an element given as in :attr:`elements` (a permutation tuple, a (k, j) pair, an int)."""
        key = tuple(element) if isinstance(element, (list, tuple, np.ndarray)) else int(element)
        if key not in self._tokens:
            raise ValueError(f"{element!r} is not an element of {self.name}")
        return self._tokens[key]

    def label(self, token: int) -> str:
        """A readable name of the element: "(0 1 2)(3 4)", "r^2 s", "5"; the identity of S, A and D is "e"."""
        element = self.elements[token]
        if self.kind == "Z":
            return str(element)
        if self.kind == "D":
            k, j = element
            rotation = "" if k == 0 else "r" if k == 1 else f"r^{k}"
            return " ".join(part for part in (rotation, "s" if j else "") if part) or "e"
        return _cycle_notation(element)

    def labels(self) -> list[str]:
        """[order] the label of every token."""
        return [self.label(t) for t in range(self.order)]

    def sign(self, token: int) -> int:
        """+1 for an even permutation, -1 for an odd one (S_n and A_n only)."""
        if self.kind not in ("S", "A"):
            raise ValueError(f"sign is defined for permutation groups, not {self.name}")
        return int(_parity(np.array([self.elements[token]]))[0])


def as_group(group: FiniteGroup | str) -> FiniteGroup:
    """``group`` itself, or the group a name such as "S5" names (:func:`parse_group`)."""
    return group if isinstance(group, FiniteGroup) else parse_group(group)


def parse_group(name: str) -> FiniteGroup:
    """The group named "S3".."S6", "A4", "A5", "D3".."D100" or "Z2".."Z997" (case-insensitive), cached per name."""
    match = re.fullmatch(r"\s*([SADZ])0*(\d+)\s*", str(name), flags=re.IGNORECASE)
    kind, n = (match.group(1).upper(), int(match.group(2))) if match else (None, None)
    if kind is None or n not in KINDS[kind]:
        raise GrokvizError(f"group {name!r} is not supported: choose {allowed_names()}")
    return _build(kind, n)


@lru_cache(maxsize=32)
def _build(kind: str, n: int) -> FiniteGroup:
    if kind in ("S", "A"):
        elements, table = _permutation_group(kind, n)
    elif kind == "D":
        elements, table = _dihedral_group(n)
    else:
        elements, table = tuple(range(n)), (np.arange(n)[:, None] + np.arange(n)[None, :]) % n
    table = np.ascontiguousarray(table, dtype=np.int64)  # [order, order]
    order = len(elements)
    identity = int(np.flatnonzero((table == np.arange(order)).all(axis=1))[0])
    inverse = np.argmax(table == identity, axis=1).astype(np.int64)  # [order]: the one b with a∘b = e
    for array in (table, inverse):
        array.setflags(write=False)  # shared through the cache
    tokens = MappingProxyType({element: token for token, element in enumerate(elements)})
    return FiniteGroup(f"{kind}{n}", kind, n, elements, table, inverse, identity, tokens)


def _permutation_group(kind: str, n: int) -> tuple[tuple, np.ndarray]:
    # itertools.permutations of a sorted input yields lexicographic order: the token contract.
    perms = np.array(list(itertools.permutations(range(n))), dtype=np.int64)  # [n!, n]
    if kind == "A":
        perms = perms[_parity(perms) == 1]  # [n!/2, n], still lexicographic
    # A permutation's base-n number (g[0] most significant) increases with lexicographic order, so
    # searchsorted turns the number of a∘b into its token. Built one position at a time:
    # perms[:, perms[:, i]][a, b] = a[b[i]] = (a∘b)[i], an [order, order] array per step.
    codes = np.zeros(len(perms), dtype=np.int64)  # [order]
    product_codes = np.zeros((len(perms), len(perms)), dtype=np.int64)  # [order (a), order (b)]
    for i in range(n):
        codes = codes * n + perms[:, i]
        product_codes = product_codes * n + perms[:, perms[:, i]]
    return tuple(map(tuple, perms.tolist())), np.searchsorted(codes, product_codes)


def _dihedral_group(n: int) -> tuple[tuple, np.ndarray]:
    tokens = np.arange(2 * n)
    k, j = tokens % n, tokens // n  # token k + n*j is r^k s^j
    # s r = r^-1 s, so r^k1 s^j1 r^k2 s^j2 = r^(k1 + (-1)^j1 k2) s^(j1 xor j2).
    k_product = (k[:, None] + (1 - 2 * j[:, None]) * k[None, :]) % n  # [2n, 2n]
    j_product = j[:, None] ^ j[None, :]  # [2n, 2n]
    return tuple(zip(k.tolist(), j.tolist())), k_product + n * j_product


def _parity(perms: np.ndarray) -> np.ndarray:
    """perms [m, n] -> [m] +1 (even) or -1 (odd), from the number of inversions i < j, g[i] > g[j]."""
    n = perms.shape[1]
    upper = np.triu(np.ones((n, n), dtype=bool), k=1)  # [n, n] pairs i < j
    inversions = ((perms[:, :, None] > perms[:, None, :]) & upper).sum(axis=(1, 2))  # [m]
    return np.where(inversions % 2 == 0, 1, -1)


def _cycle_notation(perm: tuple) -> str:
    seen, cycles = set(), []
    for start in range(len(perm)):
        if start in seen or perm[start] == start:
            continue
        cycle, i = [], start
        while i not in seen:
            seen.add(i)
            cycle.append(i)
            i = perm[i]
        cycles.append("(" + " ".join(map(str, cycle)) + ")")
    return "".join(cycles) or "e"


def conjugacy_classes(group: FiniteGroup) -> tuple[tuple[int, ...], ...]:
    """The conjugacy classes as sorted token tuples, ordered by their smallest token (the identity's first)."""
    return _conjugacy_classes(group.name)


@lru_cache(maxsize=32)
def _conjugacy_classes(name: str) -> tuple[tuple[int, ...], ...]:
    group = parse_group(name)
    table, inverse = group.table, group.inverse
    conjugates = table[table, inverse[:, None]]  # [order (h), order (g)]: h g h^-1
    assigned = np.zeros(group.order, dtype=bool)
    classes = []
    for g in range(group.order):
        if not assigned[g]:
            members = np.unique(conjugates[:, g])
            assigned[members] = True
            classes.append(tuple(members.tolist()))
    return tuple(classes)
