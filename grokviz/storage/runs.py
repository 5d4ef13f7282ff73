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
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from safetensors.torch import save_file

from grokviz.core.families import DEFAULT_FAMILY, FAMILIES, family_of, get_family
from grokviz.core.params import Params
from grokviz.core.stored import StoredConfig
from grokviz.errors import GrokvizError
from grokviz.storage.files import atomic_write, parse_step, read_format_json, read_safetensors
from grokviz.storage.lock import LOCK_FILE
from grokviz.storage.log import LOG_FILE, read_log_rows

RUN_FORMAT = "grokviz.run/1"
CHECKPOINT_FORMAT = "grokviz.checkpoint/1"
RUN_FILE = "run.json"
# A sweep folder (``grokviz ensemble``) holds sweep.json and one run folder per member; it is
# not a run itself (see ``grokviz.storage.sweeps``).
SWEEP_FILE = "sweep.json"
SWEEP_FORMAT = "grokviz.sweep/1"
CHECKPOINT_RE = re.compile(r"^step_(\d+)\.safetensors$")
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def _config_from_json(text: str, family: str, source: str) -> StoredConfig:
    return FAMILIES[family].config_class.from_json(text, source=source)


# --- writing --------------------------------------------------------------------------------


def checkpoint_name(step: int) -> str:
    return f"step_{step:06d}.safetensors"


def write_run_file(run_dir: Path, cfg: StoredConfig, source: str = "grokviz.train") -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    body = {"format": RUN_FORMAT, "config": cfg.to_dict(), "source": source}
    if cfg.family != DEFAULT_FAMILY:  # absent = modular, so every older run still reads as one
        body["family"] = cfg.family
    body = json.dumps(body, indent=2)
    atomic_write(run_dir / RUN_FILE, lambda tmp: Path(tmp).write_text(body + "\n"))


def save_checkpoint(run_dir: Path, step: int, params: Params, cfg: StoredConfig) -> Path:
    dtype = DTYPES[cfg.save_dtype]
    tensors = {k: v.detach().to("cpu", dtype).contiguous() for k, v in params.items()}
    metadata = {"format": CHECKPOINT_FORMAT, "step": str(step), "config": cfg.to_json()}
    if cfg.family != DEFAULT_FAMILY:
        metadata["family"] = cfg.family
    path = Path(run_dir) / checkpoint_name(step)
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))
    return path


# --- reading --------------------------------------------------------------------------------


def validate_params(params: Params, cfg: StoredConfig, source: str) -> Params:
    """Names, shapes and finiteness against the config (of either family); returns fp32 tensors."""
    expected = family_of(cfg).param_shapes(cfg)
    missing = sorted(set(expected) - set(params))
    unexpected = sorted(set(params) - set(expected))
    held = sorted({".".join(name.split(".")[:2]) for name in params if name.startswith("blocks.")})
    n_layers = getattr(cfg, "n_layers", len(held))
    if len(held) != n_layers:  # a whole layer too many or too few: say that, not a dozen tensor names
        raise GrokvizError(
            f"{source}: the tensors hold {len(held)} block(s) ({', '.join(held) or 'none'}) but the config says "
            f"n_layers={n_layers}; a checkpoint holds exactly its config's blocks, blocks.0 ... blocks.{n_layers - 1}"
        )
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
    return get_family(metadata.get("family", DEFAULT_FAMILY), str(path)).name


def load_checkpoint_file(path: Path) -> tuple[StoredConfig, int, Params]:
    """One checkpoint file on its own: (config of its family, step, fp32 params), validated."""
    path = Path(path)
    tensors, metadata = read_safetensors(path)
    if "config" not in metadata:
        raise GrokvizError(f"{path}: metadata has no 'config'; is this a grokviz checkpoint?")
    cfg = _config_from_json(metadata["config"], _metadata_family(metadata, path), str(path))
    return cfg, parse_step(metadata, path), validate_params(tensors, cfg, str(path))


# (absolute path, mtime_ns, size, run config) of a checkpoint file -> (step, None) or (None, problem).
# Every file is fully checked once per process however many Run objects look at it; a file that
# is rewritten gets a new mtime or size, and a run whose config changed a new key, and is checked again.
_VERDICTS: dict[tuple[str, int, int, StoredConfig], tuple[int | None, str | None]] = {}


@dataclass
class Run:
    """A run folder opened for reading. Cheap to construct; loads weights lazily.

    :meth:`steps` lists the checkpoints that load; every other ``step_*.safetensors`` file (broken,
    foreign, NaN, another run's, a duplicate) is skipped and described in :attr:`problems`.
    """

    path: Path
    config: StoredConfig
    source: str = "grokviz.train"
    _files: dict[int, str] = field(default_factory=dict, repr=False)  # step -> file name
    _file_problems: list[str] = field(default_factory=list, repr=False)
    _log_problems: list[str] = field(default_factory=list, repr=False)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def family(self) -> str:
        return self.config.family

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
        stored_step = parse_step(metadata, path)
        if stored_step != step:
            raise GrokvizError(f"{path}: the file name says step {step} but its metadata says {stored_step}")
        if "config" in metadata:
            family = _metadata_family(metadata, path)
            if family != self.family:
                raise GrokvizError(
                    f"{path}: is a checkpoint of {FAMILIES[family].label}, "
                    f"but {RUN_FILE} says this folder is {FAMILIES[self.family].label}"
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
                # A file of that step that was skipped says why (wrong depth, shapes, NaN, ...).
                name = checkpoint_name(step)
                why = next((p.removesuffix("; skipped") for p in self._file_problems if name in p), None)
                raise GrokvizError(
                    f"{self.path}: no loadable checkpoint for step {step}"
                    + (f" ({why})" if why else "")
                    + f"; saved steps are {shown_steps(steps)}"
                )
        return self._load_file(self.checkpoint_path(step), step)

    def log(self) -> pd.DataFrame:
        """The training log (columns ``LOG_COLUMNS``, ascending steps); empty if there is none yet.

        Rows that cannot be read are skipped and described in :attr:`problems`.
        """
        path = self.path / LOG_FILE
        self._log_problems = []
        columns = FAMILIES[self.family].log_columns
        if not path.is_file():
            return pd.DataFrame({c: pd.Series(dtype="int64" if c == "step" else "float64") for c in columns})
        rows, self._log_problems = read_log_rows(path, columns)
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
    family = get_family(body.get("family", DEFAULT_FAMILY), str(run_file))
    cfg = family.config_class.from_dict(body.get("config"), source=str(run_file))
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
