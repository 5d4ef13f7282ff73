"""Composition in a finite group trained by the modular family's trainers: the dataset follows
the token contract, a run trains, resumes bit for bit, extends, and an ensemble member equals its
single run; bad groups are refused before anything is written."""

from __future__ import annotations

import pytest
import torch

from grokviz.core.groups import parse_group
from grokviz.core.groups_config import GroupsConfig
from grokviz.core.stored import ConfigError
from grokviz.storage.runs import open_run
from grokviz.training.ensemble import train_ensemble
from grokviz.training.single import train

TINY = dict(d_model=16, n_heads=2, d_head=8, d_mlp=32, steps=40, log_every=10, save_every=20, save_log_points=0)


def test_dataset_is_the_groups_table_in_token_order() -> None:
    cfg = GroupsConfig(group="S3", frac_train=0.5)
    data = cfg.dataset()
    group = parse_group("S3")
    assert cfg.p == 6 == group.order and data.p == 6
    assert len(data.a) == 36 and len(data.train_idx) == 18
    # Row-major pairs, the answer of (a, b) the token of a∘b, '=' the token |G|.
    assert data.a.tolist()[:7] == [0, 0, 0, 0, 0, 0, 1] and data.b.tolist()[:7] == [0, 1, 2, 3, 4, 5, 0]
    assert data.labels.tolist() == group.table.reshape(-1).tolist()
    assert data.tokens[13].tolist() == [2, 1, 6]
    # S3 tokens: (0,1,2), (0,2,1), (1,0,2), ...: token 1 ∘ token 2 = (0,2,1)∘(1,0,2) = (2,0,1), token 4.
    assert data.labels[1 * 6 + 2].item() == 4


def test_p_is_the_groups_order_and_bad_groups_are_refused() -> None:
    assert GroupsConfig(group="d12").p == 24 and GroupsConfig(group="d12").group == "D12"
    with pytest.raises(ConfigError, match=r"group='S9' is not supported: choose S3..S6, A4, A5, D3..D100 or Z2..Z997"):
        GroupsConfig(group="S9")
    with pytest.raises(ConfigError, match=r"p=113 must be 120, the order of S5"):
        GroupsConfig(group="S5", p=113)
    with pytest.raises(ConfigError, match=r"task='add' must be one of \('compose',\)"):
        GroupsConfig(task="add")
    assert GroupsConfig.from_json(GroupsConfig(group="A4").to_json()) == GroupsConfig(group="A4")


def test_a_group_run_trains_resumes_exactly_and_is_of_its_family(tmp_path) -> None:
    cfg = GroupsConfig(group="D4", frac_train=0.5, **TINY)
    whole = train(cfg, tmp_path / "whole", progress=False, device="cpu")
    assert whole.config == cfg and whole.family == "groups"
    log = whole.log()
    assert log.step.iloc[-1] == 40 and log.train_loss.iloc[-1] < log.train_loss.iloc[0]
    train(cfg, tmp_path / "cut", progress=False, device="cpu", stop_after_steps=25)
    resumed = train(cfg, tmp_path / "cut", progress=False, device="cpu", resume=True)
    for name, tensor in whole.load(40).items():
        assert torch.equal(tensor, resumed.load(40)[name]), name
    extended = train(cfg.replace(steps=60), tmp_path / "cut", progress=False, device="cpu", resume=True)
    assert extended.log().step.iloc[-1] == 60


def test_an_ensemble_member_equals_its_single_run(tmp_path) -> None:
    base = GroupsConfig(group="S3", frac_train=0.5, **TINY)
    configs = [base.replace(seed=seed) for seed in (0, 1)]
    folders = train_ensemble(configs, tmp_path / "sweep", progress=False, device="cpu")
    single = train(configs[1], tmp_path / "single", progress=False, device="cpu")
    member = open_run(folders[1])
    assert member.config == configs[1]
    for name, tensor in single.load(40).items():
        torch.testing.assert_close(member.load(40)[name], tensor, rtol=0, atol=1e-6)


def test_members_of_two_families_are_refused(tmp_path) -> None:
    from grokviz.core.config import Config
    from grokviz.errors import GrokvizError

    with pytest.raises(GrokvizError, match="one task family"):
        train_ensemble([Config(p=7, **TINY), GroupsConfig(group="Z7", **TINY)], tmp_path / "x", progress=False)
    assert not (tmp_path / "x").exists()
