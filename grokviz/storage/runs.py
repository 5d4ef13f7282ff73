"""The run folder: how a run is written, found, validated and loaded.

A run is one folder::

    run.json                  {"format": "grokviz.run/1", "config": {...}, "source": ...,
                               "family": "digits"}  (no "family": a modular-arithmetic run)
    log.csv                   training log, one row per log step, floats in full precision (repr);
                              its columns are the family's (LOG_COLUMNS or DIGITS_LOG_COLUMNS)
    step_000100.safetensors   weights after 100 updates; TransformerLens names; metadata holds
                              "format", "step" and "config" (JSON) as strings
    resume.safetensors        fp32 weights + AdamW moments of the latest resumable step

Writers: every file is written to a temporary name and renamed into place, so a killed trainer
or a concurrent reader never sees half a checkpoint. The log is append-only with one complete
line per ``write``; readers ignore a last line without its newline (a write in flight).
Readers never unpickle anything.

Families: a run holds either the modular-arithmetic model (``grokviz.core.config.Config``) or
the 10-digit adder (``grokviz.core.digits_config.DigitsConfig``); run.json and every checkpoint's
metadata say which, and a reader that needs one family refuses the other in words
(:func:`require_family`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from grokviz.core import digits_model
from grokviz.core.config import Config
from grokviz.core.digits_config import DigitsConfig
from grokviz.core.params import Params, param_shapes
from grokviz.errors import GrokvizError
from grokviz.storage.lock import LOCK_FILE

RUN_FORMAT = "grokviz.run/1"
CHECKPOINT_FORMAT = "grokviz.checkpoint/1"
RUN_FILE = "run.json"
LOG_FILE = "log.csv"
RESUME_FILE = "resume.safetensors"
# A sweep folder (``grokviz.ensemble``) holds sweep.json and one run folder per member; it is
# not a run itself (see ``grokviz.storage.sweeps``).
SWEEP_FILE = "sweep.json"
SWEEP_FORMAT = "grokviz.sweep/1"
CHECKPOINT_RE = re.compile(r"^step_(\d+)\.safetensors$")
LOG_COLUMNS = ("step", "train_loss", "train_accuracy", "test_loss", "test_accuracy", "elapsed_s")
# A digits run's log: the curriculum's digits and the lr of the step, the training batch's loss and
# exact match, and the validation set's loss, exact match and accuracy at each of the 12 answer positions.
DIGITS_LOG_COLUMNS = (
    "step",
    "max_digits",
    "lr",
    "train_loss",
    "train_exact",
    "val_loss",
    "val_exact",
    *(f"val_acc_{k}" for k in range(12)),
    "elapsed_s",
)
MODULAR, DIGITS = "modular", "digits"
# family -> (config class, log columns, words for messages)
FAMILIES = {
    MODULAR: (Config, LOG_COLUMNS, "a modular-arithmetic run (open it in the run explorer)"),
    DIGITS: (DigitsConfig, DIGITS_LOG_COLUMNS, "a 10-digit adder run (open it on the Adder page)"),
}
AnyConfig = Config | DigitsConfig
# The process umask, read once (reading it means setting it, which is not thread-safe to repeat).
_UMASK = os.umask(0)
os.umask(_UMASK)
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def family_of(cfg: AnyConfig) -> str:
    return getattr(cfg, "family", MODULAR)


def require_family(cfg: AnyConfig, family: str, source: str, what: str = "this view") -> None:
    """Refuse a run of the other family, in words naming it, what it is and where it opens."""
    found = family_of(cfg)
    if found != family:
        raise GrokvizError(f"{source}: is {FAMILIES[found][2]}; {what} needs {FAMILIES[family][2].split(' (')[0]}")


def _config_from_json(text: str, family: str, source: str) -> AnyConfig:
    return FAMILIES[family][0].from_json(text, source=source)


# --- writing --------------------------------------------------------------------------------


def atomic_write(path: Path, write) -> None:
    """Call ``write(tmp_path)`` then rename over ``path``: readers see the old or the new file.

    No fsync: rename is atomic against a killed process (our failure model); a power cut may
    still lose the newest file, never corrupt an older one.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the mode open() would
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def checkpoint_name(step: int) -> str:
    return f"step_{step:06d}.safetensors"


