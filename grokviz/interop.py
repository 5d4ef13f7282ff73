"""Other people's models in, ours out: the paper's reference code and TransformerLens.

Owns the layout conversions and the importers/exporter; ``grokviz.convert`` is their CLI.

* **Reference code** (*Progress measures for grokking*, left-multiplying): ``embed.W_E
  [d_model, d_vocab]``, ``blocks.0.attn.W_Q/K/V [n_heads, d_head, d_model]``, ``W_O [d_model,
  n_heads*d_head]`` applied to ``z`` flattened head-major as ``(head d_head)``, ``W_in [d_mlp,
  d_model]``, ``W_out [d_model, d_mlp]``, ``unembed.W_U [d_model, d_vocab]`` (an output column for
  the ``=`` token, dropped here), and a ``mask`` buffer (must be the causal lower triangle).
* **grokviz / TransformerLens** (right-multiplying): see ``grokviz.model.PARAM_SHAPES``.
  TransformerLens 3.x ``HookedTransformer`` also holds zero attention/unembedding biases and the
  ``mask``/``IGNORE`` buffers; the exporter writes them, the importer checks and drops them.

Pickles are read only with ``torch.load(..., weights_only=True)``: a file that needs full
unpickling (which can run arbitrary code) is refused with the reason.
"""

from __future__ import annotations

import math
import pickle
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch

from .config import Config
from .errors import GrokvizError
from .model import PARAM_SHAPES, Params
from .tasks import make_dataset

PARAM_NAMES = tuple(PARAM_SHAPES)  # our tensor names, in checkpoint order

# --- reading pickles safely ---------------------------------------------------------------------


class TransformerLensConfigFields:
    """Stand-in for a pickled ``HookedTransformerConfig``: receives its fields and nothing else.

    The TransformerLens grokking demo saves ``model.cfg`` itself. Registering this inert class
    under TransformerLens' class names lets ``torch.load(weights_only=True)`` rebuild the fields
    (a dataclass pickles as "new object + update its __dict__") without importing or running any
    TransformerLens code; the field values still pass weights_only's allow-list.
    """


TL_CONFIG_PICKLE_NAMES = (
    "transformer_lens.HookedTransformerConfig.HookedTransformerConfig",  # TransformerLens 1.x-2.x
    "transformer_lens.config.HookedTransformerConfig.HookedTransformerConfig",  # 3.x
    "transformer_lens.config.hooked_transformer_config.HookedTransformerConfig",
)


def _stand_ins_to_dicts(value: Any) -> Any:
    if isinstance(value, TransformerLensConfigFields):
        return dict(vars(value))
    if isinstance(value, dict):
        return {k: _stand_ins_to_dicts(v) for k, v in value.items()}
    return value


def load_torch_file(path: str | Path) -> Any:
    """``torch.load(path, weights_only=True)`` on CPU, every failure as a GrokvizError naming the file.

    A pickled ``HookedTransformerConfig`` comes back as a plain dict of its fields (see
    :class:`TransformerLensConfigFields`); any other class is refused.
    """
    path = Path(path)
    if not path.is_file():
        raise GrokvizError(f"{path}: no such file")
    stand_ins = [(TransformerLensConfigFields, name) for name in TL_CONFIG_PICKLE_NAMES]
    try:
        with torch.serialization.safe_globals(stand_ins):
            return _stand_ins_to_dicts(torch.load(path, map_location="cpu", weights_only=True))
    except pickle.UnpicklingError as exc:
        # weights_only refuses any class outside torch's allow-list of tensors, containers and numbers.
        match = re.search(r"WeightsUnpickler error:\s*(.*?)(?:\s+Please use|\n\n|$)", str(exc), re.DOTALL)
        detail = " ".join((match.group(1) if match else str(exc).splitlines()[0]).split())
        if "Unsupported global" in detail:
            raise GrokvizError(
                f"{path}: refused: this file holds Python objects that only full unpickling can rebuild "
                f"({detail}); full unpickling can run arbitrary code, so grokviz reads pickles only with "
                "torch.load(weights_only=True). Re-save it with plain tensors, dicts, lists and numbers, e.g. "
                "torch.save({'model': model.state_dict(), 'config': model.cfg.to_dict()}, FILE)"
            ) from None
        raise GrokvizError(
            f"{path}: not a readable torch.save file: torch.load(weights_only=True) fails ({detail}); either it "
            "is not a torch.save file, or it needs full unpickling, which grokviz refuses because it can run "
            "arbitrary code"
        ) from None
    except Exception as exc:  # noqa: BLE001 - the unpickler fails on garbage bytes with any exception type
        raise GrokvizError(f"{path}: not a readable torch.save file ({type(exc).__name__}: {exc})") from None


# --- the reference code's layout ----------------------------------------------------------------

REFERENCE_KEYS = (
    "embed.W_E", "pos_embed.W_pos", "blocks.0.attn.W_Q", "blocks.0.attn.W_K", "blocks.0.attn.W_V",
    "blocks.0.attn.W_O", "blocks.0.mlp.W_in", "blocks.0.mlp.b_in", "blocks.0.mlp.W_out",
    "blocks.0.mlp.b_out", "unembed.W_U",
)
REFERENCE_BUFFERS = ("blocks.0.attn.mask",)

