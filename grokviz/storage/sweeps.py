"""Sweep folders: the one owner of their format. Written by ``grokviz.training.ensemble`` through
:func:`write_sweep_file`; opened here, and each member's ending classified.

A sweep folder is ``sweep.json`` plus one ordinary run folder per member::

    sweep.json   {"format": "grokviz.sweep/1", "source": ..., "axes": {"weight_decay": [...], ...},
                  "members": [{"name": "wd1_frac0.3_lr0.001_seed0", "weight_decay": 1.0, ...}, ...]}
    <name>/      run.json, log.csv, step_*.safetensors (read with ``grokviz.storage.runs``)

:func:`classify` is pure (a training log in, an :class:`Outcome` out); :func:`open_sweep`,
:func:`list_sweeps` and :func:`outcome_table` read files. Errors are ``GrokvizError`` naming the file.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from grokviz.core.config import Config
from grokviz.core.families import family_of
from grokviz.core.params import n_params
from grokviz.errors import GrokvizError
from grokviz.storage.files import atomic_write, read_format_json
from grokviz.storage.runs import RUN_FILE, SWEEP_FILE, SWEEP_FORMAT, Run, open_run

# "Fitted" / "generalised" means accuracy at least this high (the 99%).
THRESHOLD = 0.99
OUTCOMES = ("never fit", "memorised only", "grokked")
# Of a sweep still being trained (``grokviz ensemble --ray``, or one stopped midway): a member with no
# log row yet, and one whose log stops short of its last step without having grokked (one that has
# grokked is 'grokked' already: that cannot change).
LIVE_OUTCOMES = ("waiting", "training")
# The config fields in which the members of one sweep may differ, in the order of a member's
# folder name and of the app's axes. Everything else is shared by all members. The shape fields
# (d_model, d_mlp, n_heads, n_layers) and batch_size put members in separate groups; an adder config
# has no frac_train nor grokfast_lamb, and its ensemble sweeps neither depth nor batch size (see
# :func:`member_fields`).
MEMBER_FIELDS = (
    *("weight_decay", "frac_train", "lr", "seed", "data_seed", "grokfast_lamb"),
    *("d_model", "d_mlp", "n_heads", "d_head", "n_layers", "batch_size"),
)
SHAPE_FIELDS = ("d_model", "d_mlp", "n_heads", "d_head", "n_layers")
# Fields of the adder's config that its ensemble does not sweep (one depth and batch size per sweep).
_NOT_ADDER_MEMBER_FIELDS = ("n_layers", "batch_size")


def member_fields(cfg) -> tuple[str, ...]:
    """The :data:`MEMBER_FIELDS` that are fields of ``cfg``'s family and swept by its ensemble (an
    adder's d_head is derived, not one; its n_layers and batch_size are shared by every member)."""
    names = {f.name for f in dataclasses.fields(cfg)}
    if cfg.family == "digits":
        names -= set(_NOT_ADDER_MEMBER_FIELDS)
    return tuple(f for f in MEMBER_FIELDS if f in names)


def member_name(cfg: Config) -> str:
    """Folder name of a member, from its per-member fields: ``wd1_frac0.3_lr0.001_seed0``, with
    ``_data7`` for a data seed, ``_ema2`` / ``_ma5`` for a Grokfast filter and its lamb, and
    ``_d32_mlp128_h4`` for a model of another shape than the paper's (d_model 128, d_mlp 512, 4
    heads; so the names of sweeps of that shape stay as they were), ``_layers2`` for more than one
    block and ``_batch512`` for minibatches. An adder member names its shape first:
    ``d7_ff14_h1_lr0.02_wd0.01_seed0``."""
    if cfg.family == "digits":
        name = f"d{cfg.d_model}_ff{cfg.d_mlp}_h{cfg.n_heads}_lr{cfg.lr:g}_wd{cfg.weight_decay:g}_seed{cfg.seed}"
        return name + (f"_data{cfg.data_seed}" if cfg.data_seed is not None else "")
    name = f"wd{cfg.weight_decay:g}_frac{cfg.frac_train:g}_lr{cfg.lr:g}_seed{cfg.seed}"
    if cfg.data_seed is not None:
        name += f"_data{cfg.data_seed}"
    if cfg.grokfast != "none":
        name += f"_{cfg.grokfast}{cfg.grokfast_lamb:g}"
    if (cfg.d_model, cfg.d_mlp, cfg.n_heads) != (128, 512, 4):
        name += f"_d{cfg.d_model}_mlp{cfg.d_mlp}_h{cfg.n_heads}"
    if cfg.n_layers != 1:
        name += f"_layers{cfg.n_layers}"
    if cfg.batch_size is not None:
        name += f"_batch{cfg.batch_size}"
    return name