def write_run_file(run_dir: Path, cfg: AnyConfig, source: str = "grokviz.train") -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    body = {"format": RUN_FORMAT, "config": cfg.to_dict(), "source": source}
    if family_of(cfg) != MODULAR:  # absent = modular, so every older run still reads as one
        body["family"] = family_of(cfg)
    body = json.dumps(body, indent=2)
    atomic_write(run_dir / RUN_FILE, lambda tmp: Path(tmp).write_text(body + "\n"))


def save_checkpoint(run_dir: Path, step: int, params: Params, cfg: AnyConfig) -> Path:
    dtype = DTYPES[cfg.save_dtype]
    tensors = {k: v.detach().to("cpu", dtype).contiguous() for k, v in params.items()}
    metadata = {"format": CHECKPOINT_FORMAT, "step": str(step), "config": cfg.to_json()}
    if family_of(cfg) != MODULAR:
        metadata["family"] = family_of(cfg)
    path = Path(run_dir) / checkpoint_name(step)
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))
    return path


def save_resume_state(
    run_dir: Path,
    step: int,
    params: Params,
    exp_avg: Params,
    exp_avg_sq: Params,
    extra: dict[str, Params] | None = None,
) -> None:
    """fp32 weights and AdamW moments, enough for a bit-exact continuation (one file, latest only).

    ``extra``: more named groups of state (the Grokfast filter's, as ``grokfast/<name>``)."""
    tensors = {}
    groups = {"param": params, "exp_avg": exp_avg, "exp_avg_sq": exp_avg_sq, **(extra or {})}
    for prefix, group in groups.items():
        tensors.update({f"{prefix}/{k}": v.detach().to("cpu", torch.float32).contiguous() for k, v in group.items()})
    atomic_write(Path(run_dir) / RESUME_FILE, lambda tmp: save_file(tensors, tmp, metadata={"step": str(step)}))


def load_resume_state(run_dir: Path) -> tuple[int, Params, Params, Params, dict[str, Params]]:
    """(step, params, exp_avg, exp_avg_sq, extra groups) as :func:`save_resume_state` wrote them."""
    path = Path(run_dir) / RESUME_FILE
    tensors, metadata = read_safetensors(path)
    groups: dict[str, Params] = {"param": {}, "exp_avg": {}, "exp_avg_sq": {}}
    for key, value in tensors.items():
        prefix, _, name = key.partition("/")
        groups.setdefault(prefix, {})[name] = value
    params, exp_avg, exp_avg_sq = groups.pop("param"), groups.pop("exp_avg"), groups.pop("exp_avg_sq")
    return _parse_step(metadata, path), params, exp_avg, exp_avg_sq, groups


class LogWriter:
    """Appends training-log rows; each row is one ``write`` of one complete line."""

    def __init__(self, run_dir: Path, keep_below_step: int | None = None, columns: tuple[str, ...] = LOG_COLUMNS):
        self.path = Path(run_dir) / LOG_FILE
        self.columns = columns
        kept = []
        if keep_below_step is not None and self.path.exists():
            # Resuming: keep the rows before the resumed step; the loop writes the rest again.
            kept = [r for r in _read_log_rows(self.path, columns)[0] if r["step"] < keep_below_step]
        atomic_write(self.path, lambda tmp: Path(tmp).write_text(_format_rows(kept, columns=columns)))
        self._file = open(self.path, "a", buffering=1, encoding="utf-8")

    def append(self, row: dict[str, float]) -> None:
        self._file.write(_format_rows([row], header=False, columns=self.columns))

    def close(self) -> None:
        self._file.close()


def _format_rows(rows: list[dict[str, float]], header: bool = True, columns: tuple[str, ...] = LOG_COLUMNS) -> str:
    lines = [",".join(columns)] if header else []
    for row in rows:
        lines.append(",".join(str(int(row["step"])) if c == "step" else repr(float(row[c])) for c in columns))
    return "".join(line + "\n" for line in lines)