# Reference ``fn_name`` -> grokviz task (the reference code also has 'rand', which we cannot show).
REFERENCE_TASKS = {"add": "add", "subtract": "sub", "x2xyy2": "x2_plus_xy_plus_y2"}


def _check_ranks(state_dict: Mapping[str, Any], names, source: str, reference: bool = False) -> None:
    """Each named entry is a tensor of its layout's rank (sizes are checked against the config later)."""
    for name in names:
        tensor = state_dict[name]
        if not isinstance(tensor, torch.Tensor):
            raise GrokvizError(f"{source}: {name} is a {type(tensor).__name__}, not a tensor")
        # Both layouts have the same ranks except the reference's W_O, [d_model, n_heads * d_head].
        rank = 2 if reference and name == "blocks.0.attn.W_O" else len(PARAM_SHAPES[name](Config()))
        if tensor.dim() != rank:
            raise GrokvizError(f"{source}: {name} has shape {tuple(tensor.shape)}; expected {rank} dimensions")


def reference_sizes(state_dict: Mapping[str, torch.Tensor], source: str = "state dict") -> dict[str, int]:
    """p, d_model, n_heads, d_head, d_mlp of a reference-layout state dict, from its shapes alone."""
    missing = [k for k in REFERENCE_KEYS if k not in state_dict]
    if missing:
        raise GrokvizError(
            f"{source}: not a reference-code (Progress measures) state dict: missing {missing}; "
            f"expected the keys {list(REFERENCE_KEYS)}"
        )
    extra = sorted(set(state_dict) - set(REFERENCE_KEYS) - set(REFERENCE_BUFFERS))
    if extra:
        raise GrokvizError(
            f"{source}: unexpected tensors {extra}; grokviz imports the 1-layer, no-LayerNorm model only"
        )
    _check_ranks(state_dict, REFERENCE_KEYS, source, reference=True)
    d_model, d_vocab = state_dict["embed.W_E"].shape
    n_heads, d_head, _ = state_dict["blocks.0.attn.W_Q"].shape
    d_mlp = state_dict["blocks.0.mlp.W_in"].shape[0]
    return {"p": d_vocab - 1, "d_model": d_model, "n_heads": n_heads, "d_head": d_head, "d_mlp": d_mlp,
            "n_ctx": state_dict["pos_embed.W_pos"].shape[0]}


def reference_to_params(state_dict: Mapping[str, torch.Tensor], source: str = "state dict") -> Params:
    """Left-multiplying reference tensors -> grokviz/TransformerLens names and layout (fp32).

    The conversion is exact (transposes and a reshape); the only information dropped is the
    unembedding's ``=`` output column, which the task never asks for.
    """
    sizes = reference_sizes(state_dict, source)
    n_heads, d_head, d_model = sizes["n_heads"], sizes["d_head"], sizes["d_model"]
    mask = state_dict.get("blocks.0.attn.mask")
    if mask is not None:
        n_ctx = mask.shape[-1]
        if tuple(mask.shape) != (n_ctx, n_ctx) or not torch.equal(mask.float(), torch.ones(n_ctx, n_ctx).tril()):
            raise GrokvizError(f"{source}: blocks.0.attn.mask is not the causal lower triangle; grokviz's model is causal")
    sd = {k: state_dict[k].detach().to("cpu", torch.float32) for k in REFERENCE_KEYS}
    W_O = sd["blocks.0.attn.W_O"]  # [d_model, (head d_head)]
    if tuple(W_O.shape) != (d_model, n_heads * d_head):
        raise GrokvizError(f"{source}: blocks.0.attn.W_O has shape {tuple(W_O.shape)}, expected {(d_model, n_heads * d_head)}")
    params = {
        "embed.W_E": sd["embed.W_E"].T,  # [d_vocab, d_model]
        "pos_embed.W_pos": sd["pos_embed.W_pos"],  # [n_ctx, d_model], same in both
        "blocks.0.attn.W_Q": sd["blocks.0.attn.W_Q"].transpose(1, 2),  # [head, d_model, d_head]
        "blocks.0.attn.W_K": sd["blocks.0.attn.W_K"].transpose(1, 2),
        "blocks.0.attn.W_V": sd["blocks.0.attn.W_V"].transpose(1, 2),
        # z is flattened as (head d_head), head-major: row h*d_head + i of W_O.T is head h, index i.
        "blocks.0.attn.W_O": W_O.T.reshape(n_heads, d_head, d_model),  # [head, d_head, d_model]
        "blocks.0.mlp.W_in": sd["blocks.0.mlp.W_in"].T,  # [d_model, d_mlp]
        "blocks.0.mlp.b_in": sd["blocks.0.mlp.b_in"],
        "blocks.0.mlp.W_out": sd["blocks.0.mlp.W_out"].T,  # [d_mlp, d_model]
        "blocks.0.mlp.b_out": sd["blocks.0.mlp.b_out"],
        "unembed.W_U": sd["unembed.W_U"][:, : sizes["p"]],  # [d_model, p]: the '=' column dropped
    }
    return {k: v.contiguous().clone() for k, v in params.items()}


