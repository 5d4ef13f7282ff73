"""Adder ensembles: every member equals the single adder run with its config (weights and log),
shapes train as separate groups, the command line builds the grid, a resumed sweep equals an
uninterrupted one, and the memory estimate counts every member."""

from __future__ import annotations

import json

import pytest
import torch

from grokviz.commands.ensemble import main
from grokviz.core.digits_config import DigitsConfig
from grokviz.errors import GrokvizError
from grokviz.storage.runs import SWEEP_FILE, open_run
from grokviz.storage.sweeps import member_name, open_sweep
from grokviz.training import distributed, memory
from grokviz.training.digits import train_digits
from grokviz.training.digits_members import plan_digits_groups
from grokviz.training.ensemble import train_ensemble
from grokviz.training.grids import digits_grid, grid_configs, shape_grid

# A few steps of the recipe on small batches: the curriculum's switch falls inside the run.
TINY = DigitsConfig(steps=40, batch_size=32, val_size=64, log_every=10, curriculum="3:20,10", save_every=20)
COMPARED = ["train_loss", "train_exact", "val_loss", "val_exact", "val_acc_0", "val_acc_11", "lr", "max_digits"]


def test_each_adder_member_equals_its_single_run(tmp_path) -> None:
    # Seeds, learning rates and weight decays in one group; a member of another shape in its own.
    configs = [
        TINY.replace(seed=0),
        TINY.replace(seed=1, lr=0.01),
        TINY.replace(seed=2, weight_decay=0.1),
        TINY.replace(seed=3, d_model=4, d_mlp=16),
    ]
    assert plan_digits_groups(configs) == [[0, 1, 2], [3]]
    folders = train_ensemble(configs, tmp_path / "sweep", progress=False, threads=1)
    for folder, cfg in zip(folders, configs):
        member = open_run(folder)
        single = train_digits(cfg, tmp_path / f"single-{folder.name}", progress=False, threads=1)
        assert member.config == cfg
        ours, theirs = member.load(cfg.steps), single.load(cfg.steps)
        assert set(ours) == set(theirs)
        for name in theirs:
            # Float32 weights after 40 steps: the batched matrix products and reductions (clipping
            # norm, loss mean) sum in another order than the single run's, and AdamW's m / sqrt(v)
            # grows those last-bit differences (to ~2e-5 by step 40 at d_model 4); a wrong lr,
            # decay or clipping of one member moves its weights by 1e-3 or more.
            torch.testing.assert_close(ours[name], theirs[name], rtol=1e-4, atol=5e-5, msg=f"{folder.name} {name}")
        both = member.log().merge(single.log(), on="step", suffixes=("_member", "_single"))
        assert len(both) == len(member.log()) == cfg.steps // cfg.log_every + 1
        for column in COMPARED:
            torch.testing.assert_close(
                torch.tensor(both[f"{column}_member"].values),
                torch.tensor(both[f"{column}_single"].values),
                rtol=1e-5,
                atol=1e-6,
                msg=column,
            )


def test_a_compiled_group_equals_the_eager_one(tmp_path) -> None:
    # --compile trains the same members: its fused loops sum in another order, so float tolerance,
    # not bit for bit. Ten steps keep AdamW from growing those differences past 1e-6 (a member's
    # wrong loss layout or lost update moves its weights by 1e-3 or more).
    short = TINY.replace(steps=10, log_every=5, save_every=5, curriculum="3:5,10", d_model=4, d_mlp=8)
    configs = [short.replace(seed=seed) for seed in (0, 1)]
    eager = train_ensemble(configs, tmp_path / "eager", progress=False, threads=1)
    compiled = train_ensemble(configs, tmp_path / "compiled", progress=False, threads=1, compile=True)
    for ours, theirs in zip(compiled, eager):
        a, b = open_run(ours), open_run(theirs)
        for name, tensor in b.load(short.steps).items():
            torch.testing.assert_close(a.load(short.steps)[name], tensor, rtol=1e-4, atol=1e-5, msg=name)
        for column in COMPARED:
            torch.testing.assert_close(
                torch.tensor(a.log()[column].values), torch.tensor(b.log()[column].values), rtol=1e-6, atol=1e-7
            )


def test_cli_builds_the_adder_grid_and_resume_finishes_it(tmp_path) -> None:
    out = tmp_path / "cliff"
    flags = ["--adder", "--out", str(out), "--seeds", "0,1", "--shapes", "4:16,5:20", "--lr", "0.02,0.01"]
    flags += ["--steps", "20", "--batch-size", "16", "--val-size", "32", "--log-every", "10", "--curriculum", "3:10,10"]
    flags += ["--threads", "1", "--no-progress", "--group-size", "2"]
    assert main(flags) == 0
    sweep = open_sweep(out)
    body = json.loads((out / SWEEP_FILE).read_text())
    assert body["family"] == "digits"
    assert body["axes"]["d_model"] == [4, 5] and body["axes"]["lr"] == [0.02, 0.01]
    names = [m.name for m in sweep.members]
    # lr outermost, then the shape, then seeds (digits_grid's order).
    assert names[:3] == [
        "d4_ff16_h1_lr0.02_wd0.01_seed0",
        "d4_ff16_h1_lr0.02_wd0.01_seed1",
        "d5_ff20_h1_lr0.02_wd0.01_seed0",
    ]
    assert len(names) == 8 and sweep.swept_axes() == ["lr", "seed", "d_model", "d_mlp"]
    assert open_run(sweep.members[2].path).config.d_mlp == 20
    # A member lost (its folder emptied): --resume trains it again, to the same weights.
    victim = sweep.members[5].path
    before = open_run(victim).load(20)
    for path in victim.iterdir():
        path.unlink()
    assert main([*flags, "--resume"]) == 0
    after = open_run(victim).load(20)
    assert distributed.finished(victim, open_run(victim).config)
    for name in before:
        # Retrained alone rather than beside another member: batched sums in another order.
        torch.testing.assert_close(after[name], before[name], rtol=1e-5, atol=1e-6)


