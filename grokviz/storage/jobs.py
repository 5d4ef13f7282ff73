"""Training jobs: a trainer started as a process of its own (``grokviz train``, ``train-group``,
``train-digits``), and every run being written under a runs folder. No Streamlit: the app's New run
page calls this, and the tests do.

A job is launched detached (a new session, stdin closed, its output to a file): it keeps training
through the app's reruns, a closed tab and a restarted or killed app. What the app needs to find it
again lives in files, never in the app's memory:

* the run's writer lock (``grokviz.storage.lock``) says a run is being written, and by whom, whatever
  started it (the app or a terminal);
* a job record, ``<runs>/.grokviz-jobs/<name>.json`` (the folder is hidden from the run lists), says
  what the app launched (the command, pid, start time), and ``<name>.out`` holds its output, whose
  last ``error:`` line is the reason a failed job gives;
* the run's ``run.json`` and the tail of its ``log.csv`` give step / total, steps per second and the
  time left.

Stop is SIGINT to the trainer: it stops at the next step boundary and saves (as after Ctrl-C,
``grokviz.training.stop``), so the run stays loadable and resumable. The limits of a shared app are
environment variables: ``GROKVIZ_MAX_JOBS`` (default 1) trainings launched at once, and
``GROKVIZ_READ_ONLY=1``, which refuses every launch and stop.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import MISSING, dataclass, fields
from pathlib import Path

from grokviz.core.stored import StoredConfig
from grokviz.errors import GrokvizError
from grokviz.storage.lock import LOCK_FILE, holder, holder_pid
from grokviz.storage.run_progress import (  # noqa: F401 (the jobs list's reading of a run's files, re-exported)
    _DEFAULT_FAMILY,
    LOG_FILE,
    RUN_FILE,
    last_error,
    log_progress,
    not_extendable,
    run_family,
    run_json,
)

# The family table, the run folder and the log's modules are imported where used: they import torch,
# and the app reads the limits below (and builds its menu) before it imports torch (its fast start).

JOBS_FOLDER = ".grokviz-jobs"
MAX_JOBS_ENV, READ_ONLY_ENV = "GROKVIZ_MAX_JOBS", "GROKVIZ_READ_ONLY"
# A run name: one folder directly under the runs folder, in characters every shell and URL takes as
# they are. Nothing else: no "/", no "..", no leading dot (hidden) or dash (read as a flag).
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
NAME_RULE = "1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
# The trainers run on one thread: on the 2-core machines this targets, a second thread costs more
# in wake-ups than it saves, and the app's own process needs the other core.
THREADS = 1
STARTING_S = 120.0  # a live job without the lock this soon after launch is starting, later ending


def read_only() -> bool:
    """``GROKVIZ_READ_ONLY=1`` (or true/yes): the app starts and stops nothing."""
    return os.environ.get(READ_ONLY_ENV, "").strip().lower() in ("1", "true", "yes")


def max_jobs() -> int:
    """``GROKVIZ_MAX_JOBS``: how many trainings the app may have launched at once (default 1)."""
    text = os.environ.get(MAX_JOBS_ENV, "").strip()
    if not text:
        return 1
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise GrokvizError(f"{MAX_JOBS_ENV}={text!r}: give a whole number of jobs, at least 0")
    return value


def check_name(root: str | os.PathLike, name: str) -> Path:
    """The run folder ``root/name`` for a new run; a name that is not a plain folder name, or that
    is taken (a run, a file, or a job's record), is refused in words."""
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise GrokvizError(f"run name {name!r}: use {NAME_RULE} (the run is a folder directly in the runs folder)")
    folder = Path(root) / name
    if folder.exists() or folder.is_symlink():
        raise GrokvizError(
            f"run name {name!r}: {folder} already exists; choose another name (runs are never overwritten)"
        )
    return folder


@dataclass(frozen=True)
class Job:
    """One launch by the app, as its record stores it."""

    name: str  # the run folder's path under the runs folder ("quick" or "sweep/member")
    run: str  # the run folder, absolute
    action: str  # "start", "resume" or "extend"
    argv: list[str]
    pid: int
    started: float  # time.time() at launch
    output: str  # the file its stdout and stderr go to
    returncode: int | None = None  # written by the launching app when it sees the exit


@dataclass(frozen=True)
class JobStatus:
    """A run being written, or one the app launched: what the jobs list shows."""

    name: str
    run: Path
    state: str  # "running", "starting", "ending", "finished", "stopped" or "failed"
    step: int | None  # the last logged step
    total: int | None  # the config's steps
    steps_per_second: float | None
    holder: str | None  # who holds the writer lock (None: no one)
    job: Job | None  # the app's record, if the app launched it
    error: str | None = None  # a failed job's last error line
    members: int = 0  # a sweep's members being written (its step and total are then summed over them)

    @property
    def seconds_left(self) -> float | None:
        if self.step is None or self.total is None or not self.steps_per_second:
            return None
        return max(0, self.total - self.step) / self.steps_per_second

    @property
    def active(self) -> bool:
        return self.state in ("running", "starting", "ending")


# --- launching --------------------------------------------------------------------------------


def config_args(cfg: StoredConfig) -> list[str]:
    """The config flags that build ``cfg`` on the trainer's command line (fields at their default left out)."""
    from grokviz.commands.flags import config_flag  # the trainers' own flag names

    args: list[str] = []
    for f in fields(cfg):
        value = getattr(cfg, f.name)
        if f.default is not MISSING and value == f.default and type(value) is type(f.default):
            continue
        if value is None:
            continue
        flag = config_flag(f.name)
        if isinstance(value, bool):
            args.append(flag if value else "--no-" + flag[2:])
        else:
            args.extend([flag, repr(value) if isinstance(value, float) else str(value)])
    return args


def trainer_argv(family: str, run: Path, *extra: str) -> list[str]:
    """``python -m grokviz <the family's train command> --out RUN ... --threads 1 --no-progress``:
    this interpreter, so the job runs the same grokviz as the app; no progress bar (the jobs list
    reads the log instead)."""
    from grokviz.core.families import FAMILIES

    command = FAMILIES[family].train_command.split()[1:]  # "grokviz train" -> ["train"]
    runtime = ["--threads", str(THREADS), "--no-progress"]
    return [sys.executable, "-m", "grokviz", *command, "--out", str(Path(run).resolve()), *extra, *runtime]


def start(root: str | os.PathLike, name: str, cfg: StoredConfig) -> Job:
    """Launch a new run of ``cfg`` in ``root/name`` (refused: read-only, too many jobs, a bad or taken name)."""
    _check_may_launch(root)
    run = check_name(root, name)
    argv = trainer_argv(cfg.family, run, *config_args(cfg))
    return _launch(root, name, run, "start", argv)


def resume(root: str | os.PathLike, run: str | os.PathLike, steps: int | None = None) -> Job:
    """Continue a run of ``root`` (``steps``: extend it to that many steps, ``--resume --steps N``)."""
    _check_may_launch(root)
    run = Path(run)
    name = job_name(root, run)
    config = run_json(run)
    if config is None:
        raise GrokvizError(f"{run}: not a run folder (no readable {RUN_FILE}); nothing to resume")
    now = holder(run)
    if now:
        raise GrokvizError(f"{run}: is being written already ({now}); stop it first")
    extra = ["--resume"]
    if steps is not None:
        if not isinstance(steps, int) or steps < 1:
            raise GrokvizError(f"extend to {steps!r} steps: give a whole number of steps, at least 1")
        extra += ["--steps", str(steps)]
    argv = trainer_argv(config.get("family", _DEFAULT_FAMILY), run, *extra)
    return _launch(root, name, run, "extend" if steps is not None else "resume", argv)


def stop(status: JobStatus) -> int:
    """Ask the trainer writing ``status.run`` to stop at its next step boundary (SIGINT, as Ctrl-C:
    it saves, and ``--resume`` continues). Returns the pid signalled."""
    if read_only():
        raise GrokvizError(f"{READ_ONLY_ENV} is set: this app stops no training")
    pid = holder_pid(status.holder) or (status.job.pid if status.job else None)
    if pid is None or not _is_trainer(pid):
        raise GrokvizError(f"{status.run}: no trainer of this machine is writing it now; nothing to stop")
    os.kill(pid, signal.SIGINT)
    return pid


def forget(root: str | os.PathLike, status: JobStatus) -> None:
    """Drop a finished job's record and output from the jobs list (the run itself is kept)."""
    if status.active:
        raise GrokvizError(f"{status.name}: is still training; stop it first")
    record = _record_path(root, status.name)
    record.unlink(missing_ok=True)
    record.with_suffix(".out").unlink(missing_ok=True)


def job_name(root: str | os.PathLike, run: Path) -> str:
    """A run's name under ``root`` ("quick", "sweep/member"); a run outside it is refused."""
    try:
        return Path(run).resolve().relative_to(Path(root).resolve()).as_posix()
    except ValueError:
        raise GrokvizError(f"{run}: is not in the runs folder {root}; the app trains only there") from None


def _check_may_launch(root: str | os.PathLike) -> None:
    if read_only():
        raise GrokvizError(f"{READ_ONLY_ENV} is set: this app starts no training")
    limit = max_jobs()
    running = [s for s in list_jobs(root) if s.job is not None and s.active]
    if len(running) >= limit:
        names = ", ".join(s.name for s in running) or "none"
        raise GrokvizError(
            f"{len(running)} training(s) started from the app are running ({names}); {MAX_JOBS_ENV} allows {limit} "
            "at once: wait for one to finish or stop it"
        )


def _launch(root: str | os.PathLike, name: str, run: Path, action: str, argv: list[str]) -> Job:
    jobs = Path(root) / JOBS_FOLDER
    jobs.mkdir(parents=True, exist_ok=True)
    record = _record_path(root, name)
    output = record.with_suffix(".out")
    env = dict(os.environ, PYTHONUNBUFFERED="1")  # its output reaches the file line by line
    with open(output, "w", encoding="utf-8") as sink:
        sink.write(f"$ {' '.join(argv)}\n")
        sink.flush()
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # not in the app's process group: a Ctrl-C to the app leaves it training
            env=env,
        )
    job = Job(name, str(run.resolve()), action, argv, process.pid, time.time(), str(output))
    _write_record(record, job)
    # Reap it when it exits (else it lingers as a zombie while this app lives) and note its status.
    threading.Thread(target=_reap, args=(process, record, job), daemon=True).start()
    return job


