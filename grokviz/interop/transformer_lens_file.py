"""TransformerLens model files read as an :class:`ImportedRun` (then a run folder).

A ``.safetensors`` state dict (its config from a JSON file, or from the shapes; our own export
comes back with its config and step), or a ``torch.save``'d dict as the TransformerLens grokking
demo saves it: the model, its config, and optionally checkpoints, loss histories and the train
indices. Owns :func:`import_transformer_lens`: the steps of the checkpoints, the loss history and
the demo's split (reproduced by grokviz with ``data_seed=598``). The state-dict conversion is
``grokviz.interop.transformer_lens``'s.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from grokviz.core.config import Config
from grokviz.core.params import Params
from grokviz.core.tasks import make_dataset
from grokviz.errors import GrokvizError
from grokviz.interop.files import load_torch_file, read_json
from grokviz.interop.imported import ImportedRun, float_list, merge_histories, per_pair_losses, round_fraction
from grokviz.interop.transformer_lens import transformer_lens_to_params

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
    from grokviz.storage.files import read_safetensors

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
                raise GrokvizError(
                    f"{source}: no state dict: expected a 'model' entry (as the TransformerLens grokking "
                    f"demo saves) or a bare state dict; found keys {sorted(map(str, data))[:20]}"
                )
            state_dict = data[key]
        tl_config = data.get("config")
        if tl_config is not None and not isinstance(tl_config, Mapping):
            notes.append(f"'config' is a {type(tl_config).__name__}, not a dict; ignored")
            tl_config = None
    if config_path is not None:
        tl_config = read_json(Path(config_path))
    if grokviz_meta.get("grokviz_family", "modular") != "modular":
        raise GrokvizError(
            f"{source}: is a TransformerLens export of a 10-digit adder run; this importer reads "
            "modular-arithmetic models only (open the adder's own run folder instead)"
        )
    cfg, final_params, tl_notes = transformer_lens_to_params(state_dict, tl_config, source)
    notes += tl_notes
    if grokviz_meta:
        ours = Config.from_json(grokviz_meta.get("grokviz_config", "null"), source=source)
        differ = [
            f"{k}={getattr(ours, k)} (the tensors: {getattr(cfg, k)})"
            for k in ("p", "n_layers", "d_model", "n_heads", "d_head", "d_mlp")
            if getattr(ours, k) != getattr(cfg, k)
        ]
        if differ:
            raise GrokvizError(
                f"{source}: the grokviz config in the file's metadata does not match its tensors: it says "
                + ", ".join(differ)
            )
        # Our own export: its tensors, as the run's architecture stores them (no W_U when tied,
        # no W_pos without positions, the biases it has).
        from grokviz.core.params import param_shapes
        from grokviz.storage.runs import validate_params

        final_params = validate_params(
            {n: state_dict[n].detach().to("cpu", torch.float32).clone() for n in param_shapes(ours)}, ours, source
        )
        step = int(grokviz_meta.get("step", 0))
        notes.append(f"a grokviz export: config and step {step} taken from the file's metadata")
        return ImportedRun(ours, [(step, final_params)], [], notes, f"transformer-lens: {path.resolve()}")
    if task != cfg.task:
        cfg = cfg.replace(task=task)
    notes.append(f"task {task!r}: a TransformerLens config does not say which operation the model learned")

    train_losses = float_list(data.get("train_losses"), "train_losses", source)
    test_losses = float_list(data.get("test_losses"), "test_losses", source)
    # The demo logs the train loss before each update and the test loss after it; the final
    # model has had one update per train loss, and checkpoint_epochs[i] = e holds e + 1 updates.
    checkpoints: dict[int, Params] = {}
    stored = data.get("checkpoints")
    if stored is not None:
        epochs = [int(e) for e in float_list(data.get("checkpoint_epochs"), "checkpoint_epochs", source)]
        if len(epochs) != len(stored):
            raise GrokvizError(
                f"{source}: {len(stored)} checkpoints but {len(epochs)} checkpoint_epochs; they must pair up"
            )
        for epoch, sd in zip(epochs, stored):
            _, params, _ = transformer_lens_to_params(sd, tl_config, f"{source}, checkpoint of epoch {epoch}")
            checkpoints[epoch + 1] = params
        notes.append(
            f"{len(epochs)} checkpoints; checkpoint_epochs e stored as step e + 1 (the demo saves after that epoch's update)"
        )
    if train_losses:
        final_step = len(train_losses)
    elif checkpoints:
        final_step = max(checkpoints)
        notes.append(f"final model taken as step {final_step}, the last checkpoint's (no loss history)")
    else:
        final_step = 0
        notes.append("the file says nothing about how long the model trained; stored as step 0")
    if final_step in checkpoints and not all(
        torch.equal(checkpoints[final_step][k], final_params[k]) for k in final_params
    ):
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
        match = next(
            (
                s
                for s in dict.fromkeys([TL_DEMO_DATA_SEED, cfg.seed, *range(100)])
                if torch.equal(make_dataset(task, p, frac, s).train_idx, wanted)
            ),
            None,
        )
        if match is None:
            notes.append(
                f"the file's train_indices ({len(wanted)} pairs) are not a split grokviz can reproduce from a "
                "seed; grokviz's train/test numbers will use another split"
            )
        else:
            notes.append(
                f"split: the file's train_indices are grokviz's split with frac_train={frac}, data_seed={match}"
            )
        cfg = cfg.replace(frac_train=frac, data_seed=match if match is not None else TL_DEMO_DATA_SEED)
    else:
        cfg = cfg.replace(frac_train=TL_DEMO_FRAC_TRAIN, data_seed=TL_DEMO_DATA_SEED)
        notes.append(
            f"no train_indices: split assumed to be the grokking demo's (frac_train={TL_DEMO_FRAC_TRAIN}, "
            f"DATA_SEED={TL_DEMO_DATA_SEED}, which grokviz reproduces)"
        )
        if test_losses:
            dataset = make_dataset(task, p, cfg.frac_train, cfg.split_seed)
            losses, _ = per_pair_losses(final_params, cfg)
            ours = losses[dataset.test_idx].mean().item()
            verdict = "matches" if math.isclose(ours, test_losses[-1], rel_tol=1e-3) else "does NOT match"
            notes.append(
                f"check: the final model's test loss on that split is {ours:.6g}; the stored last test loss "
                f"{test_losses[-1]:.6g} {verdict}"
            )
    notes.append(
        "lr=1e-3, weight_decay=1.0, betas=(0.9, 0.98), no warm-up assumed (the grokking demo's optimiser; "
        "a TransformerLens file does not store it)"
    )
    cfg = cfg.replace(warmup_steps=0, steps=max(1, final_step))
    steps = sorted(checkpoints)
    from grokviz.storage.runs import validate_params

    return ImportedRun(
        cfg,
        [(s, validate_params(checkpoints[s], cfg, source)) for s in steps],
        log_rows,
        notes,
        f"transformer-lens: {path.resolve()}",
    )
