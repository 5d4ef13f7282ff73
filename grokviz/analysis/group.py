"""The cyclic group a run's Fourier analysis runs over, and where the tokens sit on it.

Owns (definitions in docs/discrete-log.md):

* :func:`primitive_root` — the smallest generator g of Z_p^* (every tool names the same basis);
* :class:`Group` — ``additive``: Z_p itself, token x is element x (``add``, ``sub``, and the
  polynomial tasks, which stay labelled as not Fourier tasks); ``discrete-log``: Z_p^* ≅ Z_{p-1}
  through x = g^l, token x != 0 is element l = log_g x and token 0 is outside the group
  (``mul``, ``div``). ``a * b = g^(log a + log b)`` and ``a / b = g^(log a - log b)``, so
  multiplication is addition of logs mod p - 1, and the addition circuit's analysis carries over
  on the re-indexed tokens with the Fourier basis of Z_{p-1};
* :func:`group_for` — a task's group (cached: one per (task, p)).

Pure: ints and tensors in and out. The analyses take tensors indexed by *group element* (the
re-indexed tokens); :meth:`Group.elements_of` and the index tensors here do the re-indexing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property, lru_cache

import torch

from grokviz.core.tasks import Dataset

DISCRETE_LOG_TASKS = frozenset({"mul", "div"})
SUBTRACTIVE_TASKS = frozenset({"sub", "div"})  # c = a ∘ b^-1: the circuit uses log a - log b
BASES = ("additive", "discrete-log")


def prime_factors(n: int) -> list[int]:
    """The distinct prime factors of n >= 1, ascending."""
    factors, q = [], 2
    while q * q <= n:
        if n % q == 0:
            factors.append(q)
            while n % q == 0:
                n //= q
        q += 1
    return factors + ([n] if n > 1 else [])


def primitive_root(p: int) -> int:
    """The smallest g whose powers are all of Z_p^* (p an odd prime): g^((p-1)/q) != 1 for each prime q | p-1."""
    if p < 3 or any(p % q == 0 for q in range(2, int(p**0.5) + 1)):
        raise ValueError(f"a primitive root needs an odd prime p, got {p}")
    factors = prime_factors(p - 1)
    for g in range(2, p):
        if all(pow(g, (p - 1) // q, p) != 1 for q in factors):
            return g
    raise AssertionError("unreachable: every prime has a primitive root")  # pragma: no cover


@dataclass(frozen=True)
class Group:
    """The group Z_n a run's Fourier analysis uses, and the map between tokens and its elements."""

    p: int
    basis: str  # "additive" | "discrete-log"
    sign: int = 1  # +1: c = a ∘ b; -1: c = a ∘ b^-1 (sub, div)
    _restricted: dict = field(default_factory=dict, compare=False, hash=False, repr=False)

    @property
    def discrete_log(self) -> bool:
        return self.basis == "discrete-log"

    @property
    def order(self) -> int:
        """n: p (additive) or p - 1 (discrete-log)."""
        return self.p - 1 if self.discrete_log else self.p

    @cached_property
    def generator(self) -> int | None:
        """g, the smallest primitive root of p (None for the additive basis)."""
        return primitive_root(self.p) if self.discrete_log else None

    @cached_property
    def tokens(self) -> torch.Tensor:
        """[n] int64: the token of element l (additive: l; discrete-log: g^l mod p)."""
        if not self.discrete_log:
            return torch.arange(self.p)
        g, out, x = self.generator, [], 1
        for _ in range(self.p - 1):
            out.append(x)
            x = x * g % self.p
        return torch.tensor(out, dtype=torch.int64)

    @cached_property
    def log_table(self) -> torch.Tensor:
        """[p] int64: the element of token x (its discrete log), -1 for token 0 in the discrete-log basis."""
        table = torch.full((self.p,), -1, dtype=torch.int64)
        table[self.tokens] = torch.arange(self.order)
        return table

    def element(self, token: int) -> int | None:
        """The group element of one token (None: token 0 in the discrete-log basis, outside the group)."""
        value = int(self.log_table[int(token)])
        return None if value < 0 else value

    @cached_property
    def pair_index(self) -> torch.Tensor:
        """[n*n] int64: for group pairs (l_a, l_b) in row-major order, their row in the p*p all-pairs axis."""
        return (self.tokens[:, None] * self.p + self.tokens[None, :]).reshape(-1)

    @cached_property
    def residue(self) -> torch.Tensor:
        """[n*n] int64: (l_a + sign * l_b) mod n, the element of the answer of each group pair."""
        elements = torch.arange(self.order)
        return ((elements[:, None] + self.sign * elements[None, :]) % self.order).reshape(-1)

    def on_group(self, grid: torch.Tensor) -> torch.Tensor:
        """grid [p (a), p (b), ...] -> [n (l_a), n (l_b), ...] re-indexed by element (no copy when additive)."""
        if not self.discrete_log:
            return grid
        return grid[self.tokens][:, self.tokens]

    def on_group_rows(self, flat: torch.Tensor) -> torch.Tensor:
        """flat [p*p, ...] over all pairs, row-major -> [n*n, ...] the group pairs' rows (itself when additive)."""
        return flat if not self.discrete_log else flat[self.pair_index]

    def onto_all_pairs(self, flat: torch.Tensor, changed: torch.Tensor) -> torch.Tensor:
        """``flat`` [p*p, ...] with the group pairs' rows replaced by ``changed`` [n*n, ...]
        (``changed`` itself when additive): pairs with an operand outside the group keep theirs."""
        if not self.discrete_log:
            return changed
        out = flat.clone()
        out[self.pair_index] = changed
        return out

    def restrict(self, dataset: Dataset) -> Dataset:
        """The dataset's pairs with both operands in the group (itself when additive; memoised per object)."""
        if not self.discrete_log:
            return dataset
        stored = self._restricted.get(id(dataset))
        if stored is not None and stored[0] is dataset:
            return stored[1]
        keep = (dataset.a != 0) & (dataset.b != 0)  # [n_pairs]
        new_index = torch.cumsum(keep.long(), 0) - 1  # old pair -> new pair
        restricted = Dataset(
            p=dataset.p,
            a=dataset.a[keep],
            b=dataset.b[keep],
            labels=dataset.labels[keep],
            train_idx=new_index[dataset.train_idx[keep[dataset.train_idx]]],
            test_idx=new_index[dataset.test_idx[keep[dataset.test_idx]]],
        )
        self._restricted.clear()  # one dataset per run: keep only the latest
        self._restricted[id(dataset)] = (dataset, restricted)
        return restricted

    def describe(self) -> str:
        """One line for the app and the CLI."""
        if not self.discrete_log:
            return f"additive Fourier basis of Z_{self.p}"
        return (
            f"discrete-log Fourier basis: tokens 1..{self.p - 1} re-indexed by log base {self.generator} "
            f"(the smallest primitive root of {self.p}), frequencies over Z_{self.order}"
        )


@lru_cache(maxsize=32)
def group_for(task: str, p: int) -> Group:
    """The group of a task at p: discrete-log for ``mul`` and ``div``, additive for every other task."""
    basis = "discrete-log" if task in DISCRETE_LOG_TASKS else "additive"
    return Group(p=p, basis=basis, sign=-1 if task in SUBTRACTIVE_TASKS else 1)


def additive(p: int) -> Group:
    """The additive group Z_p (the default of every analysis)."""
    return group_for("add", p)
