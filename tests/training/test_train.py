"""The trainer: a tiny run learns, its checkpoints load back exactly, --resume is exact,
Ctrl-C leaves a resumable run, and the CLI refuses bad input in plain words."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from grokviz.commands.train import main
from grokviz.errors import GrokvizError
from grokviz.storage.resume import RESUME_FILE
from grokviz.storage.runs import load_checkpoint_file, open_run
from grokviz.training.schedule import ACCURACY_EVENTS, checkpoint_schedule
from grokviz.training.single import train

REPO = Path(__file__).resolve().parents[2]


def final_params(run_dir: Path) -> dict[str, torch.Tensor]:
    tensors = load_file(str(run_dir / RESUME_FILE))
    return {k.removeprefix("param/"): v for k, v in tensors.items() if k.startswith("param/")}


def test_tiny_run_memorises_and_checkpoints_load_back_exactly(tmp_path, tiny_config) -> None:
    run = train(tiny_config, tmp_path / "run", progress=False)
    log = run.log()
    assert log.train_accuracy.iloc[-1] == 1.0
    assert log.train_loss.iloc[-1] < 0.05 < log.train_loss.iloc[0]
    assert set(range(0, 301, tiny_config.log_every)) <= set(log.step)
    steps = run.steps()
    assert checkpoint_schedule(tiny_config) <= set(steps)
    # Every checkpoint carries the run's config and its own step.
    for step in steps:
        cfg, stored_step, params = load_checkpoint_file(run.checkpoint_path(step))
        assert cfg == tiny_config and stored_step == step
    # The last checkpoint holds exactly the trainer's final fp32 weights.
    last = run.load(steps[-1])
    for name, tensor in final_params(run.path).items():
        assert torch.equal(last[name], tensor), name
    # A shorter run with the same config reaches bit-identical weights at its end (determinism).
    short = train(tiny_config.replace(steps=100), tmp_path / "short", progress=False)
    for name, tensor in short.load(100).items():
        assert torch.equal(run.load(100)[name], tensor), name


def test_accuracy_events_add_checkpoints(tmp_path, tiny_config) -> None:
    run = train(tiny_config, tmp_path / "run", progress=False)
    log = run.log()
    first_full = int(log.step[log.train_accuracy >= 1.0].iloc[0])
    assert 1.0 in ACCURACY_EVENTS["train_accuracy"]
    assert first_full in run.steps()


def test_resume_after_interruption_reaches_the_same_weights(tmp_path, tiny_config) -> None:
    whole = train(tiny_config, tmp_path / "whole", progress=False)
    cut = train(tiny_config, tmp_path / "cut", progress=False, stop_after_steps=137)
    assert max(cut.steps()) == 137 and cut.log().step.max() < 137
    resumed = train(tiny_config, tmp_path / "cut", progress=False, resume=True)
    for name, tensor in final_params(whole.path).items():
        assert torch.equal(final_params(resumed.path)[name], tensor), name
    assert resumed.steps() == sorted(set(whole.steps()) | {137})
    columns = ["step", "train_loss", "train_accuracy", "test_loss", "test_accuracy"]
    assert resumed.log()[columns].equals(whole.log()[columns])


def test_resume_refuses_another_config(tmp_path, tiny_config) -> None:
    train(tiny_config, tmp_path / "run", progress=False, stop_after_steps=20)
    with pytest.raises(GrokvizError, match="differs"):
        train(tiny_config.replace(lr=3e-3), tmp_path / "run", progress=False, resume=True)


def test_refuses_to_overwrite_a_run(tmp_path, tiny_config) -> None:
    train(tiny_config.replace(steps=5), tmp_path / "run", progress=False)
    with pytest.raises(GrokvizError, match="not empty"):
        train(tiny_config.replace(steps=5), tmp_path / "run", progress=False)


def test_cli_reports_bad_input_without_traceback(tmp_path, capsys) -> None:
    assert main(["--out", str(tmp_path / "x"), "--p", "100", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "p=100 must be a prime" in err and "Traceback" not in err
    (tmp_path / "a-file").write_text("not a folder")
    assert main(["--out", str(tmp_path / "a-file"), "--p", "13", "--steps", "2", "--no-progress"]) == 2
    assert "exists and is not a folder" in capsys.readouterr().err


TINY_FLAGS = [
    "--p",
    "23",
    "--d-model",
    "64",
    "--d-mlp",
    "128",
    "--d-head",
    "16",
    "--frac-train",
    "0.5",
    "--steps",
    "3000",
    "--log-every",
    "10",
    "--save-every",
    "1000",
    "--no-progress",
]


def test_ctrl_c_saves_a_resumable_run(tmp_path) -> None:
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "grokviz", "train", "--out", str(out), *TINY_FLAGS],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 60
    while time.time() < deadline:  # wait until it is well into training
        log = out / "log.csv"
        if log.exists() and log.read_text().count("\n") > 30:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "continue with --resume" in err
    run = open_run(out)
    stopped = max(run.steps())
    assert 0 < stopped < 3000 and (out / RESUME_FILE).exists()
    assert main(["--out", str(out), "--resume", "--no-progress"]) == 0
    assert max(open_run(out).steps()) == 3000


def test_a_failed_write_stops_the_run_with_its_error(tmp_path, tiny_config, monkeypatch) -> None:
    # Files are written beside the loop (grokviz.writer); a write that fails must still stop the
    # run with its own error, and what was written before it stays readable and resumable.
    import grokviz.training.single as trainer

    real_save = trainer.save_checkpoint

    def save(out, step, params, cfg):
        if step >= 100:
            raise OSError(28, "No space left on device")
        return real_save(out, step, params, cfg)

    monkeypatch.setattr(trainer, "save_checkpoint", save)
    with pytest.raises(OSError, match="No space left"):
        train(tiny_config, tmp_path / "run", progress=False)
    run = open_run(tmp_path / "run")
    assert max(run.steps()) < 100 and run.log().step.max() <= 100
    monkeypatch.setattr(trainer, "save_checkpoint", real_save)
    resumed = train(tiny_config, tmp_path / "run", resume=True, progress=False)
    whole = train(tiny_config, tmp_path / "whole", progress=False)
    for name, tensor in final_params(whole.path).items():
        assert torch.equal(final_params(resumed.path)[name], tensor), name


def test_tf32_is_refused_on_a_cpu_before_anything_is_written(tmp_path, tiny_config) -> None:
    with pytest.raises(GrokvizError, match="tf32.*needs a CUDA device"):
        train(tiny_config.replace(matmul="tf32"), tmp_path / "run", device="cpu", progress=False)
    assert not (tmp_path / "run").exists()
    with pytest.raises(GrokvizError, match="matmul='bf16' must be one of"):
        tiny_config.replace(matmul="bf16")


def test_a_step_that_cannot_be_captured_leaves_no_folder(tmp_path, tiny_config, monkeypatch) -> None:
    import grokviz.training.ensemble as ensemble
    import grokviz.training.members as members
    import grokviz.training.single as trainer

    def refuse(step, state, use_graph=True):
        raise GrokvizError("this step cannot be captured as a CUDA graph (...); train with --eager")

    monkeypatch.setattr(trainer, "replayable", refuse)
    monkeypatch.setattr(members, "replayable", refuse)
    with pytest.raises(GrokvizError, match="--eager"):
        train(tiny_config, tmp_path / "run", progress=False)
    with pytest.raises(GrokvizError, match="--eager"):
        ensemble.train_ensemble([tiny_config], tmp_path / "sweep", progress=False)
    assert not (tmp_path / "run").exists() and not (tmp_path / "sweep").exists()
