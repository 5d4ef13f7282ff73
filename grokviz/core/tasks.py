"""The operations over Z_p and the dataset of all pairs with its train/test split.

The task list is the original grokking paper's (Power et al. 2022). Inputs are the token
sequence ``[a, b, =]`` with ``=`` as token id ``p``; the label is ``op(a, b) mod p``.
The Fourier analysis of grokviz covers ``add`` and ``sub`` over Z_p, and ``mul`` and ``div`` over the
discrete logs (Z_{p-1}; grokviz.analysis.group); see ``FOURIER_TASKS``.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Task:
    name: str
    formula: str
    op: Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]  # (a, b, p) -> c, int64 tensors
    needs_nonzero_b: bool = False


def _inverse(b: torch.Tensor, p: int) -> torch.Tensor:
    # Fermat: b^(p-2) is b^-1 mod p for prime p and b != 0.
    return torch.tensor([pow(int(x), p - 2, p) for x in range(p)], dtype=torch.int64)[b]


TASKS: dict[str, Task] = {
    t.name: t
    for t in (
        Task("add", "(a + b) mod p", lambda a, b, p: (a + b) % p),
        Task("sub", "(a - b) mod p", lambda a, b, p: (a - b) % p),
        Task("mul", "(a * b) mod p", lambda a, b, p: (a * b) % p),
        Task("div", "(a / b) mod p, b != 0", lambda a, b, p: (a * _inverse(b, p)) % p, needs_nonzero_b=True),
        Task("x2_plus_y2", "(a^2 + b^2) mod p", lambda a, b, p: (a * a + b * b) % p),
        Task("x2_plus_xy_plus_y2", "(a^2 + ab + b^2) mod p", lambda a, b, p: (a * a + a * b + b * b) % p),
        Task("x3_plus_xy", "(a^3 + ab) mod p", lambda a, b, p: (a * a * a + a * b) % p),
    )
}

# Tasks whose solution is a sum of rotations, so the key-frequency story applies: add and sub
# over Z_p, mul and div over the discrete logs of their non-zero operands.
FOURIER_TASKS = frozenset({"add", "sub", "mul", "div"})


@dataclass(frozen=True)
class Dataset:
    """All valid pairs of a task, and which of them are for training.

    ``a``, ``b``, ``labels``: [n_pairs] int64, pairs in row-major (a, b) order.
    ``train_idx``, ``test_idx``: indices into the pair axis; disjoint, covering all pairs.
    """

    p: int
    a: torch.Tensor
    b: torch.Tensor
    labels: torch.Tensor
    train_idx: torch.Tensor
    test_idx: torch.Tensor

    @property
    def tokens(self) -> torch.Tensor:  # [n_pairs, 3]
        eq = torch.full_like(self.a, self.p)
        return torch.stack([self.a, self.b, eq], dim=1)

    def is_train_grid(self) -> torch.Tensor:
        """[p, p] bool: True where (a, b) is a training pair (False for invalid pairs too)."""
        grid = torch.zeros(self.p, self.p, dtype=torch.bool)
        grid[self.a[self.train_idx], self.b[self.train_idx]] = True
        return grid


# How the pairs are shuffled before the first ``frac_train`` of them become the training set.
SPLITS = ("torch", "python")


def make_dataset(task: str, p: int, frac_train: float, seed: int, split: str = "torch") -> Dataset:
    """Every pair of the task, split deterministically from ``(p, task, frac_train, seed, split)``.

    ``split="torch"``: ``torch.randperm`` with a generator seeded ``seed`` (grokviz's trainer; also
    the TransformerLens grokking demo's split). ``split="python"``: ``random.seed(seed);
    random.shuffle(pairs)``, the paper's reference code, so imported reference runs are
    evaluated on the pairs they were trained on.
    """
    spec = TASKS[task]
    a = torch.arange(p).repeat_interleave(p)  # [p^2], row-major: a = i // p
    b = torch.arange(p).repeat(p)  # [p^2], b = i % p
    if spec.needs_nonzero_b:
        keep = b != 0
        a, b = a[keep], b[keep]
    labels = spec.op(a, b, p)
    return split_pairs(p, a, b, labels, frac_train, seed, split)


def split_pairs(
    p: int, a: torch.Tensor, b: torch.Tensor, labels: torch.Tensor, frac_train: float, seed: int, split: str = "torch"
) -> Dataset:
    """The pairs ``a``, ``b`` [n_pairs] with their ``labels``, the first ``frac_train`` of a seeded
    shuffle for training (see :func:`make_dataset`); ``p`` is the number of tokens before '='."""
    if split == "torch":
        order = torch.randperm(len(a), generator=torch.Generator().manual_seed(seed))
    elif split == "python":
        shuffled = list(range(len(a)))
        random.Random(seed).shuffle(shuffled)  # a private generator: same sequence as random.seed
        order = torch.tensor(shuffled, dtype=torch.int64)
    else:
        raise ValueError(f"split={split!r} must be one of {SPLITS}")
    n_train = int(frac_train * len(a))  # floor, as the reference code: 3,830 of 12,769 at p=113
    train_idx, _ = order[:n_train].sort()
    test_idx, _ = order[n_train:].sort()
    return Dataset(p=p, a=a, b=b, labels=labels, train_idx=train_idx, test_idx=test_idx)
