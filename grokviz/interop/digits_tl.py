"""The 10-digit adder exported for TransformerLens (3.x ``HookedTransformer``).

Our tensors already carry TransformerLens names and layouts; the exporter adds what a
``HookedTransformer`` holds and we do not store: ``unembed.W_U = W_E^T`` for a tied model
(TransformerLens has no tied unembedding), zero attention, FFN and unembedding biases, and the
causal ``mask``/``IGNORE`` buffers of every block. The config is gpt-acc-jax's architecture in
TransformerLens' words: ``act_fn="gelu_new"`` (GELU, tanh approximation), ``normalization_type``
"LN" (or "RMS"), ``eps=1e-6``, causal attention scaled by sqrt(d_head).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from grokviz.core import digits_model
from grokviz.core.digits_config import DigitsConfig
from grokviz.core.params import Params


def tl_config(cfg: DigitsConfig) -> dict[str, Any]:
    """HookedTransformerConfig kwargs (exactly TransformerLens' names)."""
    return {
        "n_layers": cfg.n_layers,
        "d_model": cfg.d_model,
        "d_head": cfg.d_head,
        "n_heads": cfg.n_heads,
        "d_mlp": cfg.d_mlp,
        "d_vocab": cfg.d_vocab,
        "d_vocab_out": cfg.d_vocab,
        "n_ctx": cfg.n_ctx,
        "act_fn": "gelu_new",
        "normalization_type": cfg.normalization,
        "eps": digits_model.EPS,
        "attn_only": False,
        "positional_embedding_type": "standard",
        "attention_dir": "causal",
        "use_attn_scale": True,
        "default_prepend_bos": False,
        "seed": cfg.seed,
    }


def to_transformer_lens(params: Params, cfg: DigitsConfig) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Our params -> (HookedTransformerConfig kwargs, a state dict that loads with ``strict=True``)."""
    from grokviz.storage.runs import validate_params

    params = validate_params(params, cfg, "params")
    state = {name: tensor.clone() for name, tensor in params.items()}
    state["unembed.W_U"] = digits_model.unembed_matrix(params).clone().contiguous()  # [d_model, d_vocab]
    state["unembed.b_U"] = torch.zeros(cfg.d_vocab)
    for layer in range(cfg.n_layers):
        block = f"blocks.{layer}"
        for name in ("b_Q", "b_K", "b_V"):
            state[f"{block}.attn.{name}"] = torch.zeros(cfg.n_heads, cfg.d_head)
        state[f"{block}.attn.b_O"] = torch.zeros(cfg.d_model)
        state.setdefault(f"{block}.mlp.b_in", torch.zeros(cfg.d_mlp))
        state.setdefault(f"{block}.mlp.b_out", torch.zeros(cfg.d_model))
        state[f"{block}.attn.mask"] = torch.ones(cfg.n_ctx, cfg.n_ctx, dtype=torch.bool).tril()
        state[f"{block}.attn.IGNORE"] = torch.tensor(-math.inf)
    return tl_config(cfg), state
