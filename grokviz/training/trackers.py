"""Experiment trackers: a run's log rows and progress measures sent to TensorBoard, Weights &
Biases or MLflow as the trainer writes them (``--tracker NAME``, ``gv.train(..., tracker=NAME)``).

The run folder stays the record: a tracker gets a copy of each row as it is appended to
``log.csv`` (plus the learning rate and the sum of squared weights, which the log does not hold)
and, at each checkpoint, the progress measures that need no key frequencies (the Gini
coefficients of W_E's and W_L's spectra; restricted and excluded loss need the key frequencies of
the finished run, so ``grokviz convert to-tracker`` sends them afterwards). Where each one writes:

* ``tensorboard``: event files in ``<run>/tensorboard/`` (``tensorboard --logdir <run>``);
* ``wandb``: offline by default (``WANDB_MODE`` overrides it), files in ``<run>/wandb/``, synced
  later with ``wandb sync``; no account needed;
* ``mlflow``: the tracking URI in ``MLFLOW_TRACKING_URI``, else a local file store ``<run>/mlruns``.

A missing package is refused before training starts, naming the extra to install. A tracker
that will not start or fails mid-run (a full disk, a dead server) is reported once and dropped:
training, the log and the checkpoints go on (:class:`Guarded`).
"""

from __future__ import annotations

import importlib.util
import math
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from grokviz.errors import GrokvizError

# Tracker name -> (the module it needs, the grokviz extra that installs it).
TRACKERS: dict[str, tuple[str, str]] = {
    "tensorboard": ("tensorboard", "tensorboard"),
    "wandb": ("wandb", "wandb"),
    "mlflow": ("mlflow", "mlflow"),
}
PROGRESS_PREFIX = "progress/"  # the checkpoint measures' names: progress/gini_embed, ...


@runtime_checkable
class Tracker(Protocol):
    """What a trainer sends to: ``log(values, step)`` for each row, then ``close()`` once."""

    def log(self, values: Mapping[str, float], step: int) -> None: ...

    def close(self) -> None: ...


def require(name: str) -> None:
    """Refuse, in words, a tracker grokviz does not know or whose package is not installed."""
    if name not in TRACKERS:
        raise GrokvizError(f"tracker {name!r} is not one grokviz knows; choose one of {', '.join(TRACKERS)}")
    module, extra = TRACKERS[name]
    if importlib.util.find_spec(module) is None:
        raise GrokvizError(
            f"--tracker {name} needs the {module} package: pip install 'grokviz[{extra}]' (or grokviz[trackers] for all)"
        )


def open_tracker(
    name: str, run_dir: str | os.PathLike, config: Mapping[str, Any], run_name: str | None = None
) -> Tracker:
    """A tracker writing for the run folder ``run_dir``; ``config`` is logged as its parameters."""
    require(name)
    run_dir = Path(run_dir)
    run_name = run_name or run_dir.name
    opener = {"tensorboard": _TensorBoard, "wandb": _WandB, "mlflow": _MLflow}[name]
    try:
        return opener(run_dir, dict(config), run_name)
    except GrokvizError:
        raise
    except Exception as exc:  # a server that refuses, an unwritable folder: say so before training starts
        raise GrokvizError(f"--tracker {name}: could not start ({type(exc).__name__}: {exc})") from None


def resolve(tracker: str | Tracker | None, run_dir: Path, config: Mapping[str, Any]) -> Guarded | None:
    """``tracker`` as the trainers take it (a name, an object with ``log``/``close``, or None), guarded."""
    if tracker is None:
        return None
    if isinstance(tracker, str):
        try:
            return Guarded(open_tracker(tracker, run_dir, config), tracker)
        except GrokvizError as exc:
            # The package is there (checked before training) but the tracker would not start (a dead
            # server, an unwritable folder): said once, and the run trains without it, as after a failure.
            print(
                f"warning: {exc}; training goes on without it (send it later with grokviz convert to-tracker)",
                file=sys.stderr,
            )
            return None
    check(tracker)
    return Guarded(tracker)