def test_distributed_group_continues_from_its_resume_state(tmp_path) -> None:
    # Trained group by group with resume states (as a Ray task does), stopped after its state of
    # step 20 and resumed: the same weights as the uninterrupted in-process ensemble.
    configs = digits_grid(TINY, seeds=[0, 1])
    whole = train_ensemble(configs, tmp_path / "whole", progress=False, threads=1)
    out = tmp_path / "parts"
    distributed.run_sweep(configs, out, progress=False, threads=1)
    for folder, ref in zip([out / member_name(c) for c in configs], whole):
        ours, theirs = open_run(folder).load(TINY.steps), open_run(ref).load(TINY.steps)
        for name in theirs:
            torch.testing.assert_close(ours[name], theirs[name], rtol=0, atol=0)
    folders = [out / member_name(c) for c in configs]
    state = distributed.saved_start(configs, folders)
    assert state is not None and state[0] == TINY.save_every  # the last state before the end
    # The group again, as a re-run Ray task: it continues from step 20 to the same end.
    distributed.train_group(configs, folders, save="ends", device="cpu", threads=1, use_graphs=False)
    for folder, ref in zip(folders, whole):
        run = open_run(folder)
        assert list(run.log()["step"]) == list(open_run(ref).log()["step"])
        ours, theirs = run.load(TINY.steps), open_run(ref).load(TINY.steps)
        for name in theirs:
            torch.testing.assert_close(ours[name], theirs[name], rtol=0, atol=0)


def test_size_axes_and_refusals() -> None:
    changes = shape_grid(TINY, d_models=[4, 6], d_mlps=["4x", 14])
    assert [(c["d_model"], c["d_mlp"]) for c in changes] == [(4, 16), (4, 14), (6, 24), (6, 14)]
    with pytest.raises(GrokvizError, match="not both"):
        shape_grid(TINY, d_models=[4], pairs=[(7, 14)])
    with pytest.raises(GrokvizError, match="no values: seeds"):
        digits_grid(TINY, seeds=[])
    # The estimate counts every member's weights and one group's activations.
    one = memory.digits_estimate(TINY)
    many = memory.estimate_sweep([TINY, TINY.replace(d_model=4, d_mlp=16)], group_size=1, counts=[3, 2])
    assert many.members == 5 and many.group_size == 1
    assert (
        many.parameters == 3 * one.parameters + 2 * memory.digits_estimate(TINY.replace(d_model=4, d_mlp=16)).parameters
    )
    assert many.activations == one.activations


def test_cli_refuses_bad_adder_axes(capsys) -> None:
    assert main(["--adder", "--out", "/tmp/never", "--shapes", "7:14", "--d-model", "4"]) == 2
    assert "not both" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--adder", "--out", "/tmp/never", "--d-mlp", "4y"])
    assert "multiple of d_model" in capsys.readouterr().err
    assert main(["--adder", "--out", "/tmp/never", "--n-heads", "2"]) == 2  # 2 does not divide d_model 7
    assert "--n-heads=2 must divide d_model=7" in capsys.readouterr().err


def test_modular_size_axes_group_by_shape_and_equal_single_runs(tmp_path, tiny_config) -> None:
    from grokviz.training.members import plan_groups
    from grokviz.training.single import train

    cfg = tiny_config.replace(steps=30, log_every=10)
    shapes = shape_grid(cfg, d_models=[8, 16], d_mlps=["4x"], n_heads=[2])
    assert shapes == [
        {"d_model": 8, "d_mlp": 32, "n_heads": 2, "d_head": 4},
        {"d_model": 16, "d_mlp": 64, "n_heads": 2, "d_head": 8},
    ]
    configs = grid_configs(cfg, seeds=[0, 1], shapes=shapes)
    assert plan_groups(configs) == [[0, 1], [2, 3]]  # one group per shape
    assert member_name(configs[2]) == "wd1_frac0.5_lr0.001_seed0_d16_mlp64_h2"
    assert member_name(tiny_config.replace(d_model=128, d_mlp=512, n_heads=4, d_head=32)).endswith("seed0")
    folders = train_ensemble(configs, tmp_path / "sizes", progress=False, threads=1)
    assert json.loads((tmp_path / "sizes" / SWEEP_FILE).read_text())["members"][3]["d_model"] == 16
    single = train(configs[3], tmp_path / "single", progress=False, threads=1)
    ours, theirs = open_run(folders[3]).load(30), single.load(30)
    for name in theirs:
        torch.testing.assert_close(ours[name], theirs[name], rtol=1e-5, atol=1e-6)
    with pytest.raises(GrokvizError, match="must divide d_model=7"):
        shape_grid(cfg, d_models=[7], n_heads=[2])
