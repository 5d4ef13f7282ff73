"""PyTorch ``nn.TransformerEncoder`` models (the model blog posts train) imported as run folders.

The model this reads, saved with ``torch.save(model.state_dict(), FILE)``::

    embedding = nn.Embedding(p + 1, d)                      # tokens a, b, '=' (id p)
    transformer_encoder = nn.TransformerEncoder(
        nn.TransformerEncoderLayer(d, nhead, dim_feedforward, batch_first=True), num_layers=N)
    output_head = nn.Linear(d, p + 1)                       # on the last position

PyTorch's defaults: post-LayerNorm (``norm_first=False``), ReLU, dropout 0.1, every bias, no
positional embedding, and no attention mask (bidirectional). ``num_layers`` N is 1 to 4 (grokviz's
depths): encoder layer ``l`` (``transformer_encoder.layers.{l}.*``) becomes block ``blocks.{l}``, a
post-LN layer our post-LN block (the same sums and norms). Keys -> our names (TransformerLens'
layout, right-multiplying, heads split out of PyTorch's packed projections; ``...`` is
``transformer_encoder.layers.{l}``, ``blocks.0`` is ``blocks.{l}``):

=============================================  ============================================
``embedding.weight`` [p+1, d]                   ``embed.W_E``
``...self_attn.in_proj_weight`` [3d, d]         ``blocks.0.attn.W_Q/W_K/W_V`` [head, d, d_head]
``...self_attn.in_proj_bias`` [3d]              ``blocks.0.attn.b_Q/b_K/b_V`` [head, d_head]
``...self_attn.out_proj.weight`` [d, d]         ``blocks.0.attn.W_O`` [head, d_head, d]
``...linear1``, ``...linear2``                  ``blocks.0.mlp.W_in/b_in``, ``W_out/b_out``
``...norm1``, ``...norm2``                      ``blocks.0.ln1``, ``blocks.0.ln2`` (.w, .b)
``transformer_encoder.norm`` (pre-LN only)      ``ln_final``
``output_head.weight/bias`` [p+1, d]            ``unembed.W_U`` [d, p], ``unembed.b_U`` [p]
=============================================  ============================================

A state dict does not record the number of heads, the norm order, the activation or the
dropout rate: they come from the caller (PyTorch's defaults otherwise) and are printed as notes.
grokviz trains models of more than one block without dropout, so a deeper file is recorded with
dropout 0 (a dropout rate given for it is refused in words).
The '=' output row is dropped, as for the paper's checkpoints (no pair's answer is '=').
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from grokviz.core.architecture import ACTIVATIONS
from grokviz.core.config import N_LAYERS_MAX, N_LAYERS_MIN, Config
from grokviz.core.params import Params, param_shapes
from grokviz.core.stored import ConfigError
from grokviz.errors import GrokvizError
from grokviz.interop.files import load_torch_file
from grokviz.interop.imported import ImportedRun, per_pair_losses

LAYERS = "transformer_encoder.layers."
FINAL_NORM = "transformer_encoder.norm."
# Each encoder layer's keys after ``transformer_encoder.layers.{l}.``: weights, linear biases, norm biases.
LAYER_WEIGHTS = (
    "self_attn.in_proj_weight",
    "self_attn.out_proj.weight",
    "linear1.weight",
    "linear2.weight",
    "norm1.weight",
    "norm2.weight",
)
LAYER_BIASES = ("self_attn.in_proj_bias", "self_attn.out_proj.bias", "linear1.bias", "linear2.bias")
LAYER_NORM_BIASES = ("norm1.bias", "norm2.bias")
PYTORCH_DROPOUT = 0.1  # nn.TransformerEncoderLayer's default


def layer_key(layer: int, name: str) -> str:
    """``transformer_encoder.layers.{layer}.{name}``."""
    return f"{LAYERS}{layer}.{name}"


def _keys(names: tuple[str, ...], n_layers: int) -> list[str]:
    return [layer_key(layer, name) for layer in range(n_layers) for name in names]


def import_torch_encoder(
    path: str | Path,
    p: int,
    *,
    task: str = "add",
    n_heads: int = 4,
    norm_first: bool = False,
    activation: str = "relu",
    dropout: float | None = None,
    frac_train: float = 0.5,
    seed: int = 0,
    step: int = 0,
) -> ImportedRun:
    """A saved state dict of the model in the module docstring -> :class:`ImportedRun` (one checkpoint).

    ``frac_train`` and ``seed`` choose grokviz's own split for the train/test metrics: the file
    does not say which pairs the model was trained on (``all_loss``/``all_accuracy`` do not depend
    on it). ``step`` is recorded as the checkpoint's step. ``dropout`` None: PyTorch's default
    (0.1) for one layer, 0 for more (grokviz trains deeper models without dropout).
    """
    path = Path(path)
    source = str(path)
    state = load_torch_file(path)
    if not isinstance(state, Mapping) or not all(isinstance(k, str) for k in state):
        raise GrokvizError(
            f"{source}: expected a state dict (torch.save(model.state_dict(), FILE)), found a {type(state).__name__}"
        )
    state = dict(state)
    n_layers = _check_keys(state, source, norm_first)
    if dropout is None:
        dropout = PYTORCH_DROPOUT if n_layers == 1 else 0.0
    elif dropout > 0 and n_layers > 1:
        raise GrokvizError(
            f"{source}: --dropout {dropout:g} with {n_layers} encoder layers: grokviz trains models of more than one "
            "layer without dropout; leave --dropout out or pass --dropout 0 (dropout does not change the imported "
            "weights or logits)"
        )
    if activation not in ACTIVATIONS:
        raise GrokvizError(f"{source}: --activation {activation!r} must be one of {ACTIVATIONS}")
    for name, tensor in state.items():
        if not isinstance(tensor, torch.Tensor) or not tensor.is_floating_point():
            kind = f"a {tensor.dtype} tensor" if isinstance(tensor, torch.Tensor) else f"a {type(tensor).__name__}"
            raise GrokvizError(f"{source}: {name} is {kind}, not a floating-point tensor")

    embedding = state["embedding.weight"]
    if embedding.dim() != 2:
        raise GrokvizError(f"{source}: embedding.weight has shape {tuple(embedding.shape)}; expected [p + 1, d_model]")
    if embedding.shape[0] != p + 1:
        raise GrokvizError(
            f"{source}: embedding.weight has {embedding.shape[0]} rows; --p {p} needs p + 1 = {p + 1} "
            f"(the numbers 0..p-1 and '='). Is --p {embedding.shape[0] - 1} meant?"
        )
    d_model = embedding.shape[1]
    if n_heads < 1:
        raise GrokvizError(f"--n-heads={n_heads} must be at least 1")
    if d_model % n_heads:
        raise GrokvizError(f"{source}: d_model {d_model} is not divisible by --n-heads {n_heads}")
    d_mlp = state[layer_key(0, "linear1.weight")].shape[0]
    has_bias = "output_head.bias" in state
    try:
        cfg = Config(
            task=task,
            p=p,
            n_layers=n_layers,
            frac_train=frac_train,
            seed=seed,
            d_model=d_model,
            n_heads=n_heads,
            d_head=d_model // n_heads,
            d_mlp=d_mlp,
            layernorm="pre" if norm_first else "post",
            biases="all" if has_bias else "none",
            pos_embed="none",
            attention="bidirectional",
            dropout=dropout,
            activation=activation,
        )
    except ConfigError as exc:
        raise GrokvizError(f"{source}: {exc.as_flags()}") from None
    params = _to_params(state, cfg, has_bias)
    expected = param_shapes(cfg)
    for name, shape in expected.items():
        if tuple(params[name].shape) != shape:
            raise GrokvizError(
                f"{source}: {name} would have shape {tuple(params[name].shape)}; the sizes read from "
                f"embedding.weight and {layer_key(0, 'linear1.weight')} need {shape}"
            )

    losses, correct = per_pair_losses(params, cfg)
    notes = [
        f"{n_layers} encoder layer(s), imported as blocks.0 ... blocks.{n_layers - 1}",
        f"n_heads={n_heads} from --n-heads: a state dict does not record it, and the attention depends on it",
        f"{'pre' if norm_first else 'post'}-LayerNorm ({'--norm-first' if norm_first else 'PyTorch default'}), "
        f"{activation} ({'PyTorch default' if activation == 'relu' else '--activation'}), "
        f"dropout {dropout:g} recorded for training only"
        + (" (grokviz trains models of more than one layer without dropout)" if n_layers > 1 else ""),
        "no positional embedding and no attention mask: the last position's output depends on a and b "
        "only through attention, symmetric in the two",
        f"the '=' row of output_head dropped; over all {p * p} pairs: loss {losses.mean():.3g}, "
        f"accuracy {correct.double().mean():.2%}",
        f"train/test split: grokviz's own (frac_train={frac_train}, seed={seed}); the file does not say "
        "which pairs trained the model",
    ]
    if not has_bias:
        notes.append("no linear biases in the file (bias=False): LayerNorm biases set to 0")
    return ImportedRun(cfg, [(step, params)], [], notes, f"torch-encoder: {path.resolve()}")


def _check_keys(state: dict[str, Any], source: str, norm_first: bool) -> int:
    """Refuse, in words, any file that is not exactly the model this importer knows; returns its layer count."""
    layers = sorted({int(k.split(".")[2]) for k in state if k.startswith(LAYERS) and k.split(".")[2].isdigit()})
    if not layers:
        raise GrokvizError(
            f"{source}: no transformer_encoder.layers.* keys: expected the state dict of embedding + "
            "transformer_encoder + output_head (see `grokviz convert torch-encoder --help`)"
        )
    n_layers = layers[-1] + 1
    if layers != list(range(n_layers)):
        raise GrokvizError(
            f"{source}: has encoder layers {layers}; nn.TransformerEncoder numbers its layers 0 ... num_layers - 1"
        )
    if not N_LAYERS_MIN <= n_layers <= N_LAYERS_MAX:
        raise GrokvizError(
            f"{source}: has {n_layers} encoder layers; grokviz's models have {N_LAYERS_MIN} to {N_LAYERS_MAX}"
        )
    missing = [k for k in ["embedding.weight", *_keys(LAYER_WEIGHTS, n_layers), "output_head.weight"] if k not in state]
    if missing:
        raise GrokvizError(
            f"{source}: missing keys {missing[:6]}{' ...' if len(missing) > 6 else ''}: expected the state dict of "
            f"embedding + a transformer_encoder of {n_layers} layer(s), each with {', '.join(LAYER_WEIGHTS)}, + "
            "output_head (see `grokviz convert torch-encoder --help`)"
        )
    linear_biases = [*_keys(LAYER_BIASES, n_layers), "output_head.bias"]
    biases = [k in state for k in linear_biases]
    if any(biases) and not all(biases):
        absent = [k for k, present in zip(linear_biases, biases) if not present]
        raise GrokvizError(
            f"{source}: some biases are missing ({absent[:6]}): grokviz reads models where every linear layer has "
            "one (PyTorch's default) or none does (bias=False on the encoder layer and on output_head)"
        )
    for layer in range(1, n_layers):  # grokviz's blocks are all alike
        for name in LAYER_WEIGHTS + LAYER_BIASES:
            key, first = layer_key(layer, name), layer_key(0, name)
            if key in state and isinstance(state[key], torch.Tensor) and state[key].shape != state[first].shape:
                raise GrokvizError(
                    f"{source}: {key} has shape {tuple(state[key].shape)} but {first} has "
                    f"{tuple(state[first].shape)}; grokviz's blocks all have the same sizes"
                )
    has_final = FINAL_NORM + "weight" in state
    if has_final and not norm_first:
        raise GrokvizError(
            f"{source}: has a final norm (transformer_encoder.norm), so the norm order cannot be told from the "
            "file: a post-LN layer rarely has one and a pre-LN (norm_first=True) layer usually does. If the "
            "layer was built with norm_first=True, pass --norm-first; grokviz has no post-LN model with a final norm"
        )
    if norm_first and not has_final:
        raise GrokvizError(
            f"{source}: --norm-first needs the encoder's final norm (transformer_encoder.norm.weight), which "
            "grokviz's pre-LN model has as ln_final; this file has none"
        )
    known = {"embedding.weight", "output_head.weight", FINAL_NORM + "weight", FINAL_NORM + "bias", *linear_biases}
    known |= set(_keys(LAYER_WEIGHTS + LAYER_NORM_BIASES, n_layers))
    unknown = sorted(k for k in state if k not in known)
    if unknown:
        raise GrokvizError(
            f"{source}: unknown keys {unknown[:8]}{' ...' if len(unknown) > 8 else ''}: this importer reads "
            "embedding + nn.TransformerEncoderLayer(s) + output_head, without a positional embedding"
        )
    return n_layers


def _to_params(state: dict[str, torch.Tensor], cfg: Config, has_bias: bool) -> Params:
    """PyTorch's left-multiplying, packed tensors -> our right-multiplying, per-head ones, layer by layer.

    Floating-point tensors keep their dtype (a float64 model converts exactly; the run folder
    stores float32)."""
    h, dh, d, p = cfg.n_heads, cfg.d_head, cfg.d_model, cfg.p
    get = lambda name: state[name].detach().clone()  # noqa: E731
    params: Params = {"embed.W_E": get("embedding.weight")}
    dtype = params["embed.W_E"].dtype
    norm_bias = lambda name: get(name) if name in state else torch.zeros(d, dtype=dtype)  # noqa: E731
    for layer in range(cfg.n_layers):
        key = lambda name: layer_key(layer, name)  # noqa: E731
        block = f"blocks.{layer}"
        in_proj = get(key("self_attn.in_proj_weight"))  # [3d (q, k, v; head-major), d]
        if tuple(in_proj.shape) != (3 * d, d):
            raise GrokvizError(
                f"{key('self_attn.in_proj_weight')} has shape {tuple(in_proj.shape)}; expected {(3 * d, d)}"
            )
        for i, name in enumerate("QKV"):
            # q = x @ W^T with output index head * d_head + e: per head, W[head] = rows^T [d, d_head].
            params[f"{block}.attn.W_{name}"] = in_proj[i * d : (i + 1) * d].reshape(h, dh, d).transpose(1, 2)
            if has_bias:
                in_bias = get(key("self_attn.in_proj_bias"))  # [3d]
                params[f"{block}.attn.b_{name}"] = in_bias[i * d : (i + 1) * d].reshape(h, dh)
        # out = concat(z) @ W_o^T: W_o^T's rows are indexed by head * d_head + e.
        params[f"{block}.attn.W_O"] = get(key("self_attn.out_proj.weight")).T.reshape(h, dh, d)
        params[f"{block}.ln1.w"], params[f"{block}.ln1.b"] = get(key("norm1.weight")), norm_bias(key("norm1.bias"))
        params[f"{block}.ln2.w"], params[f"{block}.ln2.b"] = get(key("norm2.weight")), norm_bias(key("norm2.bias"))
        params[f"{block}.mlp.W_in"] = get(key("linear1.weight")).T  # [d, d_mlp]
        params[f"{block}.mlp.W_out"] = get(key("linear2.weight")).T  # [d_mlp, d]
        if has_bias:
            params[f"{block}.attn.b_O"] = get(key("self_attn.out_proj.bias"))
            params[f"{block}.mlp.b_in"] = get(key("linear1.bias"))
            params[f"{block}.mlp.b_out"] = get(key("linear2.bias"))
    if cfg.layernorm == "pre":
        params["ln_final.w"] = get(FINAL_NORM + "weight")
        params["ln_final.b"] = norm_bias(FINAL_NORM + "bias")
    head = get("output_head.weight")  # [p + 1 (or p), d]
    if head.shape[0] not in (p, p + 1) or head.shape[1] != d:
        raise GrokvizError(
            f"output_head.weight has shape {tuple(head.shape)}; expected [p + 1, d_model] = {(p + 1, d)}"
        )
    params["unembed.W_U"] = head[:p].T  # [d, p]: the '=' class dropped
    if has_bias:
        params["unembed.b_U"] = get("output_head.bias")[:p]
    return {name: params[name].contiguous() for name in param_shapes(cfg)}
