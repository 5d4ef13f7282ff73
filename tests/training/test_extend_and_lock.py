"""`--resume --steps N` extends a finished run bit for bit (or refuses in words), and one writer per
run folder: a second trainer is refused with the holder named, a killed trainer's lock is stale."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from grokviz.commands.train import main
from grokviz.errors import GrokvizError
from grokviz.storage.lock import LOCK_FILE, FolderLock
from grokviz.storage.resume import load_resume_state
from grokviz.storage.runs import open_run
from grokviz.training.ensemble import train_ensemble
from grokviz.training.single import train

REPO = Path(__file__).resolve().parents[2]
COLUMNS = ["step", "train_loss", "train_accuracy", "test_loss", "test_accuracy"]


def assert_same_state(ours: Path, theirs: Path) -> None:
    """Weights, AdamW moments and filter state of two resume files, bit for bit."""
    (step_a, *groups_a, extra_a), (step_b, *groups_b, extra_b) = load_resume_state(ours), load_resume_state(theirs)
    assert step_a == step_b
    for group_a, group_b in zip([*groups_a, *extra_a.values()], [*groups_b, *extra_b.values()]):
        assert set(group_a) == set(group_b)
        for name in group_b:
            assert torch.equal(group_a[name], group_b[name]), name


@pytest.mark.parametrize("grokfast", ["none", "ema"])
def test_extending_a_finished_run_equals_training_that_long_from_the_start(tmp_path, tiny_config, grokfast) -> None:
    cfg = tiny_config.replace(grokfast=grokfast)  # 300 steps
    train(cfg.replace(steps=200), tmp_path / "extended", progress=False)
    extended = train(cfg, tmp_path / "extended", progress=False, resume=True)
    whole = train(cfg, tmp_path / "whole", progress=False)
    assert extended.config == whole.config == cfg  # run.json now says 300 steps
    assert_same_state(extended.path, whole.path)
    # The same log: rows before step 200 were logged on the 200-step run's checkpoint schedule
    # (its log-spaced steps differ), so compare every step both logged, and all rows from 200 on.
    ours, theirs = extended.log()[COLUMNS], whole.log()[COLUMNS]
    both = ours.merge(theirs, on="step", suffixes=("", "_whole"))
    assert len(both) >= len(theirs) - 5
    for column in COLUMNS[1:]:
        assert both[column].equals(both[f"{column}_whole"]), column
    late = lambda log: log[log.step >= 200].reset_index(drop=True)  # noqa: E731
    assert late(ours).equals(late(theirs))
    # Every checkpoint both runs saved is the same; those of the 200-step schedule still load.
    common = sorted(set(extended.steps()) & set(whole.steps()))
    assert 200 in extended.steps() and 300 in common and len(common) >= 8
    for step in common:
        for name, tensor in whole.load(step).items():
            assert torch.equal(extended.load(step)[name], tensor), (step, name)
    assert not extended.problems


def test_cli_resume_with_steps_extends_and_without_it_continues(tmp_path, tiny_config, capsys) -> None:
    out = tmp_path / "run"
    flags = ["--p", "23", "--d-model", "64", "--d-mlp", "128", "--d-head", "16", "--frac-train", "0.5"]
    assert main(["--out", str(out), *flags, "--steps", "60", "--log-every", "10", "--no-progress"]) == 0
    assert main(["--out", str(out), "--resume", "--no-progress"]) == 0  # finished: nothing to do
    assert open_run(out).log().step.max() == 60
    assert main(["--out", str(out), "--resume", "--steps", "100", "--no-progress"]) == 0
    run = open_run(out)
    assert run.config.steps == 100 and run.log().step.max() == 100 and max(run.steps()) == 100
    assert "step 100" in capsys.readouterr().out
    # Shortening is refused, in words.
    assert main(["--out", str(out), "--resume", "--steps", "80", "--no-progress"]) == 2
    assert "already at step 100; --steps 80 would shorten it" in capsys.readouterr().err


def test_a_cosine_schedule_is_not_extended(tmp_path, tiny_config) -> None:
    cfg = tiny_config.replace(steps=40, lr_schedule="cosine")
    train(cfg, tmp_path / "run", progress=False)
    with pytest.raises(GrokvizError, match="cosine schedule over its 40 steps.*cannot be extended exactly"):
        train(cfg.replace(steps=80), tmp_path / "run", progress=False, resume=True)
    assert open_run(tmp_path / "run").config.steps == 40  # nothing changed
    # Other changes than steps are still refused.
    with pytest.raises(GrokvizError, match="differs"):
        train(cfg.replace(steps=80, lr=3e-3), tmp_path / "run", progress=False, resume=True)


def test_a_second_lock_names_the_holder_and_a_released_one_is_removed(tmp_path) -> None:
    folder = tmp_path / "run"
    with FolderLock(folder, create=True):
        assert (folder / LOCK_FILE).read_text().startswith(f"pid {os.getpid()} on ")
        with pytest.raises(GrokvizError, match=rf"another trainer is writing this folder \(pid {os.getpid()} on "):
            FolderLock(folder, create=False).acquire()
    assert not folder.exists()  # created by the lock, still empty: removed with it
    with pytest.raises(GrokvizError, match="no such run folder"):
        FolderLock(folder, create=False).acquire()


TINY_FLAGS = ["--p", "23", "--d-model", "64", "--d-mlp", "128", "--d-head", "16", "--frac-train", "0.5"]


def start_trainer(out: Path, *flags: str) -> subprocess.Popen:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "grokviz",
            "train",
            "--out",
            str(out),
            *TINY_FLAGS,
            "--threads",
            "1",
            "--no-progress",
            *flags,
        ],
        cwd=REPO,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 60
    while time.time() < deadline:  # until it is training (its log has rows)
        log = out / "log.csv"
        if log.exists() and log.read_text().count("\n") > 5:
            return proc
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"the trainer did not start: {proc.communicate()}")


def test_a_second_trainer_is_refused_and_a_killed_trainers_lock_is_stale(tmp_path, capsys) -> None:
    out = tmp_path / "run"
    proc = start_trainer(out, "--steps", "100000", "--log-every", "10")
    try:
        # A resume and a fresh start on the held folder: one line naming the holder, exit 2.
        for argv in (["--out", str(out), "--resume"], ["--out", str(out), *TINY_FLAGS, "--steps", "50"]):
            assert main([*argv, "--no-progress"]) == 2
            err = capsys.readouterr().err
            assert err.count("\n") == 1 and "another trainer is writing this folder" in err
            assert f"pid {proc.pid} " in err and "grokviz train" in err and "Traceback" not in err
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    assert (out / LOCK_FILE).exists()  # left behind by the kill: a name tag, no longer a lock
    assert main(["--out", str(out), "--resume", "--steps", "300", "--no-progress"]) == 0
    assert open_run(out).log().step.max() == 300 and not (out / LOCK_FILE).exists()


def test_the_ensemble_locks_its_sweep_and_member_folders(tmp_path, tiny_config, monkeypatch) -> None:
    import grokviz.training.ensemble as ensemble

    out = tmp_path / "sweep"
    configs = [tiny_config.replace(steps=5, seed=seed) for seed in (0, 1)]
    real = ensemble.train_members
    refused = []

    def while_training(configs, folders, *args, **kwargs):
        # What a `grokviz.train --resume` of a member (or a second ensemble) meets meanwhile.
        for folder in (out, *folders):
            with pytest.raises(GrokvizError, match=rf"another trainer is writing this folder \(pid {os.getpid()} "):
                FolderLock(folder, create=False).acquire()
            refused.append(folder.name)
        return real(configs, folders, *args, **kwargs)

    monkeypatch.setattr(ensemble, "train_members", while_training)
    folders = train_ensemble(configs, out, progress=False)
    assert len(refused) == 3 and all(open_run(f).log().step.max() == 5 for f in folders)
    assert not list(out.rglob(LOCK_FILE))  # released
