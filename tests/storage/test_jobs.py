"""Training jobs (grokviz.storage.jobs): names that cannot escape the runs folder, the limits of a
shared app, the trainer's command line built from a config, reading a job's progress and its error,
and a real tiny job started, found by its lock, refused a second, stopped, resumed and extended."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from grokviz.commands.flags import config_from_args
from grokviz.commands.train import build_parser
from grokviz.core.config import Config
from grokviz.core.digits_config import DigitsConfig
from grokviz.core.groups_config import GroupsConfig
from grokviz.errors import GrokvizError
from grokviz.storage import jobs
from grokviz.storage.lock import FolderLock, holder, holder_pid


@pytest.mark.parametrize("name", ["../x", "/tmp/x", "a/b", "a b", ".hidden", "-rf", "", "x" * 65, "naïve", "a\nb"])
def test_names_that_leave_the_runs_folder_or_are_odd_are_refused(tmp_path, name) -> None:
    with pytest.raises(GrokvizError, match="run name"):
        jobs.check_name(tmp_path, name)


def test_a_plain_name_is_a_folder_in_the_runs_folder_and_a_taken_one_is_refused(tmp_path) -> None:
    assert jobs.check_name(tmp_path, "quick-p53.v2_a") == tmp_path / "quick-p53.v2_a"
    (tmp_path / "taken").mkdir()
    with pytest.raises(GrokvizError, match="already exists"):
        jobs.check_name(tmp_path, "taken")


def test_limits_come_from_the_environment(monkeypatch) -> None:
    monkeypatch.delenv(jobs.MAX_JOBS_ENV, raising=False)
    monkeypatch.delenv(jobs.READ_ONLY_ENV, raising=False)
    assert jobs.max_jobs() == 1 and not jobs.read_only()
    monkeypatch.setenv(jobs.MAX_JOBS_ENV, "3")
    monkeypatch.setenv(jobs.READ_ONLY_ENV, "1")
    assert jobs.max_jobs() == 3 and jobs.read_only()
    monkeypatch.setenv(jobs.MAX_JOBS_ENV, "many")
    with pytest.raises(GrokvizError, match="GROKVIZ_MAX_JOBS='many'"):
        jobs.max_jobs()


def test_read_only_refuses_to_start(tmp_path, monkeypatch, tiny_config) -> None:
    monkeypatch.setenv(jobs.READ_ONLY_ENV, "1")
    with pytest.raises(GrokvizError, match="GROKVIZ_READ_ONLY"):
        jobs.start(tmp_path, "run", tiny_config)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "cfg",
    [
        Config(p=53, frac_train=0.5, lr=3e-3, dropout=0.1, layernorm="post", grokfast="ema", grokfast_divide_lr=True),
        Config(data_seed=7, beta2=0.999, save_dtype="float16"),
    ],
)
def test_the_command_line_builds_the_same_config(tmp_path, cfg) -> None:
    argv = jobs.trainer_argv(cfg.family, tmp_path / "r", *jobs.config_args(cfg))
    assert argv[:4] == [sys.executable, "-m", "grokviz", "train"]
    args = build_parser().parse_args(argv[4:])
    assert config_from_args(args, Config) == cfg
    assert args.threads == 1 and args.no_progress


def test_each_family_runs_its_own_train_command(tmp_path) -> None:
    assert jobs.trainer_argv(DigitsConfig.family, tmp_path)[3] == "train-digits"
    assert jobs.trainer_argv(GroupsConfig.family, tmp_path)[3] == "train-group"
    assert "--group" in jobs.config_args(GroupsConfig(group="A4"))


def test_progress_is_read_from_the_log_tail(tmp_path) -> None:
    rows = ["step,train_loss,elapsed_s"] + [f"{step},0.5,{step / 50:.3f}" for step in range(0, 20001, 20)]
    (tmp_path / "log.csv").write_text("\n".join(rows) + "\n")
    step, rate = jobs.log_progress(tmp_path / "log.csv")
    assert step == 20000 and rate == pytest.approx(50.0)
    assert jobs.log_progress(tmp_path / "missing.csv") == (None, None)


def test_the_last_error_line_is_the_reason(tmp_path) -> None:
    out = tmp_path / "job.out"
    out.write_text("$ grokviz train\nerror: --p=24 must be a prime in [5, 997]\n")
    assert jobs.last_error(out) == "error: --p=24 must be a prime in [5, 997]"
    out.write_text('Traceback (most recent call last):\n  File "x"\nRuntimeError: out of memory\n')
    assert jobs.last_error(out) == "RuntimeError: out of memory"
    out.write_text("stopped at step 784; continue with --resume\n")
    assert jobs.last_error(out) is None


def test_holder_names_the_writer_without_taking_the_lock(tmp_path) -> None:
    run = tmp_path / "run"
    assert holder(run) is None
    with FolderLock(run, create=True):
        line = holder(run)
        assert holder_pid(line) == os.getpid()
        assert line == holder(run)  # asking twice took nothing
    assert holder(run) is None


def _wait(root, name, until, timeout=60.0) -> jobs.JobStatus:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = {s.name: s for s in jobs.list_jobs(root)}
        if name in found and until(found[name]):
            return found[name]
        time.sleep(0.2)
    raise AssertionError(f"{name}: not reached in {timeout} s: {found.get(name)}")


def test_a_job_is_found_by_its_lock_stopped_resumed_and_extended(tmp_path, monkeypatch, tiny_config) -> None:
    """A launched job trains in a process of its own (the trainer itself holds the run's lock); a
    second job is refused; Stop saves and ends it; --resume --steps N extends it to N.
    (tests/ui/test_app_lab.py kills the app that launched one.)"""
    monkeypatch.delenv(jobs.READ_ONLY_ENV, raising=False)
    monkeypatch.delenv(jobs.MAX_JOBS_ENV, raising=False)
    job = jobs.start(tmp_path, "tiny", tiny_config.replace(steps=400))
    assert os.getpgid(job.pid) != os.getpgid(0)  # its own session: a Ctrl-C to the app leaves it be
    running = _wait(tmp_path, "tiny", lambda s: s.state == "running" and (s.step or 0) >= 50)
    jobs.stop(running)  # first: it must not reach its last step before the stop
    assert running.total == 400 and running.steps_per_second > 0 and running.seconds_left > 0
    assert holder_pid(running.holder) == job.pid  # the launched process is the trainer
    with pytest.raises(GrokvizError, match="GROKVIZ_MAX_JOBS allows 1"):
        jobs.start(tmp_path, "second", tiny_config)

    stopped = _wait(tmp_path, "tiny", lambda s: s.state == "stopped")
    assert 50 <= stopped.step < 400 and stopped.holder is None and stopped.error is None
    assert "stopped at step" in Path(stopped.job.output).read_text()

    jobs.resume(tmp_path, tmp_path / "tiny", steps=450)  # resumed and extended past its 400
    finished = _wait(tmp_path, "tiny", lambda s: s.state == "finished", timeout=120)
    assert finished.step == finished.total == 450 and finished.job.action == "extend"
    with pytest.raises(GrokvizError, match="already exists"):
        jobs.start(tmp_path, "tiny", tiny_config)
    jobs.forget(tmp_path, finished)
    assert jobs.list_jobs(tmp_path) == [] and (tmp_path / "tiny" / "run.json").is_file()


def test_a_job_that_fails_says_why(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv(jobs.READ_ONLY_ENV, raising=False)
    (tmp_path / "digits").mkdir()  # a folder that is no run: resuming it is refused before launching
    with pytest.raises(GrokvizError, match="not a run folder"):
        jobs.resume(tmp_path, tmp_path / "digits")
    # A trainer that ends as the commands do on a bad value: one error line, exit status 2.
    # ("grokviz" in its command line: jobs tells a live trainer from a reused pid by it.)
    refusal = "import sys; print('error: --p=24 must be a prime in [5, 997]', file=sys.stderr); sys.exit(2)  # grokviz"
    jobs._launch(tmp_path, "bad", tmp_path / "bad", "start", [sys.executable, "-c", refusal])
    failed = _wait(tmp_path, "bad", lambda s: s.state == "failed")
    assert failed.error == "error: --p=24 must be a prime in [5, 997]" and failed.step is None


def test_the_names_copied_to_keep_torch_out_agree_with_their_owners() -> None:
    from grokviz.core.families import DEFAULT_FAMILY
    from grokviz.storage.log import LOG_FILE
    from grokviz.storage.runs import RUN_FILE

    assert (jobs.RUN_FILE, jobs.LOG_FILE, jobs._DEFAULT_FAMILY) == (RUN_FILE, LOG_FILE, DEFAULT_FAMILY)


def test_a_sweep_being_written_is_one_row_summed_over_its_members(tmp_path) -> None:
    writer = "pid 7 on host, since today: grokviz ensemble --out sweep"

    def row(name, step, total, rate, holder=writer):
        return jobs.JobStatus(name, tmp_path / name, "running", step, total, rate, holder, None)

    rows = jobs._sweeps_as_one(
        [
            row("sweep", None, None, None),
            row("sweep/a", 100, 400, 20.0),
            row("sweep/b", 50, 400, 10.0),
            row("solo", 5, 9, 1.0, "pid 8"),
        ]
    )
    assert [(r.name, r.step, r.total, r.steps_per_second, r.members) for r in rows] == [
        ("sweep", 150, 800, 30.0, 2),
        ("solo", 5, 9, 1.0, 0),
    ]
    assert rows[0].seconds_left == pytest.approx(650 / 30)