def check(tracker: str | Tracker | None) -> None:
    """Refuse a tracker that cannot work before anything is trained: an unknown name, a missing
    package, or an object without ``log`` and ``close``."""
    if isinstance(tracker, str):
        require(tracker)
    elif tracker is not None and not isinstance(tracker, Tracker):
        raise GrokvizError(
            f"tracker={tracker!r} must be one of {', '.join(TRACKERS)} or an object with log() and close()"
        )


class Guarded:
    """A tracker whose failures never reach the trainer: the first one is reported on stderr and
    the tracker is dropped (later rows are not sent), so a dead server or a full disk costs the
    tracker's copy and nothing else."""

    def __init__(self, tracker: Tracker, name: str | None = None):
        self.tracker = tracker
        self.name = name or type(tracker).__name__.strip("_")
        self.failed: str | None = None

    def log(self, values: Mapping[str, float], step: int) -> None:
        if self.failed is None:
            self._call(lambda: self.tracker.log(values, step), f"at step {step}")

    def close(self) -> None:
        if self.failed is None:
            self._call(self.tracker.close, "while closing")

    def _call(self, action, when: str) -> None:
        try:
            action()
        except Exception as exc:
            self.failed = f"{type(exc).__name__}: {exc}"
            print(
                f"warning: the {self.name} tracker failed {when} ({self.failed}); training goes on without it, "
                "and the run folder keeps every row (send it later with grokviz convert to-tracker)",
                file=sys.stderr,
            )


# --- what is sent ---------------------------------------------------------------------------


def sum_sq(params: Mapping[str, Any]) -> float:
    """The sum of squared weights over every tensor (the paper's weight-norm measure), in float64."""
    return float(sum(float(t.detach().double().pow(2).sum()) for t in params.values()))


def row_extras(cfg, step: int, params: Mapping[str, Any] | None) -> dict[str, float]:
    """What a tracker gets beside a log row: the learning rate of update ``step`` (the modular
    families; the adder's log holds its own) and the sum of squared weights of ``params``."""
    from grokviz.training.optim import learning_rate

    extras = {} if cfg.family == "digits" else {"lr": learning_rate(cfg, step)}
    if params is not None:
        extras["sum_sq_weights"] = sum_sq(params)
    return extras


def checkpoint_measures(cfg, params: Mapping[str, Any]) -> dict[str, float]:
    """The progress measures a checkpoint gives without key frequencies: the Gini coefficients of
    W_E's and W_L's Fourier spectra (modular runs; over Z_{p-1} for mul and div), as
    ``progress/gini_embed`` and ``progress/gini_unembed``. Other families: none."""
    if cfg.family != "modular":
        return {}
    from grokviz.analysis.fourier import embed_spectrum, unembed_spectrum
    from grokviz.analysis.group import group_for
    from grokviz.analysis.progress import gini

    group = group_for(cfg.task, cfg.p)
    return {
        f"{PROGRESS_PREFIX}gini_embed": gini(embed_spectrum(params, group)),
        f"{PROGRESS_PREFIX}gini_unembed": gini(unembed_spectrum(params, group)),
    }


def _finite(values: Mapping[str, float]) -> dict[str, float]:
    # A NaN (an empty split) is not a value a tracker can plot; the log keeps it.
    return {k: float(v) for k, v in values.items() if k != "step" and math.isfinite(float(v))}


# --- the three trackers ---------------------------------------------------------------------


class _TensorBoard:
    def __init__(self, run_dir: Path, config: dict, run_name: str):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(run_dir / "tensorboard"))
        self.writer.add_text("config", "\n".join(f"    {k}: {v}" for k, v in config.items()), 0)

    def log(self, values: Mapping[str, float], step: int) -> None:
        for key, value in _finite(values).items():
            self.writer.add_scalar(key, value, step)

    def close(self) -> None:
        self.writer.close()


class _WandB:
    def __init__(self, run_dir: Path, config: dict, run_name: str):
        import wandb

        # Offline unless the user says otherwise: no account, no network; `wandb sync` uploads later.
        mode = os.environ.get("WANDB_MODE", "offline")
        self.run = wandb.init(
            project=os.environ.get("WANDB_PROJECT", "grokviz"),
            name=run_name,
            dir=str(run_dir),
            config=config,
            mode=mode,
            reinit="create_new",
            settings=wandb.Settings(silent=True, console="off"),
        )

    def log(self, values: Mapping[str, float], step: int) -> None:
        self.run.log(_finite(values), step=step)

    def close(self) -> None:
        self.run.finish()