def write_sweep_file(out: Path, configs: list[Config], axes: dict[str, list]) -> None:
    """``sweep.json``: the swept axes and each member's folder name and per-member fields."""
    body = {
        "format": SWEEP_FORMAT,
        "source": "grokviz.ensemble",
        "family": configs[0].family,
        "axes": axes,
        "members": [{"name": member_name(c), **{f: getattr(c, f) for f in member_fields(c)}} for c in configs],
    }
    atomic_write(out / SWEEP_FILE, lambda tmp: Path(tmp).write_text(json.dumps(body, indent=2) + "\n"))


@dataclass(frozen=True)
class Outcome:
    """How a member's training went, read from its log.

    ``outcome``: 'never fit' (train accuracy never reached the threshold), 'memorised only'
    (train did, test never did) or 'grokked' (test did). ``fit_step`` / ``grok_step``: the first
    logged step where train / test accuracy reached the threshold (None if never).
    """

    outcome: str
    fit_step: int | None
    grok_step: int | None
    last_step: int | None
    train_accuracy: float  # at the last logged step (NaN without a log)
    test_accuracy: float


def _first_step(log: pd.DataFrame, column: str, threshold: float) -> int | None:
    hits = log["step"][log[column] >= threshold]
    return int(hits.iloc[0]) if len(hits) else None


def classify(log: pd.DataFrame, threshold: float = THRESHOLD) -> Outcome:
    """A training log (columns step, train_accuracy, test_accuracy; any order) -> its :class:`Outcome`."""
    log = log.sort_values("step")
    fit_step = _first_step(log, "train_accuracy", threshold)
    grok_step = _first_step(log, "test_accuracy", threshold)
    if grok_step is not None:
        outcome = "grokked"
    elif fit_step is not None:
        outcome = "memorised only"
    else:
        outcome = "never fit"
    last = log.iloc[-1] if len(log) else None
    return Outcome(
        outcome=outcome,
        fit_step=fit_step,
        grok_step=grok_step,
        last_step=None if last is None else int(last["step"]),
        train_accuracy=math.nan if last is None else float(last["train_accuracy"]),
        test_accuracy=math.nan if last is None else float(last["test_accuracy"]),
    )


@dataclass(frozen=True)
class Member:
    name: str
    path: Path
    values: dict  # per-member settings from sweep.json (weight_decay, frac_train, lr, seed, ...)

    def open(self) -> Run:
        return open_run(self.path)


@dataclass(frozen=True)
class Sweep:
    path: Path
    axes: dict  # axis -> the values swept (as written by the ensemble)
    members: tuple[Member, ...]
    source: str = "unknown"
    family: str = "modular"  # of its members (sweep.json's "family"; sweeps before it are modular)

    @property
    def name(self) -> str:
        return self.path.name

    def swept_axes(self) -> list[str]:
        """Axes with more than one value among the members, in ``MEMBER_FIELDS`` order."""
        return [axis for axis in MEMBER_FIELDS if len({str(m.values.get(axis)) for m in self.members}) > 1]


def is_sweep(path: str | os.PathLike) -> bool:
    return (Path(path) / SWEEP_FILE).is_file()


