"""The [p, p] grid of inputs (a, b): which pairs are in the task (and in a discrete-log analysis),
whether one is a train or test pair, its right answer, and every pair's status after an ablation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from grokviz.analysis.group import Group
from grokviz.core.config import Config
from grokviz.core.tasks import TASKS


def grid_status(correct: torch.Tensor, is_train: torch.Tensor, valid: torch.Tensor | None = None) -> pd.DataFrame:
    """[p, p] correct / train masks -> frame (a, b, status) with ``charts.GRID_STATUS`` names."""
    correct = torch.as_tensor(correct).bool().numpy()
    is_train = torch.as_tensor(is_train).bool().numpy()
    p = correct.shape[0]
    a, b = np.meshgrid(np.arange(p), np.arange(p), indexing="ij")
    status = np.where(
        correct,
        np.where(is_train, "correct (train pair)", "correct (test pair)"),
        np.where(is_train, "wrong (train pair)", "wrong (test pair)"),
    ).astype(object)
    if valid is not None:
        status[~torch.as_tensor(valid).bool().numpy()] = "not in task"
    return pd.DataFrame({"a": a.ravel(), "b": b.ravel(), "status": status.ravel()})


def valid_grid(dataset, group: Group | None = None) -> torch.Tensor:
    """[p, p] bool: True where (a, b) is a pair of the task (all but b = 0 for div), and, with a
    discrete-log ``group``, of the analysis (neither operand 0)."""
    grid = torch.zeros(dataset.p, dataset.p, dtype=torch.bool)
    grid[dataset.a, dataset.b] = True
    if group is not None and group.discrete_log:
        grid[0, :] = grid[:, 0] = False
    return grid


def correct_answer(cfg: Config, a: int, b: int) -> int | None:
    """c = op(a, b) mod p for the run's task, or None where the task is undefined (b = 0 in div)."""
    task = TASKS[cfg.task]
    if task.needs_nonzero_b and b % cfg.p == 0:
        return None
    return int(task.op(torch.tensor([int(a)]), torch.tensor([int(b)]), cfg.p)[0])


def pair_split(dataset, a: int, b: int) -> str:
    """'train pair', 'test pair' or 'not in the task' for one input."""
    if not bool(valid_grid(dataset)[a, b]):
        return "not in the task"
    return "train pair" if bool(dataset.is_train_grid()[a, b]) else "test pair"
