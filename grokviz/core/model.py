"""The modular 1-layer transformer as plain tensors with TransformerLens names.

Parameters live in a ``dict[str, Tensor]`` keyed exactly as TransformerLens names them
(right-multiplying layout, see docs/analysis.md). Which tensors there are follows from the run's
:class:`~grokviz.core.architecture.Architecture` (:func:`param_shapes`): the paper's reference
model has no LayerNorm and no attention or unembedding biases; other architectures add
``blocks.0.ln1.w``, ``blocks.0.attn.b_Q``, ``unembed.b_U``, ... and a tied model stores no
``unembed.W_U`` (it is ``W_E[:p]^T``: :func:`unembed_matrix`).

Two forwards compute the same position-2 logits:

* :func:`forward` — all positions, TransformerLens hook names, an activation cache and
  interventions at any hook (``grokviz.core.general``). This is the definition.
* :func:`forward_last` — what training and analysis run: position 2 only (nothing else reaches
  the loss, and in one layer nothing else reaches position 2), with keys and values gathered from
  per-token tables, for every architecture. Its cache holds position-2 activations under the
  same hook names, without the position axis. (``grokviz.core.general.forward(last_only=True)``
  computes the same without tables: the second implementation the tests compare it with.)

Interventions: ``hooks={"blocks.0.mlp.hook_post": fn}`` calls ``fn(activation)`` and continues
with what it returns (shapes as in the cache of that forward).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from einops import einsum

from grokviz.core import general
from grokviz.core.architecture import REFERENCE, Architecture
from grokviz.core.config import Config
from grokviz.core.general import Hooks, add_bias, drop, hook, layer_norm, mlp_unembed, unembed_matrix

Params = dict[str, torch.Tensor]
__all__ = ["Hooks", "Params", "forward", "forward_last", "init_params", "param_shapes", "unembed_matrix"]

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
    """Name -> shape of every tensor a checkpoint of ``cfg`` stores, in canonical order."""
    arch = cfg.architecture
    d, h, dh, m = cfg.d_model, cfg.n_heads, cfg.d_head, cfg.d_mlp
    shapes = {"embed.W_E": (cfg.d_vocab, d)}
    if arch.pos_embed == "learned":
        shapes["pos_embed.W_pos"] = (cfg.n_ctx, d)
    if arch.layernorm == "pre":
        shapes |= {"blocks.0.ln1.w": (d,), "blocks.0.ln1.b": (d,)}
    for name in ("Q", "K", "V"):
        shapes[f"blocks.0.attn.W_{name}"] = (h, d, dh)
    if arch.biases == "all":
        shapes |= {f"blocks.0.attn.b_{name}": (h, dh) for name in ("Q", "K", "V")}
    shapes["blocks.0.attn.W_O"] = (h, dh, d)
    if arch.biases == "all":
        shapes["blocks.0.attn.b_O"] = (d,)
    if arch.layernorm == "post":
        shapes |= {"blocks.0.ln1.w": (d,), "blocks.0.ln1.b": (d,)}
    if arch.layernorm == "pre":
        shapes |= {"blocks.0.ln2.w": (d,), "blocks.0.ln2.b": (d,)}
    shapes["blocks.0.mlp.W_in"] = (d, m)
    if arch.biases != "none":
        shapes["blocks.0.mlp.b_in"] = (m,)
    shapes["blocks.0.mlp.W_out"] = (m, d)
    if arch.biases != "none":
        shapes["blocks.0.mlp.b_out"] = (d,)
    if arch.layernorm == "post":
        shapes |= {"blocks.0.ln2.w": (d,), "blocks.0.ln2.b": (d,)}
    if arch.layernorm == "pre":
        shapes |= {"ln_final.w": (d,), "ln_final.b": (d,)}
    if arch.unembed == "untied":
        shapes["unembed.W_U"] = (d, cfg.d_vocab_out)
    if arch.biases == "all":
        shapes["unembed.b_U"] = (cfg.d_vocab_out,)
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


def p_of(params: Params) -> int:
    """The modulus: W_E has one row per number and one for '='."""
    return params["embed.W_E"].shape[0] - 1


def forward(
    params: Params,
    tokens: torch.Tensor,
    hooks: Hooks | None = None,
    cache: dict | None = None,
    arch: Architecture = REFERENCE,
) -> torch.Tensor:
    """All-position forward. tokens [batch, 3] -> position-2 logits [batch, d_vocab_out].

    Pass ``cache={}`` to receive every activation under its TransformerLens hook name.
    """
    return general.forward(params, tokens, arch, hooks=hooks, cache=cache)


def forward_last(
    params: Params,
    a: torch.Tensor,
    b: torch.Tensor,
    hooks: Hooks | None = None,
    cache: dict | None = None,
    arch: Architecture = REFERENCE,
    dropout: dict[str, torch.Tensor] | None = None,
) -> torch.Tensor:
    """Fast path: a, b [batch] int64 -> position-2 logits [batch, d_vocab_out], for every architecture.

    Equal to :func:`forward` on ``[a, b, =]`` (tested for every architecture). The cache holds
    position-2 activations: ``blocks.0.attn.hook_pattern`` [batch, head, key_pos],
    ``blocks.0.attn.hook_z`` [batch, head, d_head], ``blocks.0.hook_resid_mid`` [batch, d_model],
    ``blocks.0.mlp.hook_pre``/``hook_post`` [batch, d_mlp], ... ``dropout`` (training only) holds
    the scaled masks of :func:`grokviz.core.general.dropout_masks`.

    Only the ``=`` position reaches the loss, and the ``=`` token is the same in every input, so
    its query is one vector per head, and what attention reads at positions 0 and 1 depends only
    on (position, token): keys and values are tables over the ``p`` tokens, gathered rather than
    recomputed. That holds for every architecture: a pre-LN model normalises each (position,
    token) row once, a post-LN one normalises after attention. The MLP and unembedding run at
    position 2 only. On the reference architecture every optional branch below is skipped, and
    the step is what it was before the options (docs/architectures.md).
    """
    W_E, W_pos = params["embed.W_E"], params.get("pos_embed.W_pos")
    W_Q, W_K, W_V = (params[f"blocks.0.attn.W_{n}"] for n in "QKV")
    p = W_E.shape[0] - 1  # the '=' token is the last row of W_E
    d_head = W_Q.shape[-1]
    # The residual stream before attention as one table of every (position, token) that occurs:
    # rows [0, p) token t at position 0, rows [p, 2p) token t at position 1, row 2p '=' at 2.
    if W_pos is not None:
        resid_eq = W_E[p] + W_pos[2]  # [d_model]
        table = torch.cat([(W_E[:p] + W_pos[:2, None]).reshape(2 * p, -1), resid_eq[None]])  # [2p+1, d_model]
    else:
        resid_eq = W_E[p]
        table = torch.cat([W_E[:p], W_E[:p], resid_eq[None]])
    if arch.layernorm == "pre":
        table = layer_norm(params, "blocks.0.ln1", table)  # each row is one position's stream
    # What the '=' query reads. Without a pre-LN it is resid_eq itself, taken directly rather than
    # as the table's last row: the reference model's gradients stay bit-identical to what they were.
    attn_eq = table[2 * p] if arch.layernorm == "pre" else resid_eq  # [d_model]
    q_eq = einsum(attn_eq, W_Q, "d_model, head d_model d_head -> head d_head")  # [head, d_head]
    q_eq = add_bias(params, "blocks.0.attn.b_Q", q_eq) / math.sqrt(d_head)
    # Every row's score against the '=' query, and its value vector: one product each.
    score_table = einsum(table, W_K, q_eq, "row d_model, head d_model d_head, head d_head -> row head")  # [2p+1, head]
    v_table = einsum(table, W_V, "row d_model, head d_model d_head -> row head d_head")  # [2p+1, head, d_head]
    if "blocks.0.attn.b_K" in params:
        score_table = score_table + einsum(params["blocks.0.attn.b_K"], q_eq, "head d_head, head d_head -> head")
    v_table = add_bias(params, "blocks.0.attn.b_V", v_table)

    # Each pair's three key positions as rows of the tables.
    rows = torch.stack([a, b + p, torch.full_like(a, 2 * p)], dim=1)  # [batch, key_pos]
    scores = score_table[rows].transpose(1, 2)  # [batch, head, key_pos]
    pattern = drop(dropout, "pattern", hook(hooks, cache, "blocks.0.attn.hook_pattern", scores.softmax(dim=-1)))
    # Mix the d_head-wide values per pair, then one matrix product with W_O for all heads. (Mixing
    # values already mapped through W_O gathers d_model-wide rows per pair and head: 4x the memory
    # traffic, and batched 1 x head products; measured slower.)
    # Three gathers of [batch, head, d_head] rows: one of [batch, 3, head, d_head] is half as fast
    # on a CPU (its gradient's scatter dominates).
    z = (
        pattern[..., 0, None] * v_table[rows[:, 0]]
        + pattern[..., 1, None] * v_table[rows[:, 1]]
        + pattern[..., 2, None] * v_table[2 * p]
    )  # [batch, head, d_head]
    z = hook(hooks, cache, "blocks.0.attn.hook_z", z)
    attn_out = einsum(z, params["blocks.0.attn.W_O"], "batch head d_head, head d_head d_model -> batch d_model")
    attn_out = hook(hooks, cache, "blocks.0.hook_attn_out", add_bias(params, "blocks.0.attn.b_O", attn_out))
    resid_mid = resid_eq + drop(dropout, "attn_out", attn_out)
    if arch.layernorm == "post":
        resid_mid = hook(hooks, cache, "blocks.0.ln1.hook_normalized", layer_norm(params, "blocks.0.ln1", resid_mid))
    resid_mid = hook(hooks, cache, "blocks.0.hook_resid_mid", resid_mid)
    return mlp_unembed(params, resid_mid, arch, hooks, cache, dropout)


def n_parameters(params: Params) -> int:
    return sum(t.numel() for t in params.values())
