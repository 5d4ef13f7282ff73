"""The modular transformer's tensors (one block, or up to four): their type, names, shapes, initialisation and count.

Parameters live in a ``dict[str, Tensor]`` (:data:`Params`, the one type both families' models
use) keyed exactly as TransformerLens names them (right-multiplying layout, see
docs/analysis.md). Which tensors there are follows from the run's
:class:`~grokviz.core.architecture.Architecture` (:func:`param_shapes`): the paper's reference
model has no LayerNorm and no attention or unembedding biases; other architectures add
``blocks.0.ln1.w``, ``blocks.0.attn.b_Q``, ``unembed.b_U``, ... and a tied model stores no
``unembed.W_U`` (it is ``W_E[:p]^T``: :func:`grokviz.core.forward.unembed_matrix`).

The forwards that read them are ``grokviz.core.forward`` (the definition) and
``grokviz.core.fast_path`` (what training and analysis run).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import torch

from grokviz.core.config import Config

Params = dict[str, torch.Tensor]

# The reference architecture's tensors: name -> shape as a function of the config, in a
# checkpoint's canonical order. (Importers of the paper's formats check ranks against it.)
PARAM_SHAPES: dict[str, Callable[[Config], tuple[int, ...]]] = {
    "embed.W_E": lambda c: (c.d_vocab, c.d_model),
    "pos_embed.W_pos": lambda c: (c.n_ctx, c.d_model),
    "blocks.0.attn.W_Q": lambda c: (c.n_heads, c.d_model, c.d_head),
    "blocks.0.attn.W_K": lambda c: (c.n_heads, c.d_model, c.d_head),
    "blocks.0.attn.W_V": lambda c: (c.n_heads, c.d_model, c.d_head),
    "blocks.0.attn.W_O": lambda c: (c.n_heads, c.d_head, c.d_model),
    "blocks.0.mlp.W_in": lambda c: (c.d_model, c.d_mlp),
    "blocks.0.mlp.b_in": lambda c: (c.d_mlp,),
    "blocks.0.mlp.W_out": lambda c: (c.d_mlp, c.d_model),
    "blocks.0.mlp.b_out": lambda c: (c.d_model,),
    "unembed.W_U": lambda c: (c.d_model, c.d_vocab_out),
}


def param_shapes(cfg: Config) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every tensor a checkpoint of ``cfg`` stores, in canonical order.

    Blocks ``blocks.0`` ... ``blocks.{n_layers - 1}`` in order, each with the same tensors; a
    1-layer model's order (and so its initialisation) is what it always was.
    """
    arch = cfg.architecture
    d = cfg.d_model
    shapes = {"embed.W_E": (cfg.d_vocab, d)}
    if arch.pos_embed == "learned":
        shapes["pos_embed.W_pos"] = (cfg.n_ctx, d)
    for layer in range(cfg.n_layers):
        shapes |= _block_shapes(cfg, f"blocks.{layer}")
    if arch.layernorm == "pre":
        shapes |= {"ln_final.w": (d,), "ln_final.b": (d,)}
    if arch.unembed == "untied":
        shapes["unembed.W_U"] = (d, cfg.d_vocab_out)
    if arch.biases == "all":
        shapes["unembed.b_U"] = (cfg.d_vocab_out,)
    return shapes


def _block_shapes(cfg: Config, block: str) -> dict[str, tuple[int, ...]]:
    """The tensors of one block named ``block`` (``"blocks.0"``), in canonical order."""
    arch = cfg.architecture
    d, h, dh, m = cfg.d_model, cfg.n_heads, cfg.d_head, cfg.d_mlp
    shapes: dict[str, tuple[int, ...]] = {}
    if arch.layernorm == "pre":
        shapes |= {f"{block}.ln1.w": (d,), f"{block}.ln1.b": (d,)}
    for name in ("Q", "K", "V"):
        shapes[f"{block}.attn.W_{name}"] = (h, d, dh)
    if arch.biases == "all":
        shapes |= {f"{block}.attn.b_{name}": (h, dh) for name in ("Q", "K", "V")}
    shapes[f"{block}.attn.W_O"] = (h, dh, d)
    if arch.biases == "all":
        shapes[f"{block}.attn.b_O"] = (d,)
    if arch.layernorm == "post":
        shapes |= {f"{block}.ln1.w": (d,), f"{block}.ln1.b": (d,)}
    if arch.layernorm == "pre":
        shapes |= {f"{block}.ln2.w": (d,), f"{block}.ln2.b": (d,)}
    shapes[f"{block}.mlp.W_in"] = (d, m)
    if arch.biases != "none":
        shapes[f"{block}.mlp.b_in"] = (m,)
    shapes[f"{block}.mlp.W_out"] = (m, d)
    if arch.biases != "none":
        shapes[f"{block}.mlp.b_out"] = (d,)
    if arch.layernorm == "post":
        shapes |= {f"{block}.ln2.w": (d,), f"{block}.ln2.b": (d,)}
    return shapes


def init_params(cfg: Config, device: torch.device | str = "cpu") -> Params:
    """Gaussian weights with the reference code's scales (1/sqrt(fan-in)); biases 0, norm weights 1.

    Weights are drawn in canonical order from ``cfg.seed``, so the reference architecture's
    initialisation is what it always was.
    """
    generator = torch.Generator().manual_seed(cfg.seed)
    params: Params = {}
    for name, shape in param_shapes(cfg).items():
        leaf = name.split(".")[-1]
        if leaf.startswith("b"):
            params[name] = torch.zeros(shape)
        elif leaf == "w":
            params[name] = torch.ones(shape)
        else:
            scale = 1 / math.sqrt(cfg.d_vocab_out if name == "unembed.W_U" else cfg.d_model)
            params[name] = torch.randn(shape, generator=generator) * scale
    return {name: t.to(device) for name, t in params.items()}


def n_layers_of(params: Params) -> int:
    """How many blocks a model has: ``blocks.0`` ... ``blocks.{n - 1}`` each store ``attn.W_Q``."""
    return sum(1 for name in params if name.startswith("blocks.") and name.endswith(".attn.W_Q"))


def p_of(params: Params) -> int:
    """The modulus: W_E has one row per number and one for '='."""
    return params["embed.W_E"].shape[0] - 1


def n_params(tensors_or_shapes: Mapping[str, torch.Tensor | tuple[int, ...]]) -> int:
    """The number of parameters of a model: of its tensors (a :data:`Params`), or of its shapes
    alone (``param_shapes(cfg)`` of either family, so no tensor need be allocated)."""
    return sum(t.numel() if isinstance(t, torch.Tensor) else math.prod(t) for t in tensors_or_shapes.values())
