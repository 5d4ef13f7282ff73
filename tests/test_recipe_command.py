"""``grokviz train --recipe power2022`` and the depth and batch flags on the command line."""

from __future__ import annotations

from pathlib import Path

from grokviz.commands import train
from grokviz.storage.runs import open_run
from tests.test_bad_options import assert_refused, run


def test_the_recipe_fills_what_the_flags_leave(tmp_path: Path) -> None:
    out = tmp_path / "run"
    argv = ["--recipe", "power2022", "--task", "div", "--p", "23", "--frac-train", "0.5", "--d-model", "32"]
    code, err = run(train.main, [*argv, "--steps", "4", "--out", str(out), "--no-progress", "--threads", "1"])
    assert code == 0, err
    cfg = open_run(out).config
    # Given: task, p, frac_train, d_model; from the recipe: depth, heads, optimiser, and half the
    # training set (253 pairs of 23 * 22) as the batch, since that is below 512.
    assert (cfg.task, cfg.p, cfg.d_model, cfg.n_layers, cfg.n_heads, cfg.d_mlp) == ("div", 23, 32, 2, 4, 512)
    assert (cfg.lr, cfg.weight_decay, cfg.beta2, cfg.warmup_steps, cfg.batch_size) == (1e-3, 1.0, 0.98, 10, 126)
    assert len(open_run(out).log()) >= 2


def test_bad_depth_batch_and_recipe_are_one_line(tmp_path: Path) -> None:
    out = tmp_path / "run"
    for argv, flag in [
        (["--n-layers", "9"], "--n-layers=9 must be between 1 and 4"),
        (["--n-layers", "0"], "--n-layers=0"),
        (["--p", "23", "--batch-size", "400"], "is above the training set's"),
        (["--batch-size", "0"], "--batch-size=0 must be at least 1"),
        (["--recipe", "power2021"], "--recipe"),
    ]:
        code, err = run(train.main, [*argv, "--out", str(out), "--no-progress"])
        assert_refused(code, err, flag)
        assert flag in err, err
        assert not out.exists()
