"""The ensemble trainer: every member equals the single run with its config (the key property),
the sweep folder it writes is read back by the run loader, and its CLI builds the grid."""

from __future__ import annotations

import json

import pytest
import torch

from grokviz.commands.ensemble import main
from grokviz.commands.flags import seeds as parse_seeds
from grokviz.errors import GrokvizError
from grokviz.storage.runs import SWEEP_FILE, list_runs, open_run
from grokviz.storage.sweeps import member_name
from grokviz.training.ensemble import train_ensemble
from grokviz.training.grids import grid_configs
from grokviz.training.schedule import checkpoint_schedule
from grokviz.training.single import train

LOG_COLUMNS = ["train_loss", "train_accuracy", "test_loss", "test_accuracy"]


def test_each_member_equals_its_single_run(tmp_path, tiny_config) -> None:
    # Different seeds and weight decays; one member with another lr, one with another train
    # fraction (a training set of another size: trained in its own group).
    configs = [
        tiny_config.replace(seed=0, weight_decay=1.0),
        tiny_config.replace(seed=1, weight_decay=0.3),
        tiny_config.replace(seed=2, weight_decay=0.0, lr=3e-3),
        tiny_config.replace(seed=3, weight_decay=1.0, frac_train=0.3),
    ]
    folders = train_ensemble(configs, tmp_path / "sweep", progress=False)
    for folder, cfg in zip(folders, configs):
        member = open_run(folder)
        single = train(cfg, tmp_path / f"single-{folder.name}", progress=False)
        assert member.config == cfg
        # Same float32 weights after 300 steps (bit-identical on the CI CPU; the tolerance
        # leaves room for another BLAS only).
        ours, theirs = member.load(cfg.steps), single.load(cfg.steps)
        for name in theirs:
            torch.testing.assert_close(ours[name], theirs[name], rtol=1e-5, atol=1e-6, msg=f"{folder.name} {name}")
        # The same log at every step both logged (float64 losses: summation order only).
        both = member.log().merge(single.log(), on="step", suffixes=("_member", "_single"))
        assert len(both) == len(member.log()) == cfg.steps // cfg.log_every + 1
        for column in LOG_COLUMNS:
            torch.testing.assert_close(
                torch.tensor(both[f"{column}_member"].values),
                torch.tensor(both[f"{column}_single"].values),
                rtol=1e-9,
                atol=1e-12,
            )


def test_sweep_folder_holds_ordinary_runs(tmp_path, tiny_config) -> None:
    cfg = tiny_config.replace(steps=40)
    configs = grid_configs(cfg, seeds=[0, 1], weight_decays=[0.5, 1.0])
    train_ensemble(configs, tmp_path / "ends", progress=False)
    body = json.loads((tmp_path / "ends" / SWEEP_FILE).read_text())
    assert body["format"] == "grokviz.sweep/1"
    assert body["axes"] == {"weight_decay": [0.5, 1.0], "seed": [0, 1]}
    assert [m["name"] for m in body["members"]] == [member_name(c) for c in configs]
    runs, problems = list_runs(tmp_path / "ends")
    assert not problems and sorted(r.config.to_json() for r in runs) == sorted(c.to_json() for c in configs)
    assert all(r.steps() == [0, 40] and r.source == "grokviz.ensemble" for r in runs)
    # With the single run's schedule, a member saves what the single run saves.
    (folder,) = train_ensemble([cfg], tmp_path / "schedule", save="schedule", progress=False)
    single = train(cfg, tmp_path / "single", progress=False)
    assert checkpoint_schedule(cfg) <= set(open_run(folder).steps()) == set(single.steps())
    # ... and every one holds the single run's weights of that step: the weights before that
    # step's update (an earlier version saved them after it, one update late).
    for step in single.steps():
        ours, theirs = open_run(folder).load(step), single.load(step)
        assert all(torch.equal(ours[name], theirs[name]) for name in theirs), f"step {step}"
    # The folder of sweeps is not a folder of broken runs.
    runs, problems = list_runs(tmp_path)
    assert [r.name for r in runs] == ["single"] and problems == []


def test_members_may_differ_only_in_member_fields(tmp_path, tiny_config) -> None:
    with pytest.raises(GrokvizError, match="differ only in"):
        train_ensemble([tiny_config, tiny_config.replace(p=29)], tmp_path / "x", progress=False)
    with pytest.raises(GrokvizError, match="same config"):
        train_ensemble([tiny_config, tiny_config], tmp_path / "y", progress=False)


def test_cli_trains_the_grid(tmp_path, capsys) -> None:
    out = tmp_path / "sweep"
    flags = ["--p", "23", "--d-model", "32", "--d-mlp", "64", "--d-head", "8", "--steps", "20", "--log-every", "10"]
    assert (
        main(
            [
                "--out",
                str(out),
                "--seeds",
                "0-1",
                "--weight-decay",
                "0,1",
                "--frac-train",
                "0.3,0.5",
                "--no-progress",
                *flags,
            ]
        )
        == 0
    )
    runs, problems = list_runs(out)
    assert len(runs) == 8 and not problems
    assert {(r.config.seed, r.config.weight_decay, r.config.frac_train) for r in runs} == {
        (s, w, f) for s in (0, 1) for w in (0.0, 1.0) for f in (0.3, 0.5)
    }
    assert all(r.config.p == 23 and r.config.d_model == 32 for r in runs)
    assert main(["--out", str(out), "--no-progress", *flags]) == 2  # not empty
    assert main(["--out", str(tmp_path / "bad"), "--p", "100", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "not empty" in err and "p=100 must be a prime" in err and "Traceback" not in err


def test_parse_seeds() -> None:
    assert parse_seeds("0-3") == [0, 1, 2, 3]
    assert parse_seeds("0,3,5-6") == [0, 3, 5, 6]
