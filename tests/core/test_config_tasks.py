"""Config validation and the task definitions."""

from __future__ import annotations

import pytest
import torch

from grokviz.core.config import Config
from grokviz.core.tasks import TASKS, make_dataset
from grokviz.errors import GrokvizError


@pytest.mark.parametrize(
    "changes, words",
    [
        ({"p": 100}, "p=100 must be a prime"),
        ({"p": 3}, "p=3 must be a prime in [5, 997]"),
        ({"p": 1009}, "p=1009"),
        ({"task": "pow"}, "task='pow' is unknown"),
        ({"frac_train": 1.0}, "frac_train=1.0"),
        ({"save_dtype": "int8"}, "save_dtype='int8'"),
        ({"beta2": 1.0}, "beta2=1.0"),
        ({"steps": 0}, "steps=0 must be at least 1"),
        ({"p": 5, "frac_train": 0.01}, "gives 0 of 25 pairs for training"),
    ],
)
def test_invalid_config_says_what_and_what_is_allowed(changes, words) -> None:
    with pytest.raises(GrokvizError) as info:
        Config(**changes)
    assert words in str(info.value)


def test_config_json_round_trip_and_unknown_keys() -> None:
    cfg = Config(p=31, task="mul", data_seed=7)
    assert Config.from_json(cfg.to_json()) == cfg
    with pytest.raises(GrokvizError, match="unknown config keys \\['colour'\\]"):
        Config.from_dict({**cfg.to_dict(), "colour": "red"}, source="x.json")
    with pytest.raises(GrokvizError, match="not valid JSON"):
        Config.from_json("{nope")


def test_reference_split_sizes_and_determinism() -> None:
    d1 = make_dataset("add", 113, 0.3, 0)
    d2 = make_dataset("add", 113, 0.3, 0)
    d3 = make_dataset("add", 113, 0.3, 1)
    assert len(d1.train_idx) == 3830 and len(d1.test_idx) == 12769 - 3830
    assert torch.equal(d1.train_idx, d2.train_idx)
    assert not torch.equal(d1.train_idx, d3.train_idx)
    assert set(d1.train_idx.tolist()).isdisjoint(d1.test_idx.tolist())
    assert d1.is_train_grid().sum() == 3830


@pytest.mark.parametrize(
    "task, a, b, expected",
    [
        ("add", 10, 5, 2),
        ("sub", 3, 5, 11),
        ("mul", 4, 5, 7),
        ("div", 1, 2, 7),
        ("x2_plus_y2", 3, 4, 12),
        ("x2_plus_xy_plus_y2", 2, 3, 6),
        ("x3_plus_xy", 2, 3, 1),
    ],
)
def test_task_values_mod_13(task, a, b, expected) -> None:
    result = TASKS[task].op(torch.tensor([a]), torch.tensor([b]), 13)
    assert result.item() == expected


def test_div_excludes_zero_divisor_and_inverts() -> None:
    dataset = make_dataset("div", 13, 0.5, 0)
    assert len(dataset.a) == 13 * 12 and not (dataset.b == 0).any()
    # (a / b) * b == a for every pair
    assert torch.equal((dataset.labels * dataset.b) % 13, dataset.a)