def _read_log_rows(path: Path, columns: tuple[str, ...] = LOG_COLUMNS) -> tuple[list[dict[str, float]], list[str]]:
    """Rows of a training log, ascending by step, and one message per row that was skipped.

    A last line without its newline is a write in flight and is ignored silently. Malformed rows
    are skipped and reported; a step logged twice keeps its last row (what a resumed run wrote).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise GrokvizError(f"{path}: unreadable training log ({exc})") from None
    if not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    lines = text.splitlines()
    if not lines or lines[0].split(",") != list(columns):
        raise GrokvizError(f"{path}: not a grokviz training log (expected the header {','.join(columns)})")
    by_step: dict[int, dict[str, float]] = {}
    problems = []
    for number, line in enumerate(lines[1:], start=2):
        values = line.split(",")
        try:
            if len(values) != len(columns):
                raise ValueError(f"{len(values)} fields, expected {len(columns)}")
            row = {c: float(v) for c, v in zip(columns, values)}
            if not (row["step"] >= 0 and row["step"].is_integer()):
                raise ValueError(f"step {values[0]!r} is not a non-negative integer")
        except ValueError as exc:
            problems.append(f"{path}, line {number}: malformed row skipped ({exc})")
            continue
        row["step"] = int(row["step"])
        if row["step"] in by_step:
            problems.append(f"{path}, line {number}: step {row['step']} logged again; the later row is kept")
        by_step[row["step"]] = row
    return [by_step[step] for step in sorted(by_step)], problems


# --- reading --------------------------------------------------------------------------------


def read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and metadata of a safetensors file, every failure as a GrokvizError naming it."""
    if not path.is_file():
        raise GrokvizError(f"{path}: no such file")
    try:
        # One open for metadata and tensors: a file renamed over in between cannot mix versions.
        with safe_open(str(path), framework="pt") as handle:
            return {name: handle.get_tensor(name) for name in handle.keys()}, handle.metadata() or {}
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise GrokvizError(f"{path}: not a readable safetensors file ({exc})") from None


def _parse_step(metadata: dict[str, str], path: Path) -> int:
    try:
        return int(metadata["step"])
    except (KeyError, ValueError):
        raise GrokvizError(f"{path}: metadata has no integer 'step'") from None


def validate_params(params: Params, cfg: AnyConfig, source: str) -> Params:
    """Names, shapes and finiteness against the config (of either family); returns fp32 tensors."""
    expected = digits_model.param_shapes(cfg) if family_of(cfg) == DIGITS else param_shapes(cfg)
    missing = sorted(set(expected) - set(params))
    unexpected = sorted(set(params) - set(expected))
    if missing or unexpected:
        raise GrokvizError(f"{source}: tensors do not match the config (missing {missing}, unexpected {unexpected})")
    out = {}
    for name, shape in expected.items():
        tensor = params[name]
        if tuple(tensor.shape) != shape:
            raise GrokvizError(f"{source}: {name} has shape {tuple(tensor.shape)}, the config implies {shape}")
        if not tensor.is_floating_point():
            raise GrokvizError(f"{source}: {name} has dtype {tensor.dtype}, expected a float")
        tensor = tensor.float()
        # numpy: single-threaded and ~100x cheaper than torch's threaded isfinite on a busy 2-core box.
        if not np.isfinite(tensor.numpy()).all():
            raise GrokvizError(f"{source}: {name} contains NaN or infinite values")
        out[name] = tensor
    return out


def _metadata_family(metadata: dict[str, str], path: Path) -> str:
    family = metadata.get("family", MODULAR)
    if family not in FAMILIES:
        raise GrokvizError(f"{path}: unknown model family {family!r}; grokviz knows {sorted(FAMILIES)}")
    return family


def load_checkpoint_file(path: Path) -> tuple[AnyConfig, int, Params]:
    """One checkpoint file on its own: (config of its family, step, fp32 params), validated."""
    path = Path(path)
    tensors, metadata = read_safetensors(path)
    if "config" not in metadata:
        raise GrokvizError(f"{path}: metadata has no 'config'; is this a grokviz checkpoint?")
    cfg = _config_from_json(metadata["config"], _metadata_family(metadata, path), str(path))
    return cfg, _parse_step(metadata, path), validate_params(tensors, cfg, str(path))


# (absolute path, mtime_ns, size, run config) of a checkpoint file -> (step, None) or (None, problem).
# Every file is fully checked once per process however many Run objects look at it; a file that
# is rewritten gets a new mtime or size, and a run whose config changed a new key, and is checked again.
_VERDICTS: dict[tuple[str, int, int, AnyConfig], tuple[int | None, str | None]] = {}


