"""The groups family from the command line: ``grokviz train-group`` and ``grokviz ensemble --group``
train, ``grokviz analyze`` reports the group's keys, and bad input is refused in one line with
nothing written."""

from __future__ import annotations

import json

import pytest

from grokviz.analysis.groups import summarise_group_checkpoint
from grokviz.cli import main as grokviz
from grokviz.core.groups_config import GroupsConfig
from grokviz.storage.runs import open_run

SHAPE = ["--d-model", "16", "--n-heads", "2", "--d-head", "8", "--d-mlp", "32", "--no-progress", "--device", "cpu"]
GROUP_KEYS = {"group", "key_irreps", "irrep_dims", "character_fve"}
SHARED_KEYS = {"step", "p", "task", "train_loss", "test_loss", "train_accuracy", "test_accuracy"}
SHARED_KEYS |= {"fraction_neurons_clustered", "excluded_loss", "restricted_loss"}


@pytest.fixture(scope="module")
def d4_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("groups") / "d4"
    assert grokviz(["train-group", "--group", "D4", "--out", str(out), "--steps", "60", *SHAPE]) == 0
    return open_run(out)


def test_train_group_writes_a_groups_run(d4_run) -> None:
    assert d4_run.family == "groups"
    assert d4_run.config == GroupsConfig(group="D4", steps=60, d_model=16, n_heads=2, d_head=8, d_mlp=32)
    assert d4_run.config.p == 8 and d4_run.steps()[-1] == 60


def test_analyze_json_has_the_group_keys_and_the_summary_values(d4_run, capsys) -> None:
    assert grokviz(["analyze", str(d4_run.path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert GROUP_KEYS | SHARED_KEYS <= set(out)
    assert out["group"] == "D4" and out["p"] == 8 and out["step"] == 60
    # D4 (order 8): four 1-dim irreps and one 2-dim: 4 x 1 + 2² = 8.
    assert out["irrep_dims"] == {"trivial": 1, "flip": 1, "alt": 1, "alt-flip": 1, "rot 1": 2}
    assert sum(out["character_fve"].values()) <= 1 + 1e-9
    data = d4_run.config.dataset()
    expected = summarise_group_checkpoint(
        "D4", d4_run.load(60), d4_run.config.architecture, data.train_idx, data.test_idx
    )
    assert out["train_accuracy"] == expected["train_accuracy"] and out["test_loss"] == pytest.approx(
        expected["test_loss"]
    )
    log = d4_run.log().iloc[-1]
    assert out["test_accuracy"] == pytest.approx(log.test_accuracy)  # the log and analyze agree


def test_analyze_refuses_frequency_options_for_a_group_run(d4_run, capsys) -> None:
    assert grokviz(["analyze", str(d4_run.path), "--key-freqs", "1"]) == 2
    assert "is a finite-group run; --key-freqs is for modular-arithmetic runs only" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--group", "S9"], "--group='S9' is not supported: choose S3..S6, A4, A5, D3..D100 or Z2..Z997"),
        (["--group", "D2"], "--group='D2' is not supported"),
        (["--group", "S5", "--p", "113"], "--p=113 must be 120, the order of S5 (leave it unset)"),
        (["--group", "A5", "--task", "add"], "--task='add' must be one of ('compose',) for a group"),
    ],
)
def test_bad_groups_are_refused_in_one_line_and_nothing_is_written(tmp_path, capsys, argv, message) -> None:
    for command in ("train-group", "ensemble"):
        out = tmp_path / command
        assert grokviz([command, "--out", str(out), "--steps", "5", *argv]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and message in err[0]
        assert not out.exists()


def test_a_run_whose_checkpoints_disagree_with_its_group_is_refused(d4_run, tmp_path, capsys) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(d4_run.path, copy)
    meta = json.loads((copy / "run.json").read_text())
    meta["config"]["group"], meta["config"]["p"] = "D5", 10  # a group of another order than the weights
    (copy / "run.json").write_text(json.dumps(meta))
    assert grokviz(["analyze", str(copy)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "no checkpoint of the run can be read" in err
    assert "p=8 (run: 10), group='D4' (run: 'D5')" in err


def test_a_group_run_is_refused_by_another_familys_reader(d4_run, capsys) -> None:
    assert grokviz(["train-digits", "--out", str(d4_run.path), "--resume"]) == 2
    err = capsys.readouterr().err
    assert "is a finite-group run" in err and "needs a 10-digit adder run" in err


def test_ensemble_group_members_train(tmp_path) -> None:
    out = tmp_path / "sweep"
    assert grokviz(["ensemble", "--group", "S3", "--out", str(out), "--seeds", "0,1", "--steps", "20", *SHAPE]) == 0
    members = sorted(p for p in out.iterdir() if p.is_dir())
    assert len(members) == 2
    configs = [open_run(m).config for m in members]
    assert {c.seed for c in configs} == {0, 1} and all(c.group == "S3" and c.frac_train == 0.6 for c in configs)