def reference_split(p: int, frac_train: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The reference code's train/test split (``random.shuffle``) as sorted indices ``a * p + b``."""
    dataset = make_dataset("add", p, frac_train, seed, split="python")
    return dataset.train_idx, dataset.test_idx


@dataclass
class ConfigGuess:
    """A Config built from partial information, with a plain account of where each value came from."""

    config: Config
    notes: list[str] = field(default_factory=list)  # one sentence per guessed, conflicting or dropped field
    defaulted: dict[str, str] = field(default_factory=dict)  # field -> its note, for fields set to a default


def _config_from_reference(
    sizes: Mapping[str, int],
    ref_config: Mapping[str, Any] | None,
    optimizer: Mapping[str, Any] | None,
    steps: int | None,
) -> ConfigGuess:
    """Map the reference code's config (and what the optimizer state says) onto our Config."""
    values: dict[str, Any] = {k: sizes[k] for k in ("p", "d_model", "n_heads", "d_head", "d_mlp")}
    notes: list[str] = []
    ref = dict(ref_config or {})
    # Sizes come from the tensors; a config that disagrees is a different model, not a hint.
    size_names = {"p": "p", "d_model": "d_model", "num_heads": "n_heads", "d_head": "d_head", "d_mlp": "d_mlp",
                  "n_ctx": "n_ctx", "d_vocab": "d_vocab"}
    for ref_name, ours in size_names.items():
        if ref_name in ref:
            expected = sizes["p"] + 1 if ours == "d_vocab" else sizes[ours]
            stated = ref.pop(ref_name)
            if int(stated) != expected:
                raise GrokvizError(f"the config says {ref_name}={stated!r} but the tensors imply {expected}")
    if sizes["n_ctx"] != 3:
        raise GrokvizError(f"pos_embed.W_pos has {sizes['n_ctx']} positions; grokviz's task has exactly 3 ([a, b, =])")
    for name, allowed in (("act_type", ("ReLU", "relu")), ("use_ln", (False,)), ("num_layers", (1,)),
                          ("batch_style", ("full",))):
        if name in ref and ref[name] not in allowed:
            raise GrokvizError(f"config has {name}={ref[name]!r}; grokviz's model needs {allowed[0]!r}")
        ref.pop(name, None)
    if "fn_name" in ref:
        fn_name = ref.pop("fn_name")
        if fn_name not in REFERENCE_TASKS:
            raise GrokvizError(f"config has fn_name={fn_name!r}; grokviz knows {sorted(REFERENCE_TASKS)}")
        values["task"] = REFERENCE_TASKS[fn_name]
    else:
        notes.append("task guessed as 'add' (the file has no config)")
    for name in ("frac_train", "seed", "lr", "weight_decay"):
        if name in ref:
            values[name] = type(getattr(Config, name))(ref.pop(name))
    # The optimizer state holds the values AdamW actually used; prefer it and say so on conflict.
    group = (optimizer or {}).get("param_groups", [{}])[0] if optimizer else {}
    for ours, theirs in (("lr", "initial_lr"), ("weight_decay", "weight_decay")):
        if theirs in group:
            used = float(group[theirs])
            if ours in values and not math.isclose(values[ours], used):
                notes.append(f"{ours}: the config says {values[ours]:g} but the optimizer state says {used:g} "
                             f"(the value AdamW actually used); {used:g} recorded")
            values[ours] = used
    if "betas" in group:
        values["beta1"], values["beta2"] = (float(b) for b in group["betas"])
    defaulted = {}
    for name, default in (("frac_train", 0.3), ("seed", 0), ("lr", 1e-3), ("weight_decay", 1.0)):
        if name not in values:
            values[name] = default
            defaulted[name] = f"{name} not stored; defaulted to {default} (the reference default)"
            notes.append(defaulted[name])
    if "beta1" not in values:
        notes.append("AdamW betas not stored; (0.9, 0.98) assumed (the reference code's)")
    notes.append("warm-up of 10 steps assumed (the reference code's LambdaLR min(step/10, 1); a scheduler's lambda is not stored)")
    # The reference shuffles with Python's random; split="python" makes grokviz evaluate the same pairs.
    values["split"] = "python"
    notes.append("train/test split: the reference code's (Python random.shuffle of the pairs with the seed), "
                 "recorded as split='python'")
    if steps is not None:
        values["steps"] = max(1, steps)
    no_equivalent = sorted(ref)
    if no_equivalent:
        notes.append("reference config fields with no grokviz equivalent (dropped): "
                     + ", ".join(f"{k}={ref[k]!r}" for k in no_equivalent))
    try:
        return ConfigGuess(Config(**values), notes, defaulted)
    except GrokvizError as exc:
        raise GrokvizError(f"the imported model does not fit grokviz: {exc}") from None


def from_progress_measures_state_dict(
    state_dict: Mapping[str, torch.Tensor], cfg_hint: Config | Mapping[str, Any] | None = None
) -> tuple[Config, Params]:
    """A reference-code state dict -> (our Config, right-multiplying fp32 params).

    ``cfg_hint`` is either our Config (its sizes must match the tensors) or the reference code's
    config dict (mapped field by field; fields with no equivalent are dropped). Without a hint,
    sizes come from the shapes and everything else is the reference defaults.
    """
    params = reference_to_params(state_dict)
    sizes = reference_sizes(state_dict)
    if isinstance(cfg_hint, Config):
        cfg = cfg_hint
    else:
        cfg = _config_from_reference(sizes, cfg_hint, None, None).config
    from .runs import validate_params  # runs imports model only; no cycle, but keep interop light to import

    return cfg, validate_params(params, cfg, "reference state dict")


def load_progress_measures_checkpoint(path: str | Path) -> tuple[Config, Params]:
    """A single-model reference file (``{'model': state_dict, 'config'?: dict, ...}``) -> (Config, Params).

    A full-run file (``state_dicts``/``epochs``) gives its last model. The split fields of the
    config are inferred from the stored losses when the file has no config (see
    :func:`import_progress_measures`).
    """
    imported = import_progress_measures(path)
    step, params = imported.checkpoints[-1]
    return imported.config, params


# --- importing a whole reference file -------------------------------------------------------------


@dataclass
class ImportedRun:
    """Everything an importer found in a file, ready for :func:`write_run`."""

    config: Config
    checkpoints: list[tuple[int, Params]]  # (step = optimiser updates done, fp32 params), ascending
    log_rows: list[dict[str, float]]  # runs.LOG_COLUMNS; NaN where the file has no value
    notes: list[str]  # plain sentences: what was guessed, what conflicted, what was checked
    source: str  # e.g. "progress-measures: /path/file.pth"


def _floats(values: Any, name: str, source: str) -> list[float]:
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
                notes.append(f"test losses placed every {test_every} steps from 0 "
                             f"({n_test} values for {n_train} train losses{also})")
        else:
            notes.append(f"{n_test} test losses cannot be placed on {n_train} epochs at a regular interval; dropped")
            test_losses, n_test = [], 0
    nan = float("nan")
    rows: dict[int, dict[str, float]] = {}
    blank = lambda step: {"step": step, "train_loss": nan, "train_accuracy": nan, "test_loss": nan,  # noqa: E731
                          "test_accuracy": nan, "elapsed_s": nan}
    for step, loss in enumerate(train_losses):
        rows.setdefault(step, blank(step))["train_loss"] = loss
    for index, loss in enumerate(test_losses):
        step = index * test_every + test_offset
        rows.setdefault(step, blank(step))["test_loss"] = loss
    return [rows[step] for step in sorted(rows)]


def per_pair_losses(params: Params, cfg: Config) -> tuple[torch.Tensor, torch.Tensor]:
    """Float64 cross-entropy and correctness of every pair, row-major ``a * p + b``: ([p^2], [p^2])."""
    from .model import forward_last
    from .tasks import TASKS

    p = cfg.p
    a = torch.arange(p).repeat_interleave(p)  # [p^2]
    b = torch.arange(p).repeat(p)  # [p^2]
    labels = TASKS[cfg.task].op(a, b, p)
    with torch.no_grad():
        logits = forward_last(params, a, b).double()  # [p^2, p]; float64 as the training loss
    losses = -torch.log_softmax(logits, dim=-1).gather(1, labels[:, None])[:, 0]
    return losses, logits.argmax(dim=-1) == labels


# Stored losses are from one update before the saved weights; late in a run a step changes the
# loss by well under 1%, early on by a few percent. A wrong split is off by orders of magnitude.
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


def round_fraction(n_train: int, n_pairs: int) -> float:
    """The shortest decimal f with int(f * n_pairs) == n_train (0.3 for 3,830 of 12,769)."""
    for digits in range(1, 8):
        for candidate in (round(n_train / n_pairs, digits), round((n_train + 0.5) / n_pairs, digits)):
            if int(candidate * n_pairs) == n_train and 0 < candidate < 1:
                return candidate
    return (n_train + 0.5) / n_pairs


def _state_dicts_of(data: Mapping[str, Any], source: str) -> tuple[list[Mapping[str, torch.Tensor]], list[int], list[str]]:
    """The file's state dicts and the step of each (= optimiser updates done), with notes."""
    notes: list[str] = []
    if "state_dicts" in data:
        state_dicts = list(data["state_dicts"])
        if "epochs" not in data:
            raise GrokvizError(f"{source}: a full-run file needs 'epochs' (the epoch of each state dict) beside 'state_dicts'")
        epochs = [int(e) for e in _floats(data["epochs"], "epochs", source)]
        if len(epochs) != len(state_dicts) or not state_dicts:
            raise GrokvizError(f"{source}: {len(state_dicts)} state dicts but {len(epochs)} epochs; they must pair up")
        # The reference loop saves after that epoch's update: the weights have had epoch + 1 updates.
        notes.append("each state dict saved at epoch e is stored as step e + 1 (the reference code saves after that epoch's update)")
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
        guess = _config_from_reference(sizes, ref_config, optimizer, steps[-1])
    except GrokvizError as exc:
        raise GrokvizError(f"{source}: {exc}") from None
    cfg, notes = guess.config, notes + guess.notes

    train_losses = _floats(data.get("train_losses"), "train_losses", source)
    test_losses = _floats(data.get("test_losses"), "test_losses", source)
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
        stored = (*(_floats([data[k]], k, source)[0] for k in ("train_loss", "test_loss")), last_step - 1)
    else:
        stored = None
    cfg, check_notes = _check_split(cfg, params_list[-1], stored, ref_config or {}, last_step)
    for name in ("seed", "frac_train"):
        if name in guess.defaulted and any(n.startswith(f"{name}=") or f", {name}=" in n for n in check_notes):
            notes.remove(guess.defaulted[name])  # replaced by the inference below
    notes += check_notes
    from .runs import validate_params

    checkpoints = [(step, validate_params(params, cfg, source)) for step, params in zip(steps, params_list)]
    return ImportedRun(cfg, checkpoints, log_rows, notes, f"progress-measures: {path.resolve()}")


def _check_split(cfg: Config, params: Params, stored: tuple | None, ref_config: Mapping, step: int) -> tuple[Config, list[str]]:
    """Evaluate the last model; infer seed/frac_train from stored (train, test, at_step) losses if the config lacks them."""
    notes = []
    losses, correct = per_pair_losses(params, cfg)
    notes.append(f"the imported model at step {step} is {correct.double().mean().item():.2%} accurate on all {cfg.p}^2 pairs")
    if stored is None:
        notes.append("no stored losses near the last checkpoint to check the split against")
        return cfg, notes
    train_loss, test_loss, at = stored
    when = "at the same step" if at == step else f"at step {at}, {step - at} update(s) earlier"
    if not (train_loss > 0 and test_loss > 0) or abs(math.log(test_loss / train_loss)) < SPLIT_MIN_LOG_RATIO:
        # Every split of a model that treats train and test pairs alike gives these losses.
        notes.append(f"the stored train and test losses ({when}: {train_loss:.4g}, {test_loss:.4g}) are too close "
                     "to tell splits apart; the split is not checked" + ("" if "seed" in ref_config and "frac_train"
                     in ref_config else " (seed and frac_train keep their defaults)"))
        return cfg, notes
    known_seed, known_frac = "seed" in ref_config, "frac_train" in ref_config
    n_pairs = cfg.p * cfg.p
    found = infer_reference_split(
        losses, cfg.p, (train_loss, test_loss),
        seeds=[cfg.seed] if known_seed else SPLIT_SEARCH_SEEDS,
        n_train=int(cfg.frac_train * n_pairs) if known_frac else None,
    )
    if found is None:
        what = "the stored config's split" if known_seed and known_frac else "no reference split (seeds 0-99, any size)"
        notes.append(f"{what} reproduces the stored losses ({when}: train {train_loss:.4g}, test {test_loss:.4g}); "
                     "train/test numbers computed by grokviz will not be the file's")
        return cfg, notes
    seed, n_train, _ = found
    if not (known_seed and known_frac):
        frac = round_fraction(n_train, n_pairs)
        cfg = cfg.replace(seed=seed, frac_train=frac)
        notes.append(f"seed={seed}, frac_train={frac} inferred: the first reference split (seeds 0-99, any train "
                     "size) that reproduces the stored losses within 10%")
    train_idx, test_idx = reference_split(cfg.p, cfg.frac_train, cfg.seed)
    notes.append(
        f"check: on the reference split the imported model's train loss is {losses[train_idx].mean().item():.6g} "
        f"and test loss {losses[test_idx].mean().item():.6g}; stored ({when}): {train_loss:.6g} and {test_loss:.6g}"
    )
    return cfg, notes


# --- TransformerLens ----------------------------------------------------------------------------

# The HookedTransformerConfig arguments that describe our model (exactly TransformerLens' names).
# ``init_weights``/``seed`` follow the TransformerLens grokking demo; the weights are replaced by
# ``load_state_dict`` anyway. ``device`` and ``dtype`` are left to TransformerLens' defaults.
TL_FIXED = {
    "n_layers": 1,
    "act_fn": "relu",
    "normalization_type": None,
    "attn_only": False,
    "positional_embedding_type": "standard",
    "attention_dir": "causal",
    "use_attn_scale": True,
}
# Zero biases TransformerLens has and we do not: name -> shape.
TL_ZERO_BIASES = {
    "blocks.0.attn.b_Q": lambda c: (c.n_heads, c.d_head),
    "blocks.0.attn.b_K": lambda c: (c.n_heads, c.d_head),
    "blocks.0.attn.b_V": lambda c: (c.n_heads, c.d_head),
    "blocks.0.attn.b_O": lambda c: (c.d_model,),
    "unembed.b_U": lambda c: (c.d_vocab_out,),
}
TL_BUFFERS = ("blocks.0.attn.mask", "blocks.0.attn.IGNORE")


def to_transformer_lens(params: Params, cfg: Config) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Our params -> (HookedTransformerConfig kwargs, state dict for ``HookedTransformer.load_state_dict``).

    The state dict has every entry a TransformerLens 3.x ``HookedTransformer`` of this config holds
    (``strict=True`` loading works): our weights as they are (same names and layout), the zero
    attention/unembedding biases, and the ``mask`` (causal, bool) and ``IGNORE`` (-inf) buffers.
    """
    from .runs import validate_params

    params = validate_params(params, cfg, "params")
    tl_config = {
        **TL_FIXED,
        "n_heads": cfg.n_heads,
        "d_model": cfg.d_model,
        "d_head": cfg.d_head,
        "d_mlp": cfg.d_mlp,
        "d_vocab": cfg.d_vocab,
        "d_vocab_out": cfg.d_vocab_out,
        "n_ctx": cfg.n_ctx,
        "init_weights": True,
        "seed": cfg.seed,
    }
    state_dict = {name: tensor.clone() for name, tensor in params.items()}
    for name, shape in TL_ZERO_BIASES.items():
        state_dict[name] = torch.zeros(shape(cfg))
    state_dict["blocks.0.attn.mask"] = torch.ones(cfg.n_ctx, cfg.n_ctx, dtype=torch.bool).tril()
    state_dict["blocks.0.attn.IGNORE"] = torch.tensor(-math.inf)
    return tl_config, state_dict


def _tl_sizes_from_shapes(state_dict: Mapping[str, torch.Tensor], source: str) -> dict[str, int]:
    needed = ("embed.W_E", "pos_embed.W_pos", "blocks.0.attn.W_Q", "blocks.0.mlp.W_in", "unembed.W_U")
    missing = [k for k in needed if k not in state_dict]
    if missing:
        raise GrokvizError(f"{source}: not a 1-layer TransformerLens state dict (missing {missing})")
    _check_ranks(state_dict, [k for k in PARAM_NAMES if k in state_dict], source)
    d_vocab, d_model = state_dict["embed.W_E"].shape
    n_heads, _, d_head = state_dict["blocks.0.attn.W_Q"].shape
    return {"d_vocab": d_vocab, "d_model": d_model, "n_heads": n_heads, "d_head": d_head,
            "d_mlp": state_dict["blocks.0.mlp.W_in"].shape[1], "d_vocab_out": state_dict["unembed.W_U"].shape[1],
            "n_ctx": state_dict["pos_embed.W_pos"].shape[0], "n_layers": 1}


def transformer_lens_to_params(
    state_dict: Mapping[str, torch.Tensor], tl_config: Mapping[str, Any] | None, source: str = "state dict"
) -> tuple[Config, Params, list[str]]:
    """A HookedTransformer state dict (+ its config, or None to read sizes from shapes) -> (Config, params, notes)."""
    notes: list[str] = []
    if not isinstance(state_dict, Mapping) or not all(isinstance(v, torch.Tensor) for v in state_dict.values()):
        raise GrokvizError(f"{source}: the state dict must map names to tensors")
    shapes = _tl_sizes_from_shapes(state_dict, source)
    if tl_config is None:
        tl = dict(shapes)
        notes.append("no TransformerLens config: sizes read from the tensor shapes; act_fn='relu', no normalization, "
                     "causal attention scaled by 1/sqrt(d_head) assumed (the grokking demo's)")
    else:
        tl = dict(tl_config)
        for name, value in shapes.items():
            stated = tl.get(name)
            if stated is not None and stated != -1 and stated != value:
                raise GrokvizError(f"{source}: the config says {name}={stated!r} but the tensors imply {value}")
            tl[name] = value
    problems = []
    for name, wanted in TL_FIXED.items():
        value = tl.get(name, wanted)
        if name == "act_fn" and isinstance(value, str):
            value = value.lower()
        if value != wanted:
            problems.append(f"{name}={value!r} (grokviz's model needs {wanted!r})")
    attn_scale = tl.get("attn_scale", -1.0)
    if attn_scale not in (None, -1, -1.0) and not math.isclose(float(attn_scale), math.sqrt(shapes["d_head"])):
        problems.append(f"attn_scale={attn_scale} (grokviz's model divides by sqrt(d_head)={math.sqrt(shapes['d_head']):g})")
    for flag in ("use_local_attn", "parallel_attn_mlp", "gated_mlp", "post_embedding_ln", "use_qk_norm"):
        if tl.get(flag):
            problems.append(f"{flag}=True")
    if tl.get("num_experts"):
        problems.append(f"num_experts={tl['num_experts']}")
    layer_keys = sorted({k.split(".")[1] for k in state_dict if k.startswith("blocks.")})
    if layer_keys != ["0"]:
        problems.append(f"layers {layer_keys} (grokviz's model has exactly one)")
    if problems:
        raise GrokvizError(f"{source}: this TransformerLens model is not grokviz's architecture: " + "; ".join(problems))
    if shapes["d_vocab"] != shapes["d_vocab_out"] + 1:
        raise GrokvizError(f"{source}: d_vocab={shapes['d_vocab']} and d_vocab_out={shapes['d_vocab_out']}; grokviz's "
                           "task has p output classes and p + 1 input tokens (the last is '=')")
    p = shapes["d_vocab_out"]
    if shapes["n_ctx"] < 3:
        raise GrokvizError(f"{source}: n_ctx={shapes['n_ctx']}; the task needs 3 positions ([a, b, =])")

    # Biases we do not have must be zero; anything else is not silently dropped.
    expected = set(PARAM_NAMES) | set(TL_ZERO_BIASES) | set(TL_BUFFERS)
    unexpected = sorted(set(state_dict) - expected)
    if unexpected:
        raise GrokvizError(f"{source}: unexpected tensors {unexpected}; grokviz imports the 1-layer, no-LayerNorm model only")
    for name in TL_ZERO_BIASES:
        if name in state_dict and state_dict[name].abs().max().item() != 0:
            raise GrokvizError(f"{source}: {name} is not zero (max |value| {state_dict[name].abs().max().item():.3g}); "
                               "grokviz's model has no such bias, so it cannot represent this model exactly")
    mask = state_dict.get("blocks.0.attn.mask")
    if mask is not None and not torch.equal(mask.bool(), torch.ones_like(mask, dtype=torch.bool).tril()):
        raise GrokvizError(f"{source}: blocks.0.attn.mask is not causal")
    params = {name: state_dict[name].detach().to("cpu", torch.float32).clone() for name in PARAM_NAMES if name in state_dict}
    if shapes["n_ctx"] > 3:
        params["pos_embed.W_pos"] = params["pos_embed.W_pos"][:3].clone()
        notes.append(f"n_ctx={shapes['n_ctx']}: only the first 3 positional embeddings are used by the task; kept those")
    values = {k: shapes[k] for k in ("d_model", "n_heads", "d_head", "d_mlp")}
    if tl.get("seed") is not None:
        values["seed"] = int(tl["seed"])
    try:
        cfg = Config(p=p, **values)
    except GrokvizError as exc:
        raise GrokvizError(f"{source}: the model does not fit grokviz: {exc}") from None
    from .runs import validate_params

    return cfg, validate_params(params, cfg, source), notes


def from_transformer_lens(state_dict: Mapping[str, torch.Tensor], tl_config: Mapping[str, Any] | None) -> tuple[Config, Params]:
    """A ``HookedTransformer`` state dict plus its config dict -> (our Config, params).

    ``tl_config`` is a dict of HookedTransformerConfig arguments (e.g. ``model.cfg.to_dict()``);
    ``None`` reads the sizes from the tensor shapes. The task, split and optimiser are not in a
    TransformerLens config: they get grokviz's defaults (see :func:`import_transformer_lens` for
    a whole file, which also reads the split and loss history of the grokking demo).
    """
    cfg, params, _ = transformer_lens_to_params(state_dict, tl_config)
    return cfg, params


def _read_json(path: Path) -> dict[str, Any]:
    import json

    try:
        body = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GrokvizError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise GrokvizError(f"{path}: not readable JSON ({exc})") from None
    if not isinstance(body, dict):
        raise GrokvizError(f"{path}: expected a JSON object of HookedTransformerConfig arguments")
    return body


# The TransformerLens grokking demo's data seed and fraction: its split equals grokviz's split with
# data_seed=598 (both are torch.randperm(p*p) from a generator seeded 598; checked in the tests).
TL_DEMO_DATA_SEED = 598
TL_DEMO_FRAC_TRAIN = 0.3


def import_transformer_lens(path: str | Path, config_path: str | Path | None = None, task: str = "add") -> ImportedRun:
    """A TransformerLens model file -> :class:`ImportedRun`.

    ``path`` is either a ``.safetensors`` state dict (its config from ``config_path``, or from a
    JSON file beside it with the same stem, or from the shapes), or a ``torch.save``'d dict as the
    grokking demo saves it: ``model`` (state dict), ``config`` (``model.cfg`` or a dict of its
    fields), and optionally ``checkpoints`` + ``checkpoint_epochs``, ``train_losses``,
    ``test_losses``, ``train_indices``. A bare state dict works too. The demo's ``config`` is a
    ``HookedTransformerConfig`` object: it is read as a dict of its fields without TransformerLens
    (see :func:`load_torch_file`).
    """
    from .runs import read_safetensors

    path = Path(path)
    source = str(path)
    notes: list[str] = []
    data: Mapping[str, Any] = {}
    grokviz_meta: dict[str, str] = {}
    if path.suffix == ".safetensors":
        state_dict, metadata = read_safetensors(path)
        if metadata.get("format") == "grokviz.transformer-lens/1":
            grokviz_meta = metadata  # our own export: its config and step come back exactly
        sibling = path.with_suffix(".json")
        if config_path is None and sibling.is_file():
            config_path = sibling
            notes.append(f"config read from {sibling}")
        tl_config = None
    else:
        data = load_torch_file(path)
        if not isinstance(data, Mapping):
            raise GrokvizError(f"{source}: expected a dict, found a {type(data).__name__}")
        if "embed.W_E" in data:
            state_dict, data = data, {}
        else:
            key = next((k for k in ("model", "state_dict", "model_state_dict") if k in data), None)
            if key is None:
                raise GrokvizError(f"{source}: no state dict: expected a 'model' entry (as the TransformerLens grokking "
                                   f"demo saves) or a bare state dict; found keys {sorted(map(str, data))[:20]}")
            state_dict = data[key]
        tl_config = data.get("config")
        if tl_config is not None and not isinstance(tl_config, Mapping):
            notes.append(f"'config' is a {type(tl_config).__name__}, not a dict; ignored")
            tl_config = None
    if config_path is not None:
        tl_config = _read_json(Path(config_path))
    cfg, final_params, tl_notes = transformer_lens_to_params(state_dict, tl_config, source)
    notes += tl_notes
    if grokviz_meta:
        ours = Config.from_json(grokviz_meta.get("grokviz_config", "null"), source=source)
        if any(getattr(ours, k) != getattr(cfg, k) for k in ("p", "d_model", "n_heads", "d_head", "d_mlp")):
            raise GrokvizError(f"{source}: the grokviz config in the file's metadata does not match its tensors")
        step = int(grokviz_meta.get("step", 0))
        notes.append(f"a grokviz export: config and step {step} taken from the file's metadata")
        return ImportedRun(ours, [(step, final_params)], [], notes, f"transformer-lens: {path.resolve()}")
    if task != cfg.task:
        cfg = cfg.replace(task=task)
    notes.append(f"task {task!r}: a TransformerLens config does not say which operation the model learned")

    train_losses = _floats(data.get("train_losses"), "train_losses", source)
    test_losses = _floats(data.get("test_losses"), "test_losses", source)
    # The demo logs the train loss before each update and the test loss after it; the final
    # model has had one update per train loss, and checkpoint_epochs[i] = e holds e + 1 updates.
    checkpoints: dict[int, Params] = {}
    stored = data.get("checkpoints")
    if stored is not None:
        epochs = [int(e) for e in _floats(data.get("checkpoint_epochs"), "checkpoint_epochs", source)]
        if len(epochs) != len(stored):
            raise GrokvizError(f"{source}: {len(stored)} checkpoints but {len(epochs)} checkpoint_epochs; they must pair up")
        for epoch, sd in zip(epochs, stored):
            _, params, _ = transformer_lens_to_params(sd, tl_config, f"{source}, checkpoint of epoch {epoch}")
            checkpoints[epoch + 1] = params
        notes.append(f"{len(epochs)} checkpoints; checkpoint_epochs e stored as step e + 1 (the demo saves after that epoch's update)")
    if train_losses:
        final_step = len(train_losses)
    elif checkpoints:
        final_step = max(checkpoints)
        notes.append(f"final model taken as step {final_step}, the last checkpoint's (no loss history)")
    else:
        final_step = 0
        notes.append("the file says nothing about how long the model trained; stored as step 0")
    if final_step in checkpoints and not all(torch.equal(checkpoints[final_step][k], final_params[k]) for k in PARAM_NAMES):
        notes.append(f"the final model differs from the checkpoint of step {final_step}; the final model kept")
    checkpoints[final_step] = final_params
    log_rows = merge_histories(train_losses, test_losses, notes, test_offset=1)
    if not log_rows:
        notes.append("the file has no loss history; the run's log is empty")

    # Split: the demo's train_indices if stored, else the demo's defaults, checked against the losses.
    p = cfg.p
    train_indices = data.get("train_indices")

    if isinstance(train_indices, torch.Tensor):
        wanted = train_indices.flatten().long().sort().values
        frac = round_fraction(len(wanted), p * p)
        match = next((s for s in dict.fromkeys([TL_DEMO_DATA_SEED, cfg.seed, *range(100)])
                      if torch.equal(make_dataset(task, p, frac, s).train_idx, wanted)), None)
        if match is None:
            notes.append(f"the file's train_indices ({len(wanted)} pairs) are not a split grokviz can reproduce from a "
                         "seed; grokviz's train/test numbers will use another split")
        else:
            notes.append(f"split: the file's train_indices are grokviz's split with frac_train={frac}, data_seed={match}")
        cfg = cfg.replace(frac_train=frac, data_seed=match if match is not None else TL_DEMO_DATA_SEED)
    else:
        cfg = cfg.replace(frac_train=TL_DEMO_FRAC_TRAIN, data_seed=TL_DEMO_DATA_SEED)
        notes.append(f"no train_indices: split assumed to be the grokking demo's (frac_train={TL_DEMO_FRAC_TRAIN}, "
                     f"DATA_SEED={TL_DEMO_DATA_SEED}, which grokviz reproduces)")
        if test_losses:
            dataset = make_dataset(task, p, cfg.frac_train, cfg.split_seed)
            losses, _ = per_pair_losses(final_params, cfg)
            ours = losses[dataset.test_idx].mean().item()
            verdict = "matches" if math.isclose(ours, test_losses[-1], rel_tol=1e-3) else "does NOT match"
            notes.append(f"check: the final model's test loss on that split is {ours:.6g}; the stored last test loss "
                         f"{test_losses[-1]:.6g} {verdict}")
    notes.append("lr=1e-3, weight_decay=1.0, betas=(0.9, 0.98), no warm-up assumed (the grokking demo's optimiser; "
                 "a TransformerLens file does not store it)")
    cfg = cfg.replace(warmup_steps=0, steps=max(1, final_step))
    steps = sorted(checkpoints)
    from .runs import validate_params

    return ImportedRun(cfg, [(s, validate_params(checkpoints[s], cfg, source)) for s in steps], log_rows, notes,
                       f"transformer-lens: {path.resolve()}")


# --- writing an imported run ----------------------------------------------------------------------


def write_run(imported: ImportedRun, out: str | Path) -> Path:
    """Write an imported run as a grokviz run folder (only through ``grokviz.runs``' writers).

    ``run.json``'s ``source`` holds where it came from and every note, so the app can show them.
    """
    from .runs import LogWriter, save_checkpoint, write_run_file

    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise GrokvizError(f"{out}: exists and is not an empty folder; choose a new --out")
    source = imported.source + "".join(f"\n- {note}" for note in imported.notes)
    write_run_file(out, imported.config, source=source)
    for step, params in imported.checkpoints:
        save_checkpoint(out, step, params, imported.config)
    log = LogWriter(out)
    try:
        for row in imported.log_rows:
            log.append(row)
    finally:
        log.close()
    return out
