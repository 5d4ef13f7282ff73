"""The config of a groups run: composition a∘b in a finite group (S_n, A_n, D_n, Z_n).

Chughtai, Chan & Nanda (2023, *A Toy Model of Universality*) and Stander et al. (2024, *Grokking
Group Multiplication with Cosets*) train the modular family's 1-layer transformer on a group's
multiplication table. So :class:`GroupsConfig` is the modular :class:`~grokviz.core.config.Config`
(same model, architectures, optimiser, split and trainers: ``train``, ``ensemble``, Ray) with one
more field, ``group`` (a name such as ``"S5"``, ``grokviz.core.groups``), and ``p`` meaning what it
always meant to the model: the number of tokens before '=', here the group's order. ``p`` is
derived from ``group``; a stored or given ``p`` must agree with it.

Token order (a contract): ``grokviz.core.groups``; the pair (a, b) is the sequence
``[a, b, =]`` with '=' the token |G|, and its answer is the token of a∘b.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from grokviz.core.config import Config, check_frac_train
from grokviz.core.groups import FiniteGroup, allowed_names, parse_group
from grokviz.core.stored import Problems
from grokviz.core.tasks import Dataset, split_pairs
from grokviz.errors import GrokvizError

GROUP_TASKS = ("compose",)


@dataclass(frozen=True)
class GroupsConfig(Config):
    """A modular-family config whose task is composition in ``group``."""

    family = "groups"  # a class attribute, not a field (grokviz.core.families)

    task: str = field(default="compose", metadata={"help": "the operation: compose (a∘b in --group)"})
    # None until validated: then the group's order (the tokens before '='), stored in run.json.
    p: int | None = field(
        default=None, metadata={"help": "number of tokens before '=': the group's order, set from --group"}
    )
    # Chughtai et al.'s split for their transformer runs on S5.
    frac_train: float = field(default=0.6, metadata={"help": "fraction of all pairs used for training"})
    group: str = field(
        default="S5",
        metadata={"help": "the group: S3..S6, A4, A5, D3..D100 (order 2n) or Z2..Z997"},
    )

    def __post_init__(self) -> None:
        if isinstance(self.group, str):
            try:
                group = parse_group(self.group)
            except GrokvizError:
                group = None  # refused by problems(), with the allowed names
            if group is not None:
                object.__setattr__(self, "group", group.name)  # canonical: "s5" is stored as "S5"
                if self.p is None:
                    object.__setattr__(self, "p", group.order)  # frozen: derived once, here
        super().__post_init__()

    def _task_problems(self, check: Problems) -> None:
        ok = check.ok
        group = None
        if ok("group"):
            try:
                group = parse_group(self.group)
            except GrokvizError:
                check.add("group", f"is not supported: choose {allowed_names()}")
        if ok("task") and self.task not in GROUP_TASKS:
            check.add("task", f"must be one of {GROUP_TASKS} for a group")
        if group is not None and ok("p") and self.p != group.order:
            check.add("p", f"must be {group.order}, the order of {group.name} (leave it unset)")
        check_frac_train(check, group.order**2 if group is not None else None)
        if ok("n_layers") and self.n_layers != 1:
            # The irrep analyses read one block's neurons (analysis.groups); deeper group runs are not built.
            check.add("n_layers", "must be 1 for a group run (the representation-theory analyses read one layer)")

    @property
    def finite_group(self) -> FiniteGroup:
        return parse_group(self.group)

    def pair_count(self) -> int:
        return self.p * self.p

    def dataset(self) -> Dataset:
        """Every pair (a, b) of group elements, row-major, labelled a∘b; split as the modular tasks are."""
        order = self.p
        a = torch.arange(order).repeat_interleave(order)  # [order^2], a = i // order
        b = torch.arange(order).repeat(order)  # [order^2], b = i % order
        labels = torch.tensor(self.finite_group.table, dtype=torch.int64).reshape(-1)  # [order^2], table[a, b]
        return split_pairs(order, a, b, labels, self.frac_train, self.split_seed, self.split)
