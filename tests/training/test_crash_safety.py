"""Killed trainers and concurrent readers: nothing saved is ever lost or seen half-written."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from grokviz.commands.train import main
from grokviz.storage.resume import RESUME_FILE
from grokviz.storage.runs import open_run

REPO = Path(__file__).resolve().parents[2]


def tiny_flags(steps: int = 400, save_every: int = 50) -> list[str]:
    return [
        "--p",
        "13",
        "--d-model",
        "16",
        "--d-mlp",
        "32",
        "--n-heads",
        "2",
        "--d-head",
        "8",
        "--frac-train",
        "0.5",
        "--steps",
        str(steps),
        "--log-every",
        "10",
        "--save-every",
        str(save_every),
        "--save-log-points",
        "4",
        "--no-progress",
    ]


FLAGS = tiny_flags()

# Runs the trainer CLI, but SIGKILLs itself in the middle of its Nth file write: the temporary
# file exists and is half written, exactly what a kill during a checkpoint write leaves.
DYING_TRAINER = textwrap.dedent("""
    import os, signal, sys
    import grokviz.storage.resume as resume
    import grokviz.storage.runs as runs
    from grokviz.commands.train import main

    target, seen = int(os.environ["KILL_AT_WRITE"]), [0]
    real_save = runs.save_file

    def dying_save(tensors, path, metadata=None):
        seen[0] += 1
        if seen[0] == target:
            with open(path, "wb") as handle:
                handle.write(b"half a checkpoint")
            os.kill(os.getpid(), signal.SIGKILL)
        return real_save(tensors, path, metadata=metadata)

    runs.save_file = resume.save_file = dying_save  # checkpoints and resume states alike
    sys.exit(main(sys.argv[1:]))
""")


def final_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return {k: v for k, v in load_file(str(run_dir / RESUME_FILE)).items() if k.startswith("param/")}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("whole") / "run"
    assert main(["--out", str(out), *FLAGS]) == 0
    return out


def assert_intact(run_dir: Path, reference: Path) -> None:
    """Every checkpoint file present loads, and equals the uninterrupted run's at that step."""
    run, whole = open_run(run_dir), open_run(reference)
    assert run.problems == []
    for step in run.steps():
        for name, tensor in run.load(step).items():
            assert torch.equal(tensor, whole.load(step)[name]), (step, name)


@pytest.mark.parametrize("kill_at_write", [1, 3, 8, 15, 24])
def test_sigkill_during_a_write_loses_nothing_and_resumes_exactly(tmp_path, uninterrupted, kill_at_write) -> None:
    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-c", DYING_TRAINER, "--out", str(out), *FLAGS],
        cwd=REPO,
        env={**os.environ, "KILL_AT_WRITE": str(kill_at_write)},
        capture_output=True,
        timeout=120,
    )
    assert proc.returncode == -signal.SIGKILL
    assert list(out.glob(".*.tmp")), "the kill should leave a half-written temporary file"
    assert_intact(out, uninterrupted)  # the half-written file is invisible to readers
    saved_before = set(open_run(out).steps())
    if (out / RESUME_FILE).exists():
        assert main(["--out", str(out), "--resume", "--no-progress"]) == 0
    else:  # killed before the first resumable checkpoint: start again
        return
    assert not list(out.glob(".*.tmp"))
    assert saved_before <= set(open_run(out).steps())  # no saved step lost
    assert_intact(out, uninterrupted)
    for name, tensor in final_weights(uninterrupted).items():
        assert torch.equal(final_weights(out)[name], tensor), name


def test_sigkill_at_random_moments(tmp_path, uninterrupted) -> None:
    out = tmp_path / "run"
    for attempt, wait_lines in enumerate((5, 15, 30)):
        args = ["--out", str(out), *FLAGS] + (["--resume"] if attempt else [])
        proc = subprocess.Popen(
            [sys.executable, "-m", "grokviz", "train", *args],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.time() + 60
        while time.time() < deadline and proc.poll() is None:
            log = out / "log.csv"
            if log.exists() and log.read_text().count("\n") > wait_lines:
                break
            time.sleep(0.01)
        proc.kill()
        proc.wait()
        assert_intact(out, uninterrupted)
    assert main(["--out", str(out), "--resume", "--no-progress"]) == 0
    assert_intact(out, uninterrupted)
    for name, tensor in final_weights(uninterrupted).items():
        assert torch.equal(final_weights(out)[name], tensor), name


def test_readers_never_see_half_written_checkpoints_or_torn_log_lines(tmp_path) -> None:
    out = tmp_path / "run"
    trainer = subprocess.Popen(
        [sys.executable, "-m", "grokviz", "train", "--out", str(out), *tiny_flags(2000, 25)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    analyze_cmd = [sys.executable, "-m", "grokviz", "analyze", str(out), "--json"]
    analyzers: list[subprocess.Popen] = []
    loads = reads = 0
    seen_steps: set[int] = set()
    try:
        while trainer.poll() is None:
            if not (out / "run.json").exists():
                continue
            run = open_run(out)
            steps = run.steps()
            assert run.problems == []
            for step in set(steps) - seen_steps:
                run.load(step)
                loads += 1
            seen_steps |= set(steps)
            log = run.log()
            assert run.problems == [] and log.step.is_monotonic_increasing
            assert log.notna().all().all()
            reads += 1
            if steps and len(analyzers) < 3 and reads % 20 == 0:  # the CLI reading mid-training too
                analyzers.append(
                    subprocess.Popen(analyze_cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                )
    finally:
        trainer.kill()
    assert trainer.returncode == 0, trainer.stderr.read()
    assert loads >= 20 and reads >= 20, (loads, reads)
    assert analyzers, "the trainer finished before any analyze call started"
    for proc in analyzers:
        stdout, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0, stderr
        assert '"step"' in stdout
