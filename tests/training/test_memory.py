"""The memory estimate, and the refusals a user meets before anything is allocated: the three
cases found by trying the commands as a new user would, and a run far too large for memory."""

from __future__ import annotations

import time

import pytest
import torch

from grokviz.commands import ensemble, train
from grokviz.core.config import Config
from grokviz.core.params import init_params, n_params, param_shapes
from grokviz.errors import GrokvizError
from grokviz.training import memory
from grokviz.training.grids import grid_configs

CPU = torch.device("cpu")


@pytest.mark.parametrize(
    "cfg",
    [
        Config(),
        Config(p=23, d_model=32, d_mlp=64, n_heads=2, d_head=8),
        Config(task="div", p=31, d_model=48, n_heads=3, d_head=16, d_mlp=100),
        Config(p=23, d_model=32, d_mlp=64, n_heads=2, d_head=8, layernorm="pre", biases="all", unembed="tied"),
    ],
)
def test_parameter_count_from_the_config_equals_the_model(cfg: Config) -> None:
    assert n_params(param_shapes(cfg)) == n_params(init_params(cfg))


def test_the_general_path_is_estimated_to_need_more() -> None:
    reference, encoder = Config(p=97, frac_train=0.5), Config(p=97, frac_train=0.5, layernorm="post", dropout=0.1)
    assert memory.estimate(encoder).activations > 1.1 * memory.estimate(reference).activations


def test_estimate_scales_with_members_and_group_size() -> None:
    one = memory.estimate(Config())
    assert one.parameters == n_params(param_shapes(Config())) * 4 and one.optimiser == 2 * one.parameters
    eight = memory.estimate(Config(), members=8)
    assert eight.parameters == 8 * one.parameters and eight.activations == 8 * one.activations
    two_at_a_time = memory.estimate(Config(), members=8, group_size=2)
    assert two_at_a_time.parameters == eight.parameters and two_at_a_time.activations == 2 * one.activations
    assert memory.estimate_like(eight, group_size=2) == two_at_a_time


def test_check_fits_refuses_warns_or_passes() -> None:
    need = memory.estimate(Config(), members=8)
    assert memory.check_fits(need, CPU, free=10 * need.total) is None
    note = memory.check_fits(need, CPU, free=int(1.5 * need.total))
    assert "large" in note and "--group-size" in note  # an ensemble is told how to need less
    with pytest.raises(GrokvizError, match="more than this machine's available memory"):
        memory.check_fits(need, CPU, free=need.total // 2)
    assert "--group-size" not in memory.check_fits(
        memory.estimate(Config()), CPU, free=1.5 * memory.estimate(Config()).total
    )


def call(main, argv, capsys) -> tuple[int, str, float]:
    start = time.perf_counter()
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().err, time.perf_counter() - start


def test_a_reversed_seed_range_is_refused_not_read_as_seed_0(tmp_path, capsys) -> None:
    code, err, _ = call(ensemble.main, ["--out", str(tmp_path / "s"), "--seeds", "5-2"], capsys)
    assert code == 2 and err.count("\n") == 1 and "'5-2' is a reversed range; write 2-5" in err
    assert not (tmp_path / "s").exists()
    with pytest.raises(GrokvizError, match="no values: seeds"):
        grid_configs(Config(), seeds=[])  # an empty axis is never the default member


@pytest.mark.parametrize("main", [train.main, ensemble.main], ids=["train", "ensemble"])
def test_zero_threads_is_one_error_line(main, tmp_path, capsys) -> None:
    code, err, _ = call(main, ["--out", str(tmp_path / "o"), "--threads", "0"], capsys)
    assert code == 2 and err.count("\n") == 1 and "--threads: 0 threads: at least 1 is needed" in err
    assert "Traceback" not in err and not (tmp_path / "o").exists()


def test_an_ensemble_too_large_for_memory_is_refused_at_once(tmp_path, capsys) -> None:
    code, err, seconds = call(ensemble.main, ["--out", str(tmp_path / "s"), "--seeds", "0-99999"], capsys)
    assert code == 2 and err.count("\n") == 1
    assert "for 100,000 models" in err and "more than this machine's available memory" in err and "--group-size" in err
    assert seconds < 1.0, seconds  # before 100,000 configs are built, let alone allocated
    assert not (tmp_path / "s").exists()


def test_a_model_too_large_for_memory_is_refused_before_allocation(tmp_path, capsys) -> None:
    argv = ["--out", str(tmp_path / "r"), "--d-model", "100000", "--d-mlp", "100000"]
    code, err, seconds = call(train.main, argv, capsys)
    assert code == 2 and err.count("\n") == 1 and "more than this machine's available memory" in err
    assert seconds < 1.0, seconds
    assert not (tmp_path / "r").exists()


def test_resume_refuses_flags_that_contradict_the_run(tmp_path, capsys) -> None:
    argv = [
        "--out",
        str(tmp_path / "r"),
        "--p",
        "23",
        "--d-model",
        "32",
        "--d-mlp",
        "64",
        "--n-heads",
        "2",
        "--d-head",
        "8",
        "--steps",
        "20",
        "--no-progress",
    ]
    assert call(train.main, argv, capsys)[0] == 0
    code, err, _ = call(train.main, ["--out", str(tmp_path / "r"), "--resume", "--lr", "0.1"], capsys)
    assert code == 2 and "--lr=0.1 (the run has 0.001)" in err and err.count("\n") == 1
    # A flag equal to the run's own value is no contradiction.
    assert call(train.main, ["--out", str(tmp_path / "r"), "--resume", "--p", "23", "--no-progress"], capsys)[0] == 0