@dataclass
class Run:
    """A run folder opened for reading. Cheap to construct; loads weights lazily.

    :meth:`steps` lists the checkpoints that load; every other ``step_*.safetensors`` file (broken,
    foreign, NaN, another run's, a duplicate) is skipped and described in :attr:`problems`.
    """

    path: Path
    config: AnyConfig
    source: str = "grokviz.train"
    _files: dict[int, str] = field(default_factory=dict, repr=False)  # step -> file name
    _file_problems: list[str] = field(default_factory=list, repr=False)
    _log_problems: list[str] = field(default_factory=list, repr=False)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def family(self) -> str:
        return family_of(self.config)

    @property
    def problems(self) -> list[str]:
        """Files and log rows skipped by the last :meth:`steps` and :meth:`log`, with reasons."""
        return self._file_problems + self._log_problems

    def steps(self) -> list[int]:
        """Steps whose checkpoints load, ascending (re-scanned: a run may still be training)."""
        files, problems = {}, []
        try:
            entries = sorted(os.scandir(self.path), key=lambda e: e.name)
        except OSError as exc:
            raise GrokvizError(f"{self.path}: cannot list the run folder ({exc.strerror})") from None
        for entry in entries:
            match = CHECKPOINT_RE.match(entry.name)
            if not match:
                continue
            try:
                info = entry.stat()  # follows symlinks: a dangling one is unreadable
            except OSError as exc:
                problems.append(f"{entry.path}: unreadable ({exc.strerror}); skipped")
                continue
            if not stat.S_ISREG(info.st_mode):  # a folder or a pipe would hang or fail a reader
                problems.append(f"{entry.path}: not a regular file; skipped")
                continue
            key = (os.path.abspath(entry.path), info.st_mtime_ns, info.st_size, self.config)
            if key not in _VERDICTS:
                if len(_VERDICTS) > 100_000:  # a long-lived app watching many runs: start afresh
                    _VERDICTS.clear()
                _VERDICTS[key] = self._check(Path(entry.path), int(match.group(1)))
            step, problem = _VERDICTS[key]
            if problem is not None:
                problems.append(problem + "; skipped")
            elif step in files:
                # Two names for one step (step_100 and step_000100): keep the canonical one.
                keep, drop = sorted((files[step], entry.name), key=lambda n: n != checkpoint_name(step))
                files[step] = keep
                problems.append(f"{self.path / drop}: a second file for step {step} (kept {keep}); skipped")
            else:
                files[step] = entry.name
        self._files, self._file_problems = files, problems
        return sorted(files)

    def _check(self, path: Path, step: int) -> tuple[int | None, str | None]:
        try:
            self._load_file(path, step)
        except GrokvizError as exc:
            return None, str(exc)
        return step, None

    def _load_file(self, path: Path, step: int) -> Params:
        tensors, metadata = read_safetensors(path)
        stored_step = _parse_step(metadata, path)
        if stored_step != step:
            raise GrokvizError(f"{path}: the file name says step {step} but its metadata says {stored_step}")
        if "config" in metadata:
            family = _metadata_family(metadata, path)
            if family != self.family:
                raise GrokvizError(
                    f"{path}: is a checkpoint of {FAMILIES[family][2].split(' (')[0]}, "
                    f"but {RUN_FILE} says this folder is {FAMILIES[self.family][2].split(' (')[0]}"
                )
            other = _config_from_json(metadata["config"], family, str(path))
            # A run extended with --resume --steps N keeps the checkpoints written before, whose
            # config has the old steps: steps says how long a run goes, not which run it is.
            other = dataclasses.replace(other, steps=self.config.steps)
            if other != self.config:
                differences = ", ".join(
                    f"{k}={v!r} (run: {getattr(self.config, k)!r})"
                    for k, v in other.to_dict().items()
                    if getattr(self.config, k) != v
                )
                raise GrokvizError(f"{path}: belongs to another run; its config differs from {RUN_FILE}: {differences}")
        return validate_params(tensors, self.config, str(path))

    def checkpoint_path(self, step: int) -> Path:
        return self.path / self._files.get(step, checkpoint_name(step))

    def load(self, step: int) -> Params:
        """fp32 weights at ``step``, checked against the run's config (names, shapes, finite)."""
        if step not in self._files:
            steps = self.steps()
            if step not in self._files:
                raise GrokvizError(
                    f"{self.path}: no loadable checkpoint for step {step}; saved steps are {shown_steps(steps)}"
                )
        return self._load_file(self.checkpoint_path(step), step)

    def log(self) -> pd.DataFrame:
        """The training log (columns ``LOG_COLUMNS``, ascending steps); empty if there is none yet.

        Rows that cannot be read are skipped and described in :attr:`problems`.
        """
        path = self.path / LOG_FILE
        self._log_problems = []
        columns = FAMILIES[self.family][1]
        if not path.is_file():
            return pd.DataFrame({c: pd.Series(dtype="int64" if c == "step" else "float64") for c in columns})
        rows, self._log_problems = _read_log_rows(path, columns)
        frame = pd.DataFrame(rows, columns=list(columns))
        return frame.astype({"step": "int64"})