def _reap(process: subprocess.Popen, record: Path, job: Job) -> None:
    code = process.wait()
    if record.is_file() and _read_record(record) == job:  # not relaunched meanwhile
        _write_record(record, Job(**{**job.__dict__, "returncode": code}))


def _record_path(root: str | os.PathLike, name: str) -> Path:
    return Path(root) / JOBS_FOLDER / (name.replace("/", "~") + ".json")


def _write_record(path: Path, job: Job) -> None:
    from grokviz.storage.files import atomic_write

    atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(job.__dict__, indent=1), encoding="utf-8"))


def _read_record(path: Path) -> Job | None:
    try:
        return Job(**json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None


def _is_trainer(pid: int) -> bool:
    """Whether ``pid`` is a live grokviz process of this machine (not a zombie, not a reused pid)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return False
        return b"grokviz" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, IndexError):
        pass
    try:  # no /proc: ask the kernel whether the pid exists at all
        os.kill(pid, 0)
    except OSError:
        return False
    return True


# --- listing ---------------------------------------------------------------------------------


def list_jobs(root: str | os.PathLike) -> list[JobStatus]:
    """Every run being written under ``root`` (runs and sweep members, found by their writer lock),
    and every job the app launched there that is not forgotten, newest launches first."""
    root = Path(root)
    records: dict[str, Job] = {}
    jobs_folder = root / JOBS_FOLDER
    if jobs_folder.is_dir():
        for path in jobs_folder.glob("*.json"):
            job = _read_record(path)
            if job is not None:
                records[job.name] = job
    folders: dict[str, Path] = {name: Path(job.run) for name, job in records.items()}
    if root.is_dir():
        for lock_file in [*root.glob(f"*/{LOCK_FILE}"), *root.glob(f"*/*/{LOCK_FILE}")]:
            folder = lock_file.parent
            if any(part.startswith(".") for part in folder.relative_to(root).parts):
                continue
            folders.setdefault(folder.relative_to(root).as_posix(), folder)
    found = [job_status(name, folder, records.get(name)) for name, folder in folders.items()]
    found = [status for status in found if status.job is not None or status.holder is not None]
    return sorted(_sweeps_as_one(found), key=lambda s: (not s.active, -(s.job.started if s.job else 0.0), s.name))


def _sweeps_as_one(found: list[JobStatus]) -> list[JobStatus]:
    """An ensemble holds its sweep folder and every member's: one row for the sweep, its progress
    the sum over its members (member-steps, and their speeds), instead of a row per member."""
    by_name = {status.name: status for status in found}
    members: dict[str, list[JobStatus]] = {}
    for status in found:
        parent = status.name.rpartition("/")[0]
        if parent in by_name and status.holder is not None and status.holder == by_name[parent].holder:
            members.setdefault(parent, []).append(status)
    shown_in_sweep = {member.name for group in members.values() for member in group}
    rows = []
    for status in found:
        if status.name in shown_in_sweep:
            continue
        group = members.get(status.name)
        if group:
            rates = [m.steps_per_second for m in group if m.steps_per_second]
            status = dataclasses.replace(
                status,
                step=sum(m.step or 0 for m in group),
                total=sum(m.total or 0 for m in group),
                steps_per_second=sum(rates) or None,
                members=len(group),
            )
        rows.append(status)
    return rows


def idle_runs(root: str | os.PathLike) -> list[str]:
    """The names of the runs directly in ``root`` that no trainer is writing now (to resume or extend)."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = [path.parent for path in root.glob(f"*/{RUN_FILE}") if not path.parent.name.startswith(".")]
    return sorted(folder.name for folder in found if holder(folder) is None)


def job_status(name: str, run: Path, job: Job | None) -> JobStatus:
    """Where one run stands: who writes it, its step / total and speed, and, once its job has
    ended, whether it finished, stopped or failed (with the last error line of its output)."""
    now = holder(run)
    config = run_json(run)
    total = config.get("config", {}).get("steps") if config else None
    step, rate = log_progress(run / LOG_FILE)
    error = None
    if now:
        state = "running"
    elif job is not None and job.returncode is None and _is_trainer(job.pid):
        # Alive without the lock: importing torch before taking it, or past releasing it (its last
        # lines of output); a launch's first minutes are taken for the first.
        state = "starting" if time.time() - job.started < STARTING_S else "ending"
    else:
        error = last_error(Path(job.output)) if job is not None else None
        if job is not None and (error or job.returncode not in (None, 0) or config is None):
            state = "failed"
            error = error or (f"exit status {job.returncode}" if job.returncode else "it wrote no run")
        elif step is not None and total is not None and step >= total:
            state = "finished"
        else:
            state = "stopped"
        rate = None
    return JobStatus(name, run, state, step, total, rate, now, job, error)
