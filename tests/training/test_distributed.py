"""Sweeps as Ray tasks and resumable sweeps: through a local Ray (2 CPUs) a sweep equals the in-process
one bit for bit, a killed worker's group is re-run from its resume state, Ctrl-C leaves a sweep that
opens, and ``--resume`` trains only the members that are missing or unfinished. Without Ray, ``--ray``
is refused in words (that test runs everywhere; the others skip where Ray is not installed)."""

from __future__ import annotations

import builtins
import os
from pathlib import Path

import pytest
import torch

from grokviz.commands.ensemble import main
from grokviz.core.config import Config
from grokviz.errors import GrokvizError
from grokviz.storage.log import LOG_FILE
from grokviz.storage.runs import checkpoint_name, open_run
from grokviz.storage.sweeps import open_sweep, outcome_table
from grokviz.training import distributed
from grokviz.training.ensemble import train_ensemble
from grokviz.training.grids import grid_configs

REPO = Path(__file__).resolve().parents[2]
LOGGED = ["step", "train_loss", "train_accuracy", "test_loss", "test_accuracy"]  # not elapsed_s


def small() -> Config:
    return Config(p=19, d_model=32, d_mlp=64, n_heads=2, d_head=16, steps=120, log_every=10, save_every=40)


def sweep_configs() -> list[Config]:
    return grid_configs(small(), seeds=[0, 1], weight_decays=[0.5, 1.0])  # 4 members, 2 groups of 2