def shown_steps(steps: list[int]) -> list:
    """A step list short enough for a message: the first six and the last five around '...'."""
    return steps if len(steps) <= 12 else [*steps[:6], "...", *steps[-5:]]


def require_new_folder(out: Path, other_choice: str = "") -> None:
    """Refuse an ``--out`` that is a file or a folder with something in it (nothing is overwritten)."""
    if out.exists() and not out.is_dir():
        raise GrokvizError(f"{out}: exists and is not a folder; --out names the run folder to create")
    if out.exists() and any(entry.name != LOCK_FILE for entry in out.iterdir()):  # our own lock may be there
        raise GrokvizError(f"{out}: folder exists and is not empty; choose a new --out{other_choice}")


def read_format_json(path: Path, expected_format: str) -> dict:
    """A JSON object whose "format" is ``expected_format``; any other content is a GrokvizError naming the file."""
    try:
        body = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise GrokvizError(f"{path}: not readable JSON ({exc})") from None
    found = body.get("format") if isinstance(body, dict) else None
    if found != expected_format:
        raise GrokvizError(f"{path}: unknown format {found!r}; expected {expected_format!r}")
    return body


def open_run(path: str | os.PathLike) -> Run:
    path = Path(path)
    if not path.exists():
        raise GrokvizError(f"{path}: no such run folder")
    if not path.is_dir():
        raise GrokvizError(f"{path}: not a folder; a run is a folder with {RUN_FILE} and step_*.safetensors")
    run_file = path / RUN_FILE
    if not run_file.is_file():
        raise GrokvizError(f"{path}: no {RUN_FILE}; this is not a grokviz run folder")
    body = read_format_json(run_file, RUN_FORMAT)
    family = body.get("family", MODULAR)
    if family not in FAMILIES:
        raise GrokvizError(f"{run_file}: unknown model family {family!r}; grokviz knows {sorted(FAMILIES)}")
    cfg = FAMILIES[family][0].from_dict(body.get("config"), source=str(run_file))
    return Run(path=path, config=cfg, source=str(body.get("source", "unknown")))


def list_runs(root: str | os.PathLike) -> tuple[list[Run], list[str]]:
    """Runs directly under ``root`` (sorted by name), and one message per folder that is not one.

    Sweep folders (``sweep.json``, no ``run.json``) are neither: ``grokviz.storage.sweeps`` lists them.
    """
    root = Path(root)
    if not root.is_dir():
        raise GrokvizError(f"{root}: no such folder of runs")
    runs, problems = [], []
    for entry in sorted(root.iterdir()):
        if not entry.is_dir() or entry.name.startswith("."):
            continue
        if (entry / SWEEP_FILE).is_file() and not (entry / RUN_FILE).exists():
            continue
        try:
            runs.append(open_run(entry))
        except GrokvizError as exc:
            problems.append(str(exc))
    return runs, problems


def nearest_step(steps: list[int], step: int) -> int:
    """The saved step closest to ``step`` (ties go to the earlier one)."""
    if not steps:
        raise GrokvizError("the run has no checkpoints yet")
    return min(steps, key=lambda s: (abs(s - step), s))
