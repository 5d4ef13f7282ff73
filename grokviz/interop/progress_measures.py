"""The paper's reference code (*Progress measures for grokking*): its checkpoints in, as run folders.

Its layout is left-multiplying: ``embed.W_E [d_model, d_vocab]``, ``blocks.0.attn.W_Q/K/V
[n_heads, d_head, d_model]``, ``W_O [d_model, n_heads*d_head]`` applied to ``z`` flattened
head-major as ``(head d_head)``, ``W_in [d_mlp, d_model]``, ``W_out [d_model, d_mlp]``,
``unembed.W_U [d_model, d_vocab]`` (an output column for the ``=`` token, dropped here), and a
``mask`` buffer (must be the causal lower triangle). Ours is TransformerLens's, right-multiplying
(``grokviz.core.params.PARAM_SHAPES``). The reference splits pairs with ``random.shuffle``; a file
that does not say its split has it inferred from its stored losses (docs/interop.md).

Owns the layout conversion (:func:`reference_to_params`), the reference split
(:func:`reference_split`) and the mapping of the reference config onto ours
(:func:`config_from_reference`, :func:`from_progress_measures_state_dict`). Reading whole files
(single models, full runs, their loss histories and split inference) is
``grokviz.interop.progress_measures_file``'s.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from grokviz.core.config import Config
from grokviz.core.params import Params
from grokviz.core.tasks import make_dataset
from grokviz.errors import GrokvizError
from grokviz.interop.imported import check_ranks

# --- the reference code's layout ----------------------------------------------------------------

REFERENCE_KEYS = (
    "embed.W_E",
    "pos_embed.W_pos",
    "blocks.0.attn.W_Q",
    "blocks.0.attn.W_K",
    "blocks.0.attn.W_V",
    "blocks.0.attn.W_O",
    "blocks.0.mlp.W_in",
    "blocks.0.mlp.b_in",
    "blocks.0.mlp.W_out",
    "blocks.0.mlp.b_out",
    "unembed.W_U",
)
REFERENCE_BUFFERS = ("blocks.0.attn.mask",)

# Reference ``fn_name`` -> grokviz task (the reference code also has 'rand', which we cannot show).
REFERENCE_TASKS = {"add": "add", "subtract": "sub", "x2xyy2": "x2_plus_xy_plus_y2"}


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
            f"{source}: unexpected tensors {extra}; this importer reads the paper's model only (1 layer, no "
            "LayerNorm); deeper models come in through TransformerLens' layout (grokviz convert transformer-lens)"
        )
    check_ranks(state_dict, REFERENCE_KEYS, source, reference=True)
    d_model, d_vocab = state_dict["embed.W_E"].shape
    n_heads, d_head, _ = state_dict["blocks.0.attn.W_Q"].shape
    d_mlp = state_dict["blocks.0.mlp.W_in"].shape[0]
    return {
        "p": d_vocab - 1,
        "d_model": d_model,
        "n_heads": n_heads,
        "d_head": d_head,
        "d_mlp": d_mlp,
        "n_ctx": state_dict["pos_embed.W_pos"].shape[0],
    }


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
            raise GrokvizError(
                f"{source}: blocks.0.attn.mask is not the causal lower triangle; grokviz's model is causal"
            )
    sd = {k: state_dict[k].detach().to("cpu", torch.float32) for k in REFERENCE_KEYS}
    W_O = sd["blocks.0.attn.W_O"]  # [d_model, (head d_head)]
    if tuple(W_O.shape) != (d_model, n_heads * d_head):
        raise GrokvizError(
            f"{source}: blocks.0.attn.W_O has shape {tuple(W_O.shape)}, expected {(d_model, n_heads * d_head)}"
        )
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


def config_from_reference(
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
    size_names = {
        "p": "p",
        "d_model": "d_model",
        "num_heads": "n_heads",
        "d_head": "d_head",
        "d_mlp": "d_mlp",
        "n_ctx": "n_ctx",
        "d_vocab": "d_vocab",
    }
    for ref_name, ours in size_names.items():
        if ref_name in ref:
            expected = sizes["p"] + 1 if ours == "d_vocab" else sizes[ours]
            stated = ref.pop(ref_name)
            if int(stated) != expected:
                raise GrokvizError(f"the config says {ref_name}={stated!r} but the tensors imply {expected}")
    if sizes["n_ctx"] != 3:
        raise GrokvizError(f"pos_embed.W_pos has {sizes['n_ctx']} positions; grokviz's task has exactly 3 ([a, b, =])")
    for name, allowed in (
        ("act_type", ("ReLU", "relu")),
        ("use_ln", (False,)),
        ("num_layers", (1,)),
        ("batch_style", ("full",)),
    ):
        if name in ref and ref[name] not in allowed:
            raise GrokvizError(
                f"config has {name}={ref[name]!r}; the paper's model, which this importer reads, has {allowed[0]!r}"
            )
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
                notes.append(
                    f"{ours}: the config says {values[ours]:g} but the optimizer state says {used:g} "
                    f"(the value AdamW actually used); {used:g} recorded"
                )
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
    notes.append(
        "warm-up of 10 steps assumed (the reference code's LambdaLR min(step/10, 1); a scheduler's lambda is not stored)"
    )
    # The reference shuffles with Python's random; split="python" makes grokviz evaluate the same pairs.
    values["split"] = "python"
    notes.append(
        "train/test split: the reference code's (Python random.shuffle of the pairs with the seed), "
        "recorded as split='python'"
    )
    if steps is not None:
        values["steps"] = max(1, steps)
    no_equivalent = sorted(ref)
    if no_equivalent:
        notes.append(
            "reference config fields with no grokviz equivalent (dropped): "
            + ", ".join(f"{k}={ref[k]!r}" for k in no_equivalent)
        )
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
        cfg = config_from_reference(sizes, cfg_hint, None, None).config
    from grokviz.storage.runs import (
        validate_params,  # runs imports core only; no cycle, but keep interop light to import
    )

    return cfg, validate_params(params, cfg, "reference state dict")
