"""The paper's reference code's files (*Progress measures for grokking*) read as an :class:`ImportedRun`.

A file holds one model (``{'model': state_dict, 'config'?: dict, 'optimizer'?, 'scheduler'?,
'train_losses'?, ...}``), a full run (``state_dicts`` + ``epochs``), or a bare state dict. Owns
reading them (:func:`import_progress_measures`, :func:`load_progress_measures_checkpoint`): the
step of each state dict, the loss history, and the train/test split, inferred from the stored
losses where the file does not say it (:func:`infer_reference_split`; docs/interop.md). The
layout conversion and the config mapping are ``grokviz.interop.progress_measures``'s.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from grokviz.core.config import Config
from grokviz.core.params import Params
from grokviz.errors import GrokvizError
from grokviz.interop.files import load_torch_file
from grokviz.interop.imported import ImportedRun, float_list, merge_histories, per_pair_losses, round_fraction
from grokviz.interop.progress_measures import (
    config_from_reference,
    reference_sizes,
    reference_split,
    reference_to_params,
)


def load_progress_measures_checkpoint(path: str | Path) -> tuple[Config, Params]:
    """A single-model reference file (``{'model': state_dict, 'config'?: dict, ...}``) -> (Config, Params).

    A full-run file (``state_dicts``/``epochs``) gives its last model. The split fields of the
    config are inferred from the stored losses when the file has no config (see
    :func:`import_progress_measures`).
    """
    imported = import_progress_measures(path)
    step, params = imported.checkpoints[-1]
    return imported.config, params


SPLIT_MATCH_TOLERANCE = 0.1
# Only a model that fits its train pairs much better than the rest identifies its split.
SPLIT_MIN_LOG_RATIO = 1.0
SPLIT_SEARCH_SEEDS = range(100)


def infer_reference_split(
    losses: torch.Tensor, p: int, stored: tuple[float, float], seeds=SPLIT_SEARCH_SEEDS, n_train: int | None = None
) -> tuple[int, int, float] | None:
    """The (seed, n_train) of the reference split that best reproduces the stored (train, test) loss.

    For each seed the shuffled order is fixed, so every train size is tried at once with cumulative
    sums. Returns ``(seed, n_train, error)`` when the best match is within ``SPLIT_MATCH_TOLERANCE``.
    """
    n_pairs = p * p
    best = None
    for seed in seeds:
        order = list(range(n_pairs))
        random.Random(seed).shuffle(order)
        shuffled = losses[torch.tensor(order)]
        cumulative = shuffled.cumsum(0)  # [n_pairs]
        sizes = torch.arange(1, n_pairs, dtype=torch.float64) if n_train is None else torch.tensor([float(n_train)])
        counts = sizes.long()
        train_mean = cumulative[counts - 1] / sizes
        test_mean = (cumulative[-1] - cumulative[counts - 1]) / (n_pairs - sizes)
        with torch.no_grad():
            error = (train_mean / stored[0]).log().abs() + (test_mean / stored[1]).log().abs()
        error = torch.nan_to_num(error, nan=math.inf)
        i = int(error.argmin())
        if best is None or error[i].item() < best[2]:
            best = (seed, int(counts[i]), error[i].item())
        if best[2] < SPLIT_MATCH_TOLERANCE:
            break  # seeds are tried in order; wrong splits miss by orders of magnitude, not by 10%
    if best is None or not best[2] < SPLIT_MATCH_TOLERANCE:
        return None
    return best


def _state_dicts_of(
    data: Mapping[str, Any], source: str
) -> tuple[list[Mapping[str, torch.Tensor]], list[int], list[str]]:
    """The file's state dicts and the step of each (= optimiser updates done), with notes."""
    notes: list[str] = []
    if "state_dicts" in data:
        state_dicts = list(data["state_dicts"])
        if "epochs" not in data:
            raise GrokvizError(
                f"{source}: a full-run file needs 'epochs' (the epoch of each state dict) beside 'state_dicts'"
            )
        epochs = [int(e) for e in float_list(data["epochs"], "epochs", source)]
        if len(epochs) != len(state_dicts) or not state_dicts:
            raise GrokvizError(f"{source}: {len(state_dicts)} state dicts but {len(epochs)} epochs; they must pair up")
        # The reference loop saves after that epoch's update: the weights have had epoch + 1 updates.
        notes.append(
            "each state dict saved at epoch e is stored as step e + 1 (the reference code saves after that epoch's update)"
        )
        order = sorted(range(len(epochs)), key=epochs.__getitem__)
        return [state_dicts[i] for i in order], [epochs[i] + 1 for i in order], notes
    if "model" in data:
        state_dict = data["model"]
    elif "embed.W_E" in data:
        state_dict = data  # a bare state dict
    else:
        raise GrokvizError(
            f"{source}: not a reference-code checkpoint: expected 'model' (one state dict) or 'state_dicts' + 'epochs' "
            f"(a full run), found keys {sorted(map(str, data))[:20]}"
        )
    scheduler = data.get("scheduler") if isinstance(data.get("scheduler"), Mapping) else None
    train_losses = data.get("train_losses")
    if scheduler is not None and isinstance(scheduler.get("last_epoch"), int):
        # LambdaLR counts its step() calls, one per optimiser update in the reference loop.
        step = scheduler["last_epoch"]
    elif train_losses is not None:
        step = len(train_losses)  # one loss is logged before each update
        notes.append(f"step {step} taken from the length of train_losses (no scheduler state)")
    elif "epoch" in data:
        step = int(data["epoch"]) + 1
        notes.append(f"step {step} taken as epoch + 1 (no scheduler state, no loss history)")
    else:
        step = 0
        notes.append("the file says nothing about how long the model trained; stored as step 0")
    return [state_dict], [step], notes


