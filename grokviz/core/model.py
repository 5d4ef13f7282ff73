"""The reference 1-layer transformer as plain tensors with TransformerLens names.

Parameters live in a ``dict[str, Tensor]`` keyed exactly as TransformerLens names them
(right-multiplying layout, see docs/analysis.md). There is no LayerNorm and there are no
attention or unembedding biases (TransformerLens treats the missing ones as zeros).

Two forwards compute the same logits:

* :func:`forward` — all positions, TransformerLens hook names, an activation cache and
  interventions at any hook. This is what analysis code reads.
* :func:`forward_last` — the training/analysis fast path. Only the ``=`` position reaches the
  loss, and the ``=`` token is the same in every input, so its query is one vector per head and
  the keys/values of positions 0 and 1 are tables over the ``p`` tokens that are gathered rather
  than recomputed. The MLP and unembedding run at position 2 only. Its cache holds position-2
  activations under the same hook names, without the position axis.

Interventions: ``hooks={"blocks.0.mlp.hook_post": fn}`` calls ``fn(activation)`` and continues
with what it returns (shapes as in the cache of that forward).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import torch
from einops import einsum

from grokviz.core.config import Config

Params = dict[str, torch.Tensor]
Hooks = Mapping[str, Callable[[torch.Tensor], torch.Tensor]]

# name -> shape as a function of the config; the order is the canonical order of a checkpoint.
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
    return {name: shape(cfg) for name, shape in PARAM_SHAPES.items()}


def init_params(cfg: Config, device: torch.device | str = "cpu") -> Params:
    """Gaussian initialisation with the reference code's scales (1/sqrt(fan-in))."""
    generator = torch.Generator().manual_seed(cfg.seed)
    params: Params = {}
    for name, shape in param_shapes(cfg).items():
        if name.split(".")[-1].startswith("b_"):
            params[name] = torch.zeros(shape)
            continue
        scale = 1 / math.sqrt(cfg.d_vocab_out if name == "unembed.W_U" else cfg.d_model)
        params[name] = torch.randn(shape, generator=generator) * scale
    return {name: t.to(device) for name, t in params.items()}


def _hook(hooks: Hooks | None, cache: dict | None, name: str, act: torch.Tensor) -> torch.Tensor:
    if hooks is not None and name in hooks:
        act = hooks[name](act)
    if cache is not None:
        cache[name] = act
    return act


def _mlp_unembed(params: Params, resid_mid: torch.Tensor, hooks: Hooks | None, cache: dict | None) -> torch.Tensor:
    """resid_mid [..., d_model] -> logits [..., d_vocab_out] (shared by both forwards)."""
    pre = _hook(
        hooks, cache, "blocks.0.mlp.hook_pre", resid_mid @ params["blocks.0.mlp.W_in"] + params["blocks.0.mlp.b_in"]
    )
    post = _hook(hooks, cache, "blocks.0.mlp.hook_post", torch.relu(pre))
    mlp_out = _hook(
        hooks, cache, "blocks.0.hook_mlp_out", post @ params["blocks.0.mlp.W_out"] + params["blocks.0.mlp.b_out"]
    )
    resid_post = _hook(hooks, cache, "blocks.0.hook_resid_post", resid_mid + mlp_out)
    return resid_post @ params["unembed.W_U"]