def open_sweep(path: str | os.PathLike) -> Sweep:
    """Read ``sweep.json``; member folders are named there and must be plain names inside the sweep."""
    path = Path(path)
    sweep_file = path / SWEEP_FILE
    if not sweep_file.is_file():
        raise GrokvizError(f"{path}: no {SWEEP_FILE}; this is not a grokviz sweep folder")
    body = read_format_json(sweep_file, SWEEP_FORMAT)
    axes, entries = body.get("axes", {}), body.get("members")
    if not isinstance(axes, dict) or not isinstance(entries, list) or not entries:
        raise GrokvizError(f"{sweep_file}: needs 'axes' (an object) and 'members' (a non-empty list)")
    members = []
    for entry in entries:
        name = entry.get("name") if isinstance(entry, dict) else None
        # A name from the file must not lead outside the sweep folder.
        if not isinstance(name, str) or not name or name in (".", "..") or "/" in name or "\\" in name:
            raise GrokvizError(f"{sweep_file}: member {entry!r} has no plain folder 'name'")
        values = {k: v for k, v in entry.items() if k != "name"}
        members.append(Member(name=name, path=path / name, values=values))
    return Sweep(
        path=path,
        axes=axes,
        members=tuple(members),
        source=str(body.get("source", "unknown")),
        family=str(body.get("family", "modular")),
    )


def list_sweeps(root: str | os.PathLike) -> tuple[list[Sweep], list[str]]:
    """Sweep folders directly under ``root`` (sorted by name), and one message per unreadable one."""
    root = Path(root)
    if not root.is_dir():
        return [], []
    sweeps, problems = [], []
    for entry in sorted(root.iterdir()):
        if entry.is_dir() and not entry.name.startswith(".") and is_sweep(entry) and not (entry / RUN_FILE).exists():
            try:
                sweeps.append(open_sweep(entry))
            except GrokvizError as exc:
                problems.append(str(exc))
    return sweeps, problems


OUTCOME_COLUMNS = (
    "member",
    *MEMBER_FIELDS,
    "params",
    "outcome",
    "fit_step",
    "grok_step",
    "last_step",
    "train_accuracy",
    "test_accuracy",
    "problem",
)


# A family whose log names its accuracies otherwise: (train, test) columns read as train_accuracy
# and test_accuracy (the adder's training-batch and validation exact match).
ACCURACY_COLUMNS = {"digits": ("train_exact", "val_exact")}


def member_log(run: Run) -> pd.DataFrame:
    """A member's log with ``train_accuracy`` and ``test_accuracy`` whatever its family (the adder's
    exact match: every answer token right)."""
    log = run.log()
    columns = ACCURACY_COLUMNS.get(run.config.family)
    if columns is None:
        return log
    return log.rename(columns=dict(zip(columns, ("train_accuracy", "test_accuracy"))))


def outcome_table(sweep: Sweep, threshold: float = THRESHOLD) -> pd.DataFrame:
    """One row per member: its settings, parameter count, outcome, fit/grok steps and final accuracies
    (an adder member's are its exact match: training batch and validation set).

    A member whose run or log cannot be read gets outcome 'unreadable' and the reason in
    ``problem``; the others are still classified. A member not yet logged, or logged short of its last
    step, is one of ``LIVE_OUTCOMES`` unless it has grokked. Reads every member's ``log.csv``.
    """
    rows = []
    for member in sweep.members:
        row = {"member": member.name, **{axis: member.values.get(axis) for axis in MEMBER_FIELDS}, "problem": None}
        try:
            run = member.open()
            # Sweeps written before the size axes existed name no sizes: the member's config has them.
            row.update({a: getattr(run.config, a) for a in member_fields(run.config) if row.get(a) is None})
            if "batch_size" in member_fields(run.config):
                # As text, "full" for the whole training set every step (not a missing value); one
                # type for the column, which the app shows as a table.
                row["batch_size"] = "full" if row["batch_size"] is None else str(row["batch_size"])
            row["params"] = n_params(family_of(run.config).param_shapes(run.config))
            outcome = classify(member_log(run), threshold)
            row.update(vars(outcome))
            if outcome.last_step is None:
                row["outcome"] = "waiting"
            elif outcome.last_step < run.config.steps and outcome.outcome != "grokked":
                row["outcome"] = "training"
        except GrokvizError as exc:
            row.update(outcome="unreadable", problem=str(exc))
        rows.append(row)
    return pd.DataFrame(rows, columns=list(OUTCOME_COLUMNS))