def import_progress_measures(path: str | Path) -> ImportedRun:
    """Read a reference-code file (single model or full run) into an :class:`ImportedRun`."""
    path = Path(path)
    source = str(path)
    data = load_torch_file(path)
    if not isinstance(data, Mapping):
        raise GrokvizError(f"{source}: expected a dict (as the reference code saves), found a {type(data).__name__}")
    state_dicts, steps, notes = _state_dicts_of(data, source)
    params_list = []
    for i, state_dict in enumerate(state_dicts):
        where = source if len(state_dicts) == 1 else f"{source}, state dict {i}"
        if not isinstance(state_dict, Mapping):
            raise GrokvizError(f"{where}: the state dict is a {type(state_dict).__name__}, not a dict of tensors")
        params_list.append(reference_to_params(state_dict, where))
    sizes = reference_sizes(state_dicts[-1], source)
    ref_config = data.get("config")
    if ref_config is not None and not isinstance(ref_config, Mapping):
        notes.append(f"'config' is a {type(ref_config).__name__}, not a dict; ignored")
        ref_config = None
    if ref_config is None:
        notes.append("the file has no config: p, d_model, n_heads, d_head, d_mlp read from the tensor shapes")
    optimizer = data.get("optimizer") if isinstance(data.get("optimizer"), Mapping) else None
    try:
        guess = config_from_reference(sizes, ref_config, optimizer, steps[-1])
    except GrokvizError as exc:
        raise GrokvizError(f"{source}: {exc}") from None
    cfg, notes = guess.config, notes + guess.notes

    train_losses = float_list(data.get("train_losses"), "train_losses", source)
    test_losses = float_list(data.get("test_losses"), "test_losses", source)
    log_rows = merge_histories(train_losses, test_losses, notes)
    if not log_rows:
        notes.append("the file has no loss history; the run's log is empty")

    # The stored losses pin down the split: those logged at the last checkpoint's step (a full
    # run), else one update before it (a single model's final losses).
    last_step = steps[-1]
    by_step = {row["step"]: row for row in log_rows if not math.isnan(row["train_loss"] + row["test_loss"])}
    if last_step in by_step or last_step - 1 in by_step:
        at = last_step if last_step in by_step else last_step - 1
        stored = (by_step[at]["train_loss"], by_step[at]["test_loss"], at)
    elif "train_loss" in data and "test_loss" in data:
        stored = (*(float_list([data[k]], k, source)[0] for k in ("train_loss", "test_loss")), last_step - 1)
    else:
        stored = None
    cfg, check_notes = _check_split(cfg, params_list[-1], stored, ref_config or {}, last_step)
    for name in ("seed", "frac_train"):
        if name in guess.defaulted and any(n.startswith(f"{name}=") or f", {name}=" in n for n in check_notes):
            notes.remove(guess.defaulted[name])  # replaced by the inference below
    notes += check_notes
    from grokviz.storage.runs import validate_params

    checkpoints = [(step, validate_params(params, cfg, source)) for step, params in zip(steps, params_list)]
    return ImportedRun(cfg, checkpoints, log_rows, notes, f"progress-measures: {path.resolve()}")


