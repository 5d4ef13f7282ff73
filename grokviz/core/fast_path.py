"""The fast path of the modular model: position-2 logits, what training and analysis run.

* :func:`forward_last` — position 2 only (nothing else reaches the loss, and in one layer nothing
  else reaches position 2), with keys and values gathered from per-token tables, for every
  architecture. Its cache holds position-2 activations under TransformerLens' hook names, without
  the position axis. It equals the definition, ``grokviz.core.forward.forward``, on ``[a, b, =]``
  (``forward(last_only=True)`` computes the same without tables: the second implementation the
  tests compare it with).
* :func:`all_pairs` and :func:`forward_all_pairs` — every pair of Z_p x Z_p in row-major order
  and their logits: the one "logits of every pair" the analyses use.

Interventions: ``hooks={"blocks.0.mlp.hook_post": fn}`` calls ``fn(activation)`` and continues
with what it returns (shapes as in the cache of that forward).
"""

from __future__ import annotations

import math

import torch
from einops import einsum

from grokviz.core.architecture import REFERENCE, Architecture
from grokviz.core.forward import Hooks, add_bias, drop, forward, hook, layer_norm, mlp_unembed
from grokviz.core.params import Params, n_layers_of, p_of


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

    Equal to :func:`grokviz.core.forward.forward` on ``[a, b, =]`` (tested for every
    architecture). The cache holds position-2 activations: ``blocks.0.attn.hook_pattern``
    [batch, head, key_pos],
    ``blocks.0.attn.hook_z`` [batch, head, d_head], ``blocks.0.hook_resid_mid`` [batch, d_model],
    ``blocks.0.mlp.hook_pre``/``hook_post`` [batch, d_mlp], ... ``dropout`` (training only) holds
    the scaled masks of :func:`grokviz.core.forward.dropout_masks`.

    Only the ``=`` position reaches the loss, and the ``=`` token is the same in every input, so
    its query is one vector per head, and what attention reads at positions 0 and 1 depends only
    on (position, token): keys and values are tables over the ``p`` tokens, gathered rather than
    recomputed. That holds for every architecture: a pre-LN model normalises each (position,
    token) row once, a post-LN one normalises after attention. The MLP and unembedding run at
    position 2 only. On the reference architecture every optional branch below is skipped, and
    the step is what it was before the options (docs/architectures.md).
    """
    if n_layers_of(params) > 1:
        return _forward_last_deep(params, a, b, hooks, cache, arch)
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


def _forward_last_deep(
    params: Params, a: torch.Tensor, b: torch.Tensor, hooks: Hooks | None, cache: dict | None, arch: Architecture
) -> torch.Tensor:
    """:func:`forward_last` of a model with more than one block: position-2 logits [batch, d_vocab_out].

    Every block but the last runs at all three positions (the next block's keys and values read
    positions 0 and 1), the last one's query, MLP and unembedding at position 2 only
    (``forward(last_only=True)``). Hooks and the cache see the '=' position of every block, without
    a position axis, as a 1-layer model's: an intervention on an earlier block changes its position-2
    activation only (what positions 0 and 1 compute is left alone).
    """
    p = p_of(params)
    tokens = torch.stack([a, b, torch.full_like(a, p)], dim=1)  # [batch, pos]
    n_layers = n_layers_of(params)
    if hooks is None and cache is None:  # training: nothing to slice
        return forward(params, tokens, arch, last_only=True)
    inner: dict = {}
    wrapped = {name: _at_query(fn, _query_dim(name, n_layers, arch)) for name, fn in (hooks or {}).items()}
    logits = forward(params, tokens, arch, hooks=wrapped, cache=inner, last_only=True)
    if cache is not None:
        for name, act in inner.items():
            dim = _query_dim(name, n_layers, arch)
            cache[name] = act if dim is None else act.select(dim, -1)
    return logits


def _query_dim(name: str, n_layers: int, arch: Architecture) -> int | None:
    """The axis of query positions of the activation ``name`` in ``forward(last_only=True)``, or None
    when it has none (the last block after its query, and keys and values, which are per key)."""
    if name.endswith((".hook_k", ".hook_v")):
        return None
    query_axis = 2 if name.endswith((".hook_pattern", ".hook_attn_scores")) else 1
    if not name.startswith(f"blocks.{n_layers - 1}."):
        return None if name.startswith(("ln_final", "unembed")) else query_axis
    # The last block: only what precedes its query has positions.
    before_query = name.endswith(".hook_resid_pre") or (
        arch.layernorm == "pre" and name.endswith(".ln1.hook_normalized")
    )
    return query_axis if before_query else None


def _at_query(fn, dim: int | None):
    """A hook that applies ``fn`` to the last query position of its activation only."""
    if dim is None:
        return fn

    def at_last(act: torch.Tensor) -> torch.Tensor:
        last = fn(act.select(dim, -1)).unsqueeze(dim)
        return torch.cat([act.narrow(dim, 0, act.shape[dim] - 1), last], dim=dim)

    return at_last


def all_pairs(p: int) -> tuple[torch.Tensor, torch.Tensor]:
    """a, b [p*p] int64 in row-major order (index = a * p + b), every pair of Z_p x Z_p."""
    a = torch.arange(p).repeat_interleave(p)
    b = torch.arange(p).repeat(p)
    return a, b


def forward_all_pairs(
    params: Params, cache: dict | None = None, arch: Architecture = REFERENCE, hooks: Hooks | None = None
) -> torch.Tensor:
    """Logits [p*p, p] of every pair, row-major, by :func:`forward_last` (no gradients).

    ``cache`` receives forward_last's position-2 activations ([p*p, ...]); ``hooks`` intervene.
    """
    a, b = all_pairs(p_of(params))
    with torch.no_grad():
        return forward_last(params, a, b, hooks=hooks, cache=cache, arch=arch)
