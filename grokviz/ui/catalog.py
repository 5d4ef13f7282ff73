"""What the app can open, and how it notices change: the runs and sweep members on offer, and the
file signatures that key its caches. The only part of the UI layer that reads the file system
(``run.json``, file sizes and times); no Streamlit, so it is tested without a browser.

The storage layer (and with it torch) is imported by the functions that open runs, not by this
module: the explorer's first chart is drawn from the log before torch is imported (its fast start).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from grokviz.errors import GrokvizError

if TYPE_CHECKING:
    from grokviz.storage.runs import Run

# The run the explorer opens first, when the URL names none.
DEFAULT_RUN = "add-p113"


@dataclass
class RunChoices:
    """Runs to offer, keyed by the value the picker stores (and the URL carries)."""

    runs: dict[str, Run] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def run_key(path: Path, base_dir: Path) -> str:
    """A run's key: its path relative to ``base_dir`` when inside it (short URLs), else absolute."""
    path = Path(path).resolve()
    try:
        return path.relative_to(Path(base_dir).resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def discover_runs(default_root: Path, extra_folder: str | None, base_dir: Path) -> RunChoices:
    """Runs under ``default_root`` plus those in ``extra_folder`` (a folder of runs or one run).

    Reads the run folders (``run.json`` only). Every folder that is not a readable run becomes
    one message in ``problems``; nothing raises, so the app keeps working with the rest.
    """
    from grokviz.storage.runs import RUN_FILE, list_runs, open_run
    from grokviz.storage.sweeps import list_sweeps

    choices = RunChoices()

    def add(run: Run, label: str | None = None) -> None:
        key = run_key(run.path, base_dir)
        if key not in choices.runs:
            choices.runs[key] = run
            where = run.path.parent
            # The label is also what the URL carries: short for bundled runs, the path otherwise.
            choices.labels[key] = label or (run.name if where.resolve() == Path(default_root).resolve() else key)

    roots = [Path(default_root)]
    if extra_folder and extra_folder.strip():
        extra = Path(os.path.expanduser(extra_folder.strip()))
        if not extra.is_absolute():
            extra = Path(base_dir) / extra
        if (extra / RUN_FILE).is_file():
            try:
                add(open_run(extra))
            except GrokvizError as exc:
                choices.problems.append(str(exc))
        else:
            roots.append(extra)
    for root in roots:
        if not root.is_dir() and root == Path(default_root):
            continue  # no bundled runs: not an error, the sidebar says so
        try:
            runs, problems = list_runs(root)
        except GrokvizError as exc:
            choices.problems.append(str(exc))
            continue
        for run in runs:
            add(run)
        choices.problems.extend(problems)
        # The members of sweep folders are ordinary runs too, labelled "sweep/member".
        sweeps, problems = list_sweeps(root)
        choices.problems.extend(problems)
        for sweep in sweeps:
            member_runs, problems = list_runs(sweep.path)
            choices.problems.extend(problems)
            for run in member_runs:
                add(run, f"{sweep.name}/{run.name}" if root == Path(default_root) else None)
    return choices


def log_signature(run: Run) -> tuple[int, float]:
    """(size, mtime) of the run's training log: it grows while the run trains, so caches of the log
    and of what is read from it are keyed on this (one definition for the app and its views)."""
    from grokviz.storage.log import LOG_FILE

    log = run.path / LOG_FILE
    return (log.stat().st_size if log.is_file() else 0, file_mtime(log))


def live_signature(run: Run, steps: list[int] | None = None) -> tuple:
    """What changes while a run trains: its saved steps and its log. Reads the folder
    (``steps``, when the caller has just listed them, saves a second scan)."""
    return (tuple(run.steps() if steps is None else steps), log_signature(run))


def progress_key(run_path: str, signature: tuple) -> tuple:
    """The memo key of a run's progress measures: its path and saved steps only. They are computed
    from the checkpoints, so a log that grows while the run trains (several rows a second for a
    small model) must not make them new: the explorer would recompute them and rerun without end."""
    return (run_path, signature[0])


def checkpoint_mtime(run: Run, step: int) -> float:
    """Modification time of a checkpoint file (part of cache keys: a rewritten file reloads)."""
    try:
        return run.checkpoint_path(step).stat().st_mtime
    except OSError:
        return 0.0


def file_mtime(path: Path) -> float:
    try:
        return Path(path).stat().st_mtime
    except OSError:
        return 0.0


def runs_root() -> Path:
    """Where the app looks for runs: ``$GROKVIZ_RUNS``, else ``./checkpoints`` of the folder it was
    started from (so ``grokviz app`` inside a clone opens the bundled runs)."""
    return Path(os.environ.get("GROKVIZ_RUNS") or Path.cwd() / "checkpoints")


def base_dir() -> Path:
    """Folder that run keys (and so URLs) are relative to, and that a typed relative folder starts from."""
    return Path.cwd()


def log_preview(wanted: str | None) -> Path | None:
    """The log file of the run whose log the explorer draws before it imports torch (its fast start): the
    run the URL names (as the picker labels it: its name in the runs folder, or sweep/member), else
    :data:`DEFAULT_RUN`. None unless it is a modular-arithmetic run with a log in the runs folder
    (anything else waits for the full page; a URL never points the app outside the runs folder)."""
    from grokviz.storage.jobs import LOG_FILE, run_family  # run.json read as JSON: no torch

    name = Path(wanted or DEFAULT_RUN)
    if name.is_absolute() or ".." in name.parts:
        return None
    folder = runs_root() / name
    log = folder / LOG_FILE
    return log if run_family(folder) == "modular" and log.is_file() else None