def _check_split(
    cfg: Config, params: Params, stored: tuple | None, ref_config: Mapping, step: int
) -> tuple[Config, list[str]]:
    """Evaluate the last model; infer seed/frac_train from stored (train, test, at_step) losses if the config lacks them."""
    notes = []
    losses, correct = per_pair_losses(params, cfg)
    notes.append(
        f"the imported model at step {step} is {correct.double().mean().item():.2%} accurate on all {cfg.p}^2 pairs"
    )
    if stored is None:
        notes.append("no stored losses near the last checkpoint to check the split against")
        return cfg, notes
    train_loss, test_loss, at = stored
    when = "at the same step" if at == step else f"at step {at}, {step - at} update(s) earlier"
    if not (train_loss > 0 and test_loss > 0) or abs(math.log(test_loss / train_loss)) < SPLIT_MIN_LOG_RATIO:
        # Every split of a model that treats train and test pairs alike gives these losses.
        notes.append(
            f"the stored train and test losses ({when}: {train_loss:.4g}, {test_loss:.4g}) are too close "
            "to tell splits apart; the split is not checked"
            + (
                ""
                if "seed" in ref_config and "frac_train" in ref_config
                else " (seed and frac_train keep their defaults)"
            )
        )
        return cfg, notes
    known_seed, known_frac = "seed" in ref_config, "frac_train" in ref_config
    n_pairs = cfg.p * cfg.p
    found = infer_reference_split(
        losses,
        cfg.p,
        (train_loss, test_loss),
        seeds=[cfg.seed] if known_seed else SPLIT_SEARCH_SEEDS,
        n_train=int(cfg.frac_train * n_pairs) if known_frac else None,
    )
    if found is None:
        what = "the stored config's split" if known_seed and known_frac else "no reference split (seeds 0-99, any size)"
        notes.append(
            f"{what} reproduces the stored losses ({when}: train {train_loss:.4g}, test {test_loss:.4g}); "
            "train/test numbers computed by grokviz will not be the file's"
        )
        return cfg, notes
    seed, n_train, _ = found
    if not (known_seed and known_frac):
        frac = round_fraction(n_train, n_pairs)
        cfg = cfg.replace(seed=seed, frac_train=frac)
        notes.append(
            f"seed={seed}, frac_train={frac} inferred: the first reference split (seeds 0-99, any train "
            "size) that reproduces the stored losses within 10%"
        )
    train_idx, test_idx = reference_split(cfg.p, cfg.frac_train, cfg.seed)
    notes.append(
        f"check: on the reference split the imported model's train loss is {losses[train_idx].mean().item():.6g} "
        f"and test loss {losses[test_idx].mean().item():.6g}; stored ({when}): {train_loss:.6g} and {test_loss:.6g}"
    )
    return cfg, notes
