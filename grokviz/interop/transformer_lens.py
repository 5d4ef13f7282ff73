"""TransformerLens ``HookedTransformer`` state dicts: our checkpoints exported to them, and theirs converted to ours.

TransformerLens 3.x holds zero attention/unembedding biases and the ``mask``/``IGNORE`` buffers
beside our tensors (which carry its names already); the exporter writes them, the importer checks
and drops them. Models of 1 to 4 blocks go both ways: every ``blocks.{l}.*`` tensor, the layer
count from TransformerLens' ``n_layers`` or from the ``blocks.{l}`` names. Owns
:func:`to_transformer_lens` and :func:`transformer_lens_to_params` / :func:`from_transformer_lens`
(a state dict and its config, checked against our architectures). Reading whole files into run
folders is ``grokviz.interop.transformer_lens_file``'s.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

import torch

from grokviz.core.architecture import LN_EPS
from grokviz.core.config import N_LAYERS_MAX, N_LAYERS_MIN, Config
from grokviz.core.params import PARAM_SHAPES, Params
from grokviz.errors import GrokvizError
from grokviz.interop.imported import BLOCK, block_0_name, check_ranks

# Our tensor names for one block (``blocks.0.*``), in checkpoint order; :func:`per_block` names them
# for every block of a deeper model.
PARAM_NAMES = tuple(PARAM_SHAPES)


# --- TransformerLens ----------------------------------------------------------------------------

# The HookedTransformerConfig arguments that describe our model (exactly TransformerLens' names).
# ``init_weights``/``seed`` follow the TransformerLens grokking demo; the weights are replaced by
# ``load_state_dict`` anyway. ``device`` and ``dtype`` are left to TransformerLens' defaults.
# ``n_layers`` is the run's (1 for the paper's model).
TL_FIXED = {
    "n_layers": 1,
    "act_fn": "relu",
    "normalization_type": None,
    "attn_only": False,
    "positional_embedding_type": "standard",
    "attention_dir": "causal",
    "use_attn_scale": True,
}
# Zero biases TransformerLens has and we do not: name -> shape (block 0's; every block has them).
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
# The weights every block has (an attention-only or otherwise partial block is not our model).
BLOCK_WEIGHTS = ("attn.W_Q", "attn.W_K", "attn.W_V", "attn.W_O", "mlp.W_in", "mlp.W_out")

T = TypeVar("T")


def per_block(names: Iterable[str] | Mapping[str, T], n_layers: int) -> list[str] | dict[str, T]:
    """Block 0's names (``blocks.0.attn.b_Q``) repeated for blocks 0 .. n_layers - 1; other names as they are.

    A mapping (name -> shape function) comes back as a mapping with the same values."""

    def expand(name: str) -> list[str]:
        if not name.startswith("blocks.0."):
            return [name]
        return [f"blocks.{layer}.{name[len('blocks.0.') :]}" for layer in range(n_layers)]

    if isinstance(names, Mapping):
        return {new: value for name, value in names.items() for new in expand(name)}
    return [new for name in names for new in expand(name)]


def block_indices(names: Iterable[str]) -> list[int]:
    """The distinct block numbers among tensor names (``blocks.1.mlp.W_in`` -> 1), ascending."""
    return sorted({int(m.group(1)) for name in names if (m := BLOCK.match(name))})


def to_transformer_lens(params: Params, cfg: Config) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Our params -> (HookedTransformerConfig kwargs, state dict for ``HookedTransformer.load_state_dict``).

    The state dict has every entry a TransformerLens ``HookedTransformer`` of this config holds
    (``strict=True`` loading works): our weights as they are (same names and layout, every block's),
    zeros for the biases TransformerLens has and the model has not, and each block's ``mask`` and
    ``IGNORE`` buffers. TransformerLens expresses every architecture of ours, at every depth, but
    post-LayerNorm (its ``"LN"`` is pre-LN with a final norm, as ours): a model without positional
    embedding gets ``W_pos = 0`` and a tied one its ``W_U = W_E[:p]^T`` written out, which compute
    the same function. A post-LN model is refused in words.
    """
    from grokviz.core.forward import unembed_matrix
    from grokviz.storage.runs import validate_params

    arch = cfg.architecture
    if arch.layernorm == "post":
        raise GrokvizError(
            "this run is post-LayerNorm (layernorm='post': the norm after each residual sum, as PyTorch's "
            "nn.TransformerEncoderLayer by default); TransformerLens' HookedTransformer normalises before attention "
            "and the MLP (normalization_type='LN' is pre-LN), so it cannot express this model; the layernorm values "
            "it can are 'none' and 'pre'. Analyse it in grokviz instead"
        )
    params = validate_params(params, cfg, "params")
    n_layers = cfg.n_layers
    tl_config = {
        **TL_FIXED,
        "n_layers": n_layers,
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
    for name, shape in per_block({**TL_ZERO_BIASES, **TL_MLP_BIASES}, n_layers).items():
        state_dict.setdefault(name, torch.zeros(shape(cfg)))
    mask = torch.ones(cfg.n_ctx, cfg.n_ctx, dtype=torch.bool)
    for layer in range(n_layers):
        state_dict[f"blocks.{layer}.attn.mask"] = mask.tril() if arch.attention == "causal" else mask.clone()
        state_dict[f"blocks.{layer}.attn.IGNORE"] = torch.tensor(-math.inf)
    return tl_config, state_dict


def _tl_sizes_from_shapes(state_dict: Mapping[str, torch.Tensor], source: str) -> tuple[dict[str, int], dict]:
    """The sizes a state dict's tensors imply, and for each the tensor it was read from.

    Checks the block structure first: blocks numbered 0 .. n-1, each with the same weights of the
    same shapes (grokviz's blocks are all alike), so that a later message can name one tensor.
    """
    blocks = block_indices(state_dict)
    if not blocks:
        raise GrokvizError(
            f"{source}: no blocks.0.* tensors: not a TransformerLens HookedTransformer state dict "
            f"(found {sorted(state_dict)[:8]})"
        )
    n_layers = blocks[-1] + 1
    if blocks != list(range(n_layers)):
        raise GrokvizError(
            f"{source}: has blocks {blocks}; a HookedTransformer's blocks are numbered without gaps "
            f"(blocks.0 ... blocks.{len(blocks) - 1} for {len(blocks)} blocks)"
        )
    needed = [
        "embed.W_E",
        "pos_embed.W_pos",
        *(f"blocks.{layer}.{w}" for layer in blocks for w in BLOCK_WEIGHTS),
        "unembed.W_U",
    ]
    missing = [k for k in needed if k not in state_dict]
    if missing:
        raise GrokvizError(
            f"{source}: missing {missing[:6]}{' ...' if len(missing) > 6 else ''}: a HookedTransformer with "
            f"{n_layers} block(s) (blocks.0 ... blocks.{n_layers - 1}) has embed.W_E, pos_embed.W_pos, unembed.W_U "
            f"and every block's {', '.join(BLOCK_WEIGHTS)}"
        )
    ranked = [k for k in state_dict if block_0_name(k) in PARAM_SHAPES]
    check_ranks(state_dict, ranked, source)
    for name in ranked:
        first = block_0_name(name)
        if first != name and first in state_dict and state_dict[name].shape != state_dict[first].shape:
            raise GrokvizError(
                f"{source}: {name} has shape {tuple(state_dict[name].shape)} but {first} has "
                f"{tuple(state_dict[first].shape)}; grokviz's blocks all have the same sizes"
            )
    read_from = {
        "d_vocab": "embed.W_E",
        "d_model": "embed.W_E",
        "n_heads": "blocks.0.attn.W_Q",
        "d_head": "blocks.0.attn.W_Q",
        "d_mlp": "blocks.0.mlp.W_in",
        "d_vocab_out": "unembed.W_U",
        "n_ctx": "pos_embed.W_pos",
    }
    d_vocab, d_model = state_dict["embed.W_E"].shape
    n_heads, _, d_head = state_dict["blocks.0.attn.W_Q"].shape
    sizes = {
        "d_vocab": d_vocab,
        "d_model": d_model,
        "n_heads": n_heads,
        "d_head": d_head,
        "d_mlp": state_dict["blocks.0.mlp.W_in"].shape[1],
        "d_vocab_out": state_dict["unembed.W_U"].shape[1],
        "n_ctx": state_dict["pos_embed.W_pos"].shape[0],
        "n_layers": n_layers,
    }
    return sizes, read_from


def _disagreement(name: str, stated: Any, value: int, read_from: Mapping[str, str], state_dict) -> str:
    """One sentence: the config's value of ``name`` against what the tensors hold."""
    if name == "n_layers":
        held = f"blocks.0 ... blocks.{value - 1}" if value > 1 else "blocks.0 only"
        return (
            f"the config says n_layers={stated!r} but the state dict has {value} block(s) ({held}); "
            "the config's n_layers must equal the number of blocks"
        )
    tensor = read_from[name]
    return (
        f"the config says {name}={stated!r} but {tensor} has shape {tuple(state_dict[tensor].shape)}, "
        f"which means {name}={value}"
    )


def transformer_lens_to_params(
    state_dict: Mapping[str, torch.Tensor], tl_config: Mapping[str, Any] | None, source: str = "state dict"
) -> tuple[Config, Params, list[str]]:
    """A HookedTransformer state dict (+ its config, or None to read sizes from shapes) -> (Config, params, notes).

    Any depth grokviz trains (1 to 4 blocks) is read; the config and the tensors must agree on it
    and on every size, and every block must hold the same tensors of the same shapes.
    """
    notes: list[str] = []
    if not isinstance(state_dict, Mapping) or not all(isinstance(v, torch.Tensor) for v in state_dict.values()):
        raise GrokvizError(f"{source}: the state dict must map names to tensors")
    shapes, read_from = _tl_sizes_from_shapes(state_dict, source)
    if tl_config is None:
        # What the tensors show: LayerNorm by its weights and biases (RMS has weights only), a
        # bidirectional model by an all-True mask. TransformerLens 3.9 saves an empty (0 x 0) mask until
        # a forward fills it, which tells nothing: causal, the demo's, is assumed then.
        norm = {(True, True): "LN", (True, False): "RMS"}.get(
            ("blocks.0.ln1.w" in state_dict, "blocks.0.ln1.b" in state_dict)
        )
        mask = state_dict.get("blocks.0.attn.mask")
        bidirectional = mask is not None and mask.numel() > 1 and bool(mask.bool().all())
        tl = dict(shapes, normalization_type=norm, attention_dir="bidirectional" if bidirectional else "causal")
        notes.append(
            f"no TransformerLens config: sizes read from the tensor shapes ({shapes['n_layers']} block(s)), "
            f"normalization_type={norm!r} and attention_dir={tl['attention_dir']!r} from the tensors; act_fn='relu' "
            "and attention scaled by 1/sqrt(d_head) assumed (the grokking demo's)"
        )
    else:
        tl = dict(tl_config)
        for name, value in shapes.items():
            stated = tl.get(name)
            if stated is not None and stated != -1 and stated != value:
                raise GrokvizError(f"{source}: {_disagreement(name, stated, value, read_from, state_dict)}")
            tl[name] = value
    n_layers = shapes["n_layers"]
    problems = []
    if not N_LAYERS_MIN <= n_layers <= N_LAYERS_MAX:
        problems.append(f"n_layers={n_layers} (grokviz's models have {N_LAYERS_MIN} to {N_LAYERS_MAX} blocks)")
    chosen = {}  # the TransformerLens settings that map onto an architecture option of ours
    for name, wanted in TL_FIXED.items():
        if name == "n_layers":
            continue
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
    norms = set(per_block(TL_NORMS, n_layers)) if layernorm == "pre" else set()
    zero_biases = per_block(TL_ZERO_BIASES, n_layers)
    # Anything else is not silently dropped.
    expected = set(per_block([*PARAM_NAMES, *TL_ZERO_BIASES, *TL_BUFFERS], n_layers)) | norms
    unexpected = sorted(set(state_dict) - expected)
    if unexpected:
        raise GrokvizError(
            f"{source}: unexpected tensors {unexpected[:8]}{' ...' if len(unexpected) > 8 else ''}; grokviz's model "
            f"of {n_layers} block(s) with normalization_type={chosen.get('normalization_type')!r} has none of them"
        )
    missing = sorted(norms - set(state_dict))
    if missing:
        raise GrokvizError(f"{source}: normalization_type='LN' but {missing[:6]} are missing")
    # Attention and unembedding biases: kept if any is non-zero (biases="all"), else dropped (zeros).
    nonzero = [n for n in zero_biases if n in state_dict and state_dict[n].abs().max().item() != 0]
    biases = "all" if nonzero else "mlp"
    if nonzero:
        notes.append(f"non-zero {nonzero[:6]}{' ...' if len(nonzero) > 6 else ''}: imported with biases='all'")
    for layer in range(n_layers):
        mask = state_dict.get(f"blocks.{layer}.attn.mask")
        if attention == "causal" and mask is not None:
            if not torch.equal(mask.bool(), torch.ones_like(mask, dtype=torch.bool).tril()):
                raise GrokvizError(
                    f"{source}: blocks.{layer}.attn.mask is not causal (attention_dir='causal' needs the lower triangle)"
                )
    kept = [*per_block(PARAM_NAMES, n_layers), *norms, *(zero_biases if biases == "all" else ())]
    params = {name: state_dict[name].detach().to("cpu", torch.float32).clone() for name in kept if name in state_dict}
    if shapes["n_ctx"] > 3:
        params["pos_embed.W_pos"] = params["pos_embed.W_pos"][:3].clone()
        notes.append(
            f"n_ctx={shapes['n_ctx']}: only the first 3 positional embeddings are used by the task; kept those"
        )
    values = {k: shapes[k] for k in ("d_model", "n_heads", "d_head", "d_mlp", "n_layers")}
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
