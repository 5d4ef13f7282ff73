"""TransformerLens ``HookedTransformer`` state dicts: our checkpoints exported to them, and theirs converted to ours.

TransformerLens 3.x holds zero attention/unembedding biases and the ``mask``/``IGNORE`` buffers
beside our tensors (which carry its names already); the exporter writes them, the importer checks
and drops them. Owns :func:`to_transformer_lens` and :func:`transformer_lens_to_params` /
:func:`from_transformer_lens` (a state dict and its config, checked against our architectures).
Reading whole files into run folders is ``grokviz.interop.transformer_lens_file``'s.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch

from grokviz.core.architecture import LN_EPS
from grokviz.core.config import Config
from grokviz.core.params import PARAM_SHAPES, Params
from grokviz.errors import GrokvizError
from grokviz.interop.imported import check_ranks

PARAM_NAMES = tuple(PARAM_SHAPES)  # our tensor names, in checkpoint order


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
# HookedTransformerConfig settings with more than one value grokviz has an architecture for
# (the first is the paper's), and the LayerNorm tensors of normalization_type="LN".
TL_CHOICES = {
    "act_fn": ("relu", "gelu"),
    "normalization_type": (None, "LN"),
    "attention_dir": ("causal", "bidirectional"),
}
TL_NORMS = ("blocks.0.ln1.w", "blocks.0.ln1.b", "blocks.0.ln2.w", "blocks.0.ln2.b", "ln_final.w", "ln_final.b")
# The MLP biases, which a model trained with biases="none" does not have either.
TL_MLP_BIASES = {"blocks.0.mlp.b_in": lambda c: (c.d_mlp,), "blocks.0.mlp.b_out": lambda c: (c.d_model,)}


def to_transformer_lens(params: Params, cfg: Config) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Our params -> (HookedTransformerConfig kwargs, state dict for ``HookedTransformer.load_state_dict``).

    The state dict has every entry a TransformerLens ``HookedTransformer`` of this config holds
    (``strict=True`` loading works): our weights as they are (same names and layout), zeros for the
    biases TransformerLens has and the model has not, and the ``mask`` and ``IGNORE`` buffers.
    TransformerLens expresses every architecture of ours but post-LayerNorm (its ``"LN"`` is
    pre-LN with a final norm, as ours): a model without positional embedding gets ``W_pos = 0``
    and a tied one its ``W_U = W_E[:p]^T`` written out, which compute the same function.
    A post-LN model is refused in words.
    """
    from grokviz.core.forward import unembed_matrix
    from grokviz.storage.runs import validate_params

    arch = cfg.architecture
    if arch.layernorm == "post":
        raise GrokvizError(
            "this run is post-LayerNorm (the norm after each residual sum, as PyTorch's nn.TransformerEncoderLayer "
            "by default); TransformerLens' HookedTransformer normalises before attention and the MLP "
            "(normalization_type='LN' is pre-LN), so it cannot express this model. Analyse it in grokviz instead"
        )
    params = validate_params(params, cfg, "params")
    tl_config = {
        **TL_FIXED,
        "act_fn": arch.activation,
        "normalization_type": "LN" if arch.layernorm == "pre" else None,
        "attention_dir": arch.attention,
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
    if arch.layernorm == "pre":
        tl_config["eps"] = LN_EPS
    state_dict = {name: tensor.clone() for name, tensor in params.items()}
    state_dict.setdefault("pos_embed.W_pos", torch.zeros(cfg.n_ctx, cfg.d_model))
    state_dict["unembed.W_U"] = unembed_matrix(params).clone()
    for name, shape in {**TL_ZERO_BIASES, **TL_MLP_BIASES}.items():
        state_dict.setdefault(name, torch.zeros(shape(cfg)))
    mask = torch.ones(cfg.n_ctx, cfg.n_ctx, dtype=torch.bool)
    state_dict["blocks.0.attn.mask"] = mask.tril() if arch.attention == "causal" else mask
    state_dict["blocks.0.attn.IGNORE"] = torch.tensor(-math.inf)
    return tl_config, state_dict


def _tl_sizes_from_shapes(state_dict: Mapping[str, torch.Tensor], source: str) -> dict[str, int]:
    needed = ("embed.W_E", "pos_embed.W_pos", "blocks.0.attn.W_Q", "blocks.0.mlp.W_in", "unembed.W_U")
    missing = [k for k in needed if k not in state_dict]
    if missing:
        raise GrokvizError(f"{source}: not a 1-layer TransformerLens state dict (missing {missing})")
    check_ranks(state_dict, [k for k in PARAM_NAMES if k in state_dict], source)
    d_vocab, d_model = state_dict["embed.W_E"].shape
    n_heads, _, d_head = state_dict["blocks.0.attn.W_Q"].shape
    return {
        "d_vocab": d_vocab,
        "d_model": d_model,
        "n_heads": n_heads,
        "d_head": d_head,
        "d_mlp": state_dict["blocks.0.mlp.W_in"].shape[1],
        "d_vocab_out": state_dict["unembed.W_U"].shape[1],
        "n_ctx": state_dict["pos_embed.W_pos"].shape[0],
        "n_layers": 1,
    }


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
        notes.append(
            "no TransformerLens config: sizes read from the tensor shapes; act_fn='relu', no normalization, "
            "causal attention scaled by 1/sqrt(d_head) assumed (the grokking demo's)"
        )
    else:
        tl = dict(tl_config)
        for name, value in shapes.items():
            stated = tl.get(name)
            if stated is not None and stated != -1 and stated != value:
                raise GrokvizError(f"{source}: the config says {name}={stated!r} but the tensors imply {value}")
            tl[name] = value
    problems = []
    chosen = {}  # the TransformerLens settings that map onto an architecture option of ours
    for name, wanted in TL_FIXED.items():
        value = tl.get(name, wanted)
        if name == "act_fn" and isinstance(value, str):
            value = value.lower()
        allowed = TL_CHOICES.get(name, (wanted,))
        if value not in allowed:
            problems.append(f"{name}={value!r} (grokviz's models need one of {sorted(map(str, allowed))})")
        else:
            chosen[name] = value
    attn_scale = tl.get("attn_scale", -1.0)
    if attn_scale not in (None, -1, -1.0) and not math.isclose(float(attn_scale), math.sqrt(shapes["d_head"])):
        problems.append(
            f"attn_scale={attn_scale} (grokviz's model divides by sqrt(d_head)={math.sqrt(shapes['d_head']):g})"
        )
    for flag in ("use_local_attn", "parallel_attn_mlp", "gated_mlp", "post_embedding_ln", "use_qk_norm"):
        if tl.get(flag):
            problems.append(f"{flag}=True")
    if tl.get("num_experts"):
        problems.append(f"num_experts={tl['num_experts']}")
    layer_keys = sorted({k.split(".")[1] for k in state_dict if k.startswith("blocks.")})
    if layer_keys != ["0"]:
        problems.append(f"layers {layer_keys} (grokviz's model has exactly one)")
    if problems:
        raise GrokvizError(
            f"{source}: this TransformerLens model is not grokviz's architecture: " + "; ".join(problems)
        )
    if shapes["d_vocab"] != shapes["d_vocab_out"] + 1:
        raise GrokvizError(
            f"{source}: d_vocab={shapes['d_vocab']} and d_vocab_out={shapes['d_vocab_out']}; grokviz's "
            "task has p output classes and p + 1 input tokens (the last is '=')"
        )
    p = shapes["d_vocab_out"]
    if shapes["n_ctx"] < 3:
        raise GrokvizError(f"{source}: n_ctx={shapes['n_ctx']}; the task needs 3 positions ([a, b, =])")

    layernorm = "pre" if chosen.get("normalization_type") == "LN" else "none"
    attention = chosen.get("attention_dir", "causal")
    norms = set(TL_NORMS) if layernorm == "pre" else set()
    # Anything else is not silently dropped.
    expected = set(PARAM_NAMES) | set(TL_ZERO_BIASES) | set(TL_BUFFERS) | norms
    unexpected = sorted(set(state_dict) - expected)
    if unexpected:
        raise GrokvizError(f"{source}: unexpected tensors {unexpected}; grokviz imports 1-layer models only")
    missing = sorted(norms - set(state_dict))
    if missing:
        raise GrokvizError(f"{source}: normalization_type='LN' but {missing} are missing")
    # Attention and unembedding biases: kept if any is non-zero (biases="all"), else dropped (zeros).
    nonzero = [n for n in TL_ZERO_BIASES if n in state_dict and state_dict[n].abs().max().item() != 0]
    biases = "all" if nonzero else "mlp"
    if nonzero:
        notes.append(f"non-zero {nonzero}: imported with biases='all'")
    mask = state_dict.get("blocks.0.attn.mask")
    if attention == "causal" and mask is not None:
        if not torch.equal(mask.bool(), torch.ones_like(mask, dtype=torch.bool).tril()):
            raise GrokvizError(f"{source}: blocks.0.attn.mask is not causal")
    kept = [*PARAM_NAMES, *norms, *(TL_ZERO_BIASES if biases == "all" else ())]
    params = {name: state_dict[name].detach().to("cpu", torch.float32).clone() for name in kept if name in state_dict}
    if shapes["n_ctx"] > 3:
        params["pos_embed.W_pos"] = params["pos_embed.W_pos"][:3].clone()
        notes.append(
            f"n_ctx={shapes['n_ctx']}: only the first 3 positional embeddings are used by the task; kept those"
        )
    values = {k: shapes[k] for k in ("d_model", "n_heads", "d_head", "d_mlp")}
    if tl.get("seed") is not None:
        values["seed"] = int(tl["seed"])
    values |= {
        "layernorm": layernorm,
        "biases": biases,
        "attention": attention,
        "activation": chosen.get("act_fn", "relu"),
    }
    try:
        cfg = Config(p=p, **values)
    except GrokvizError as exc:
        raise GrokvizError(f"{source}: the model does not fit grokviz: {exc}") from None
    from grokviz.storage.runs import validate_params

    return cfg, validate_params(params, cfg, source), notes


def from_transformer_lens(
    state_dict: Mapping[str, torch.Tensor], tl_config: Mapping[str, Any] | None
) -> tuple[Config, Params]:
    """A ``HookedTransformer`` state dict plus its config dict -> (our Config, params).

    ``tl_config`` is a dict of HookedTransformerConfig arguments (e.g. ``model.cfg.to_dict()``);
    ``None`` reads the sizes from the tensor shapes. The task, split and optimiser are not in a
    TransformerLens config: they get grokviz's defaults (see
    :func:`~grokviz.interop.transformer_lens_file.import_transformer_lens` for a whole file, which
    also reads the split and loss history of the grokking demo).
    """
    cfg, params, _ = transformer_lens_to_params(state_dict, tl_config)
    return cfg, params