@pytest.fixture(scope="module")
def ray():
    """One local Ray instance (2 CPUs) for every test here; run_sweep joins it instead of starting one."""
    ray = pytest.importorskip("ray", reason="Ray is an optional extra (pip install 'grokviz[ray]')")
    env = {"PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)}
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": env})
    yield ray
    ray.shutdown()


def on_ray(configs, out, **kwargs):
    return distributed.run_sweep(configs, out, ray_address="local", threads=1, progress=False, group_size=2, **kwargs)


def assert_same_members(ours: list[Path], theirs: list[Path]) -> None:
    """Every member: the same checkpoints, bit for bit, and the same log (but its timings)."""
    assert [f.name for f in ours] == [f.name for f in theirs]
    for a, b in zip(ours, theirs):
        run_a, run_b = open_run(a), open_run(b)
        assert run_a.config == run_b.config
        assert run_a.steps() == run_b.steps() and run_a.steps()
        for step in run_a.steps():
            wa, wb = run_a.load(step), run_b.load(step)
            assert all(torch.equal(wa[k], wb[k]) for k in wb), f"{a.name} step {step}"
        assert run_a.log()[LOGGED].equals(run_b.log()[LOGGED]), a.name


@pytest.fixture(scope="module")
def in_process(tmp_path_factory) -> list[Path]:
    return train_ensemble(sweep_configs(), tmp_path_factory.mktemp("inproc") / "sweep", progress=False, group_size=2)


def test_ray_sweep_equals_in_process_bit_for_bit(ray, in_process, tmp_path) -> None:
    folders = on_ray(sweep_configs(), tmp_path / "sweep")
    assert_same_members(folders, in_process)
    sweep = open_sweep(tmp_path / "sweep")
    assert [m.name for m in sweep.members] == [f.name for f in in_process]
    assert list(outcome_table(sweep)["last_step"]) == [small().steps] * 4


def test_killed_worker_is_retried_from_its_resume_state(ray, in_process, tmp_path, monkeypatch) -> None:
    marker = tmp_path / "died"
    monkeypatch.setenv(distributed.DIE_ONCE_ENV, str(marker))
    folders = on_ray(sweep_configs(), tmp_path / "sweep")
    # One worker killed itself (os._exit) right after its group's resume state of step 40 ...
    assert marker.read_text().endswith("died after the resume state of step 40\n")
    # ... and the re-run group, continued from there, ends exactly as if nothing had happened.
    assert_same_members(folders, in_process)


def test_ctrl_c_cancels_the_tasks_and_leaves_a_sweep_that_opens(ray, in_process, tmp_path, monkeypatch) -> None:
    cancelled = []
    monkeypatch.setattr(ray, "wait", lambda refs, num_returns: (_ for _ in ()).throw(KeyboardInterrupt()))
    real_cancel = ray.cancel
    monkeypatch.setattr(ray, "cancel", lambda ref, force: (cancelled.append(ref), real_cancel(ref, force=force)))
    with pytest.raises(KeyboardInterrupt):
        on_ray(sweep_configs(), tmp_path / "sweep")
    assert len(cancelled) == 2  # both groups' tasks
    sweep = open_sweep(tmp_path / "sweep")
    assert len(sweep.members) == 4 and all(m.open().config for m in sweep.members)
    assert len(outcome_table(sweep)) == 4
    monkeypatch.undo()
    # and --resume finishes it, the same as in one go.
    assert_same_members(on_ray(sweep_configs(), tmp_path / "sweep", resume=True), in_process)


def test_resume_trains_only_the_missing_and_unfinished_members(ray, in_process, tmp_path, monkeypatch) -> None:
    folders = on_ray(sweep_configs(), tmp_path / "sweep")
    missing, unfinished, *done = folders
    for path in missing.iterdir():
        path.unlink()
    missing.rmdir()
    # Unfinished: killed after step 80's resume state (the log keeps rows to 80, no last checkpoint).
    (unfinished / checkpoint_name(small().steps)).unlink()
    log = (unfinished / LOG_FILE).read_text().splitlines(keepends=True)
    (unfinished / LOG_FILE).write_text("".join(log[: 1 + 9]))  # header + steps 0..80
    before = {f: {p.name: p.stat().st_mtime_ns for p in f.iterdir()} for f in done}
    trained = []
    real = distributed.train_group
    monkeypatch.setattr(distributed, "train_group", lambda cfgs, fs, **kw: (trained.extend(fs), real(cfgs, fs, **kw)))
    # In this process (the same planning as on Ray, which the Ctrl-C test resumes through).
    distributed.run_sweep(sweep_configs(), tmp_path / "sweep", threads=1, progress=False, group_size=2, resume=True)
    assert sorted(Path(f).name for f in trained) == sorted([missing.name, unfinished.name])
    assert {f: {p.name: p.stat().st_mtime_ns for p in f.iterdir()} for f in done} == before  # untouched
    assert_same_members(folders, in_process)


def test_resume_refuses_another_grid(ray, tmp_path) -> None:
    on_ray(sweep_configs()[:2], tmp_path / "sweep")
    with pytest.raises(GrokvizError, match="--resume needs the sweep's own grid"):
        on_ray(sweep_configs(), tmp_path / "sweep", resume=True)


def test_ray_refused_in_words_without_ray(tmp_path, monkeypatch, capsys) -> None:
    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    assert main(["--out", str(tmp_path / "sweep"), "--ray", "local", "--steps", "10", "--no-progress"]) == 2
    assert capsys.readouterr().err == f"error: {distributed.RAY_MISSING}\n"
    assert not (tmp_path / "sweep").exists()


def test_cli_resume_without_ray(tmp_path, capsys) -> None:
    flags = ["--out", str(tmp_path / "sweep"), "--p", "13", "--d-model", "16", "--d-mlp", "32", "--n-heads", "2"]
    flags += [
        "--d-head",
        "8",
        "--steps",
        "20",
        "--log-every",
        "10",
        "--seeds",
        "0-1",
        "--no-progress",
        "--threads",
        "1",
    ]
    assert main(flags) == 0
    assert main(flags) == 2 and "or pass --resume" in capsys.readouterr().err
    assert main([*flags, "--resume"]) == 0  # nothing left: trains nothing
    assert "2 members, all trained" in capsys.readouterr().out


def test_ctrl_c_at_the_command_line_says_how_to_go_on(tmp_path, monkeypatch, capsys) -> None:
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(distributed, "run_sweep", interrupted)
    out = tmp_path / "sweep"
    assert main(["--out", str(out), "--steps", "10", "--seeds", "0-2", "--resume", "--no-progress"]) == 130
    assert capsys.readouterr().err == (
        f"stopped: {out} holds 0 of 3 members finished; continue with the same command and --resume\n"
    )


def test_ray_starts_the_longest_groups_first() -> None:
    # Adder groups of 3 at d 4, d 8 and d 4 (another lr), and one member of d 8 alone: the d 8 group
    # of 3 first, ties in grid order, the single member last. Order changes no result.
    from grokviz.core.digits_config import DigitsConfig
    from grokviz.training.distributed import largest_first

    small, large = DigitsConfig(d_model=4, d_mlp=16), DigitsConfig(d_model=8, d_mlp=32)
    configs = [small] * 3 + [large] * 3 + [small.replace(lr=0.01)] * 3 + [large.replace(lr=0.01)]
    groups = [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    assert largest_first(groups, configs) == [[3, 4, 5], [0, 1, 2], [6, 7, 8], [9]]
