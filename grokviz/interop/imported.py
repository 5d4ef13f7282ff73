"""What every importer returns (:class:`ImportedRun`), and how it becomes a run folder."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from grokviz.core.config import Config
from grokviz.core.params import PARAM_SHAPES, Params
from grokviz.errors import GrokvizError

# --- importing a whole reference file -------------------------------------------------------------


@dataclass
class ImportedRun:
    """Everything an importer found in a file, ready for :func:`write_run`."""

    config: Config
    checkpoints: list[tuple[int, Params]]  # (step = optimiser updates done, fp32 params), ascending
    log_rows: list[dict[str, float]]  # runs.LOG_COLUMNS; NaN where the file has no value
    notes: list[str]  # plain sentences: what was guessed, what conflicted, what was checked
    source: str  # e.g. "progress-measures: /path/file.pth"


def float_list(values: Any, name: str, source: str) -> list[float]:
    if values is None:
        return []
    if isinstance(values, torch.Tensor):
        values = values.detach().flatten().tolist()
    values = [v.detach().item() if isinstance(v, torch.Tensor) else v for v in values]
    try:
        return [float(v) for v in values]
    except (TypeError, ValueError):
        raise GrokvizError(f"{source}: '{name}' is not a list of numbers") from None


def merge_histories(
    train_losses: list[float], test_losses: list[float], notes: list[str], test_offset: int = 0
) -> list[dict[str, float]]:
    """Per-epoch loss lists -> log rows, one per step that has any value.

    ``train_losses[i]`` is the loss before update ``i``, i.e. after ``i`` updates: grokviz's step
    ``i`` (our log's convention too). ``test_losses`` is either per epoch too, or every ``k``-th
    epoch from 0 (the reference code's eval interval): ``k`` is the one that makes the counts fit,
    ``ceil(len(train) / k) == len(test)``. ``test_offset`` shifts the test steps: the reference
    code evaluates before the update (0), the TransformerLens demo after it (1). Accuracies and
    elapsed time are not stored: NaN.
    """
    n_train, n_test = len(train_losses), len(test_losses)
    test_every = 1
    if n_test and n_train and n_test < n_train:
        fits = [k for k in range(1, n_train + 1) if -(-n_train // k) == n_test]
        if fits:
            # Short histories fit several intervals; prefer a round one (1, 2, 5 x 10^n), as people choose.
            round_ones = [k for k in fits if k / 10 ** int(math.log10(k)) in (1, 2, 5)]
            test_every = (round_ones or fits)[0]
            if test_every > 1:
                also = f"; also consistent with every {fits[0]}-{fits[-1]} steps" if len(fits) > 1 else ""
                notes.append(
                    f"test losses placed every {test_every} steps from 0 "
                    f"({n_test} values for {n_train} train losses{also})"
                )
        else:
            notes.append(f"{n_test} test losses cannot be placed on {n_train} epochs at a regular interval; dropped")
            test_losses, n_test = [], 0
    nan = float("nan")
    rows: dict[int, dict[str, float]] = {}
    blank = lambda step: {
        "step": step,
        "train_loss": nan,
        "train_accuracy": nan,
        "test_loss": nan,  # noqa: E731
        "test_accuracy": nan,
        "elapsed_s": nan,
    }
    for step, loss in enumerate(train_losses):
        rows.setdefault(step, blank(step))["train_loss"] = loss
    for index, loss in enumerate(test_losses):
        step = index * test_every + test_offset
        rows.setdefault(step, blank(step))["test_loss"] = loss
    return [rows[step] for step in sorted(rows)]


# --- writing an imported run ----------------------------------------------------------------------


def write_run(imported: ImportedRun, out: str | Path) -> Path:
    """Write an imported run as a grokviz run folder (only through ``grokviz.storage.runs``' writers).

    ``run.json``'s ``source`` holds where it came from and every note, so the app can show them.
    """
    from grokviz.core.families import family_of
    from grokviz.storage.log import LogWriter
    from grokviz.storage.runs import require_new_folder, save_checkpoint, write_run_file

    out = Path(out)
    require_new_folder(out)
    source = imported.source + "".join(f"\n- {note}" for note in imported.notes)
    write_run_file(out, imported.config, source=source)
    for step, params in imported.checkpoints:
        save_checkpoint(out, step, params, imported.config)
    log = LogWriter(out, family_of(imported.config).log_columns)
    try:
        for row in imported.log_rows:
            log.append(row)
    finally:
        log.close()
    return out


# A block's tensor name: ``blocks.{l}.`` then the name within the block.
BLOCK = re.compile(r"^blocks\.(\d+)\.")


def block_0_name(name: str) -> str:
    """The name of the same tensor in block 0 (``blocks.2.mlp.W_in`` -> ``blocks.0.mlp.W_in``); others unchanged."""
    return BLOCK.sub("blocks.0.", name, count=1)


def check_ranks(state_dict: Mapping[str, Any], names, source: str, reference: bool = False) -> None:
    """Each named entry is a tensor of its layout's rank (sizes are checked against the config later)."""
    for name in names:
        tensor = state_dict[name]
        if not isinstance(tensor, torch.Tensor):
            raise GrokvizError(f"{source}: {name} is a {type(tensor).__name__}, not a tensor")
        # Both layouts have the same ranks except the reference's W_O, [d_model, n_heads * d_head].
        rank = 2 if reference and name == "blocks.0.attn.W_O" else len(PARAM_SHAPES[block_0_name(name)](Config()))
        if tensor.dim() != rank:
            raise GrokvizError(f"{source}: {name} has shape {tuple(tensor.shape)}; expected {rank} dimensions")


def per_pair_losses(params: Params, cfg: Config) -> tuple[torch.Tensor, torch.Tensor]:
    """Float64 cross-entropy and correctness of every pair, row-major ``a * p + b``: ([p^2], [p^2])."""
    from grokviz.core.fast_path import all_pairs, forward_all_pairs
    from grokviz.core.tasks import TASKS

    p = cfg.p
    a, b = all_pairs(p)  # [p^2] each
    labels = TASKS[cfg.task].op(a, b, p)
    logits = forward_all_pairs(params, arch=cfg.architecture).double()  # [p^2, p]; float64 as the training loss
    losses = -torch.log_softmax(logits, dim=-1).gather(1, labels[:, None])[:, 0]
    return losses, logits.argmax(dim=-1) == labels


# Stored losses are from one update before the saved weights; late in a run a step changes the
# loss by well under 1%, early on by a few percent. A wrong split is off by orders of magnitude.


def round_fraction(n_train: int, n_pairs: int) -> float:
    """The shortest decimal f with int(f * n_pairs) == n_train (0.3 for 3,830 of 12,769)."""
    for digits in range(1, 8):
        for candidate in (round(n_train / n_pairs, digits), round((n_train + 0.5) / n_pairs, digits)):
            if int(candidate * n_pairs) == n_train and 0 < candidate < 1:
                return candidate
    return (n_train + 0.5) / n_pairs