class _MLflow:
    def __init__(self, run_dir: Path, config: dict, run_name: str):
        from mlflow.entities import Param
        from mlflow.tracking import MlflowClient

        uri = os.environ.get("MLFLOW_TRACKING_URI")
        if not uri:
            # MLflow 3 keeps its file store only on request; the database store would need SQLAlchemy.
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
            uri = (run_dir / "mlruns").resolve().as_uri()
        self.client = MlflowClient(tracking_uri=uri)
        name = os.environ.get("MLFLOW_EXPERIMENT_NAME", "grokviz")
        experiment = self.client.get_experiment_by_name(name)
        experiment_id = experiment.experiment_id if experiment else self.client.create_experiment(name)
        self.run_id = self.client.create_run(experiment_id, run_name=run_name).info.run_id
        self.client.log_batch(self.run_id, params=[Param(k, str(v)) for k, v in config.items()])

    def log(self, values: Mapping[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(key, value, now, step) for key, value in _finite(values).items()]
        self.client.log_batch(self.run_id, metrics=metrics)

    def close(self) -> None:
        self.client.set_terminated(self.run_id)


# --- after the fact -------------------------------------------------------------------------


def timeline_with_bar(run, key_freqs=None, progress: bool = True):
    """``grokviz.storage.timeline.timeline`` (the progress measures of every checkpoint, cached
    beside the run) with a progress bar on stderr over the checkpoints it computes (none when cached)."""
    from tqdm import tqdm

    from grokviz.storage.timeline import timeline

    bars = []

    def report(done: int, total: int) -> None:
        if total and progress and not bars:
            bars.append(tqdm(desc="progress measures", total=total, unit="checkpoint", file=sys.stderr))
        if bars:
            bars[0].n = done
            bars[0].refresh()

    try:
        return timeline(run, key_freqs=key_freqs, progress=report)
    finally:
        for bar in bars:
            bar.close()


def export_run(run, name: str, *, progress: bool = True, timeline: bool = True) -> int:
    """Send a finished (or stopped) run folder to the tracker ``name``: every log row with the
    learning rate, and at each checkpoint the sum of squared weights and the progress measures
    (with ``timeline`` on a modular run, all of ``grokviz analyze --timeline``'s, restricted and
    excluded loss for the key frequencies of the last checkpoint included; otherwise the Gini
    coefficients). Rows go in step order; returns how many steps were sent. ``grokviz convert
    to-tracker RUN --tracker NAME`` is this."""
    from tqdm import tqdm

    require(name)
    if name == "tensorboard" and (run.path / "tensorboard").exists():
        raise GrokvizError(
            f"{run.path / 'tensorboard'}: already holds TensorBoard events of this run (from --tracker or an "
            "earlier export); remove that folder to export the run again"
        )
    cfg = run.config
    by_step: dict[int, dict[str, float]] = {}
    for row in run.log().to_dict("records"):
        step = int(row["step"])
        by_step[step] = {k: v for k, v in row.items() if k != "step"} | row_extras(cfg, step, None)
    steps = run.steps()
    if timeline and cfg.family == "modular" and steps:
        frame = timeline_with_bar(run, progress=progress)
        measures = [c for c in frame.columns if c != "step" and not c.startswith("sum_sq.")]
        for record in frame.to_dict("records"):
            step = int(record["step"])
            sent = {f"{PROGRESS_PREFIX}{c}": record[c] for c in measures if c != "sum_sq_weights"}
            by_step.setdefault(step, {}).update(sent | {"sum_sq_weights": record["sum_sq_weights"]})
    else:
        for step in tqdm(steps, desc="checkpoints", unit="checkpoint", disable=not progress, file=sys.stderr):
            params = run.load(step)
            by_step.setdefault(step, {}).update({"sum_sq_weights": sum_sq(params)} | checkpoint_measures(cfg, params))
    tracker = open_tracker(name, run.path, cfg.to_dict(), run.name)
    try:
        for step in tqdm(sorted(by_step), desc=f"to {name}", unit="step", disable=not progress, file=sys.stderr):
            tracker.log(by_step[step], step)
    finally:
        tracker.close()
    return len(by_step)