def forward(
    params: Params, tokens: torch.Tensor, hooks: Hooks | None = None, cache: dict | None = None
) -> torch.Tensor:
    """All-position forward. tokens [batch, 3] -> position-2 logits [batch, d_vocab_out].

    Pass ``cache={}`` to receive every activation under its TransformerLens hook name.
    """
    W_E, W_pos = params["embed.W_E"], params["pos_embed.W_pos"]
    n_ctx = tokens.shape[1]
    embed = _hook(hooks, cache, "hook_embed", W_E[tokens])  # [batch, pos, d_model]
    pos_embed = _hook(hooks, cache, "hook_pos_embed", W_pos[:n_ctx].expand_as(embed))  # [batch, pos, d_model]
    resid_pre = _hook(hooks, cache, "blocks.0.hook_resid_pre", embed + pos_embed)

    def project(name: str) -> torch.Tensor:  # [batch, pos, head, d_head]
        weight = params[f"blocks.0.attn.W_{name}"]
        return einsum(resid_pre, weight, "batch pos d_model, head d_model d_head -> batch pos head d_head")

    q = _hook(hooks, cache, "blocks.0.attn.hook_q", project("Q"))
    k = _hook(hooks, cache, "blocks.0.attn.hook_k", project("K"))
    v = _hook(hooks, cache, "blocks.0.attn.hook_v", project("V"))
    d_head = q.shape[-1]
    scores = einsum(q, k, "batch q_pos head d_head, batch k_pos head d_head -> batch head q_pos k_pos") / math.sqrt(
        d_head
    )  # [batch, head, query_pos, key_pos]
    causal = torch.ones(n_ctx, n_ctx, dtype=torch.bool, device=tokens.device).tril()
    scores = _hook(hooks, cache, "blocks.0.attn.hook_attn_scores", scores.masked_fill(~causal, float("-inf")))
    pattern = _hook(hooks, cache, "blocks.0.attn.hook_pattern", scores.softmax(dim=-1))
    z = _hook(
        hooks,
        cache,
        "blocks.0.attn.hook_z",
        einsum(pattern, v, "batch head q_pos k_pos, batch k_pos head d_head -> batch q_pos head d_head"),
    )  # [batch, pos, head, d_head]
    attn_out = _hook(
        hooks,
        cache,
        "blocks.0.hook_attn_out",
        einsum(z, params["blocks.0.attn.W_O"], "batch pos head d_head, head d_head d_model -> batch pos d_model"),
    )
    resid_mid = _hook(hooks, cache, "blocks.0.hook_resid_mid", resid_pre + attn_out)  # [batch, pos, d_model]
    logits = _mlp_unembed(params, resid_mid, hooks, cache)  # [batch, pos, d_vocab_out]
    return logits[:, -1]


def forward_last(
    params: Params, a: torch.Tensor, b: torch.Tensor, hooks: Hooks | None = None, cache: dict | None = None
) -> torch.Tensor:
    """Fast path: a, b [batch] int64 -> position-2 logits [batch, d_vocab_out].

    Equal to :func:`forward` on ``[a, b, =]`` (tested). The cache holds position-2 activations:
    ``blocks.0.attn.hook_pattern`` [batch, head, key_pos], ``blocks.0.attn.hook_z`` [batch, head,
    d_head], ``blocks.0.hook_resid_mid`` [batch, d_model], ``blocks.0.mlp.hook_pre``/``hook_post``
    [batch, d_mlp], ...
    """
    W_E, W_pos = params["embed.W_E"], params["pos_embed.W_pos"]
    W_Q, W_K, W_V = (params[f"blocks.0.attn.W_{n}"] for n in "QKV")
    p = W_E.shape[0] - 1  # the '=' token is the last row of W_E
    d_head = W_Q.shape[-1]
    # The residual stream before attention as one table of every (position, token) that occurs:
    # rows [0, p) token t at position 0, rows [p, 2p) token t at position 1, row 2p '=' at 2.
    resid_eq = W_E[p] + W_pos[2]  # [d_model]
    table = torch.cat([(W_E[:p] + W_pos[:2, None]).reshape(2 * p, -1), resid_eq[None]])  # [2p+1, d_model]
    q_eq = einsum(resid_eq, W_Q, "d_model, head d_model d_head -> head d_head") / math.sqrt(d_head)  # [head, d_head]
    # Every row's score against the '=' query, and its value vector: one product each.
    score_table = einsum(table, W_K, q_eq, "row d_model, head d_model d_head, head d_head -> row head")  # [2p+1, head]
    v_table = einsum(table, W_V, "row d_model, head d_model d_head -> row head d_head")  # [2p+1, head, d_head]

    # Each pair's three key positions as rows of the tables.
    rows = torch.stack([a, b + p, torch.full_like(a, 2 * p)], dim=1)  # [batch, key_pos]
    scores = score_table[rows].transpose(1, 2)  # [batch, head, key_pos]
    pattern = _hook(hooks, cache, "blocks.0.attn.hook_pattern", scores.softmax(dim=-1))
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
    z = _hook(hooks, cache, "blocks.0.attn.hook_z", z)
    attn_out = einsum(z, params["blocks.0.attn.W_O"], "batch head d_head, head d_head d_model -> batch d_model")
    attn_out = _hook(hooks, cache, "blocks.0.hook_attn_out", attn_out)
    resid_mid = _hook(hooks, cache, "blocks.0.hook_resid_mid", resid_eq + attn_out)
    return _mlp_unembed(params, resid_mid, hooks, cache)


def n_parameters(params: Params) -> int:
    return sum(t.numel() for t in params.values())
