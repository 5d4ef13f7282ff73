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
from grokviz.core.forward import Hooks, add_bias, drop, forward, hook, layer_norm, mlp_block, mlp_unembed, unembed
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
        if dropout is not None:  # the config refuses it too: masks are drawn for one block's sites
            raise ValueError("dropout masks are for a 1-layer model; this one has more blocks")
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
    if hooks is None and cache is None and arch.attention == "causal":  # training: the table path
        return _forward_last_causal(params, a, b, arch)
    tokens = torch.stack([a, b, torch.full_like(a, p_of(params))], dim=1)  # [batch, pos]
    if hooks is None and cache is None:  # nothing to slice
        return forward(params, tokens, arch, last_only=True)
    n_layers = n_layers_of(params)
    inner: dict = {}
    wrapped = {name: _at_query(fn, _query_dim(name, n_layers, arch)) for name, fn in (hooks or {}).items()}
    logits = forward(params, tokens, arch, hooks=wrapped, cache=inner, last_only=True)
    if cache is not None:
        for name, act in inner.items():
            dim = _query_dim(name, n_layers, arch)
            cache[name] = act if dim is None else act.select(dim, -1)
    return logits


def _forward_last_causal(params: Params, a: torch.Tensor, b: torch.Tensor, arch: Architecture) -> torch.Tensor:
    """The training forward of N > 1 causal blocks: position-2 logits [batch, d_vocab_out], as
    ``forward(last_only=True)`` computes them (tested), in fewer operations.

    With causal attention position 0 attends to itself only, so in every block its stream is a
    function of token a alone: one row per token (p rows), computed once and gathered per pair where
    positions 1 and 2 read it as a key and value. Positions 1 and 2 run per pair; the last block
    runs at position 2 only. Projections are one matrix product each and the 2- and 3-key
    attention is broadcast products, not batched 3 x 3 matrix products (1.4-1.8x faster a step on
    a CPU: docs/depth.md).
    """
    p, n_layers = p_of(params), n_layers_of(params)
    W_E, W_pos = params["embed.W_E"], params.get("pos_embed.W_pos")
    pos = (lambda i: W_pos[i]) if W_pos is not None else (lambda i: 0.0)  # noqa: E731
    x0 = W_E[:p] + pos(0)  # [p, d_model]: position 0, one row per token
    x1 = W_E[b] + pos(1)  # [batch, d_model]
    x2 = (W_E[p] + pos(2)).expand_as(x1)  # [batch, d_model]: '=' (the same in every input)
    for layer in range(n_layers):
        block = f"blocks.{layer}"
        if arch.layernorm == "pre":
            in0, in1, in2 = (layer_norm(params, f"{block}.ln1", x) for x in (x0, x1, x2))
        else:
            in0, in1, in2 = x0, x1, x2
        k0, v0 = _project(params, block, "K", in0), _project(params, block, "V", in0)  # [p, head, d_head]
        k1, v1 = _project(params, block, "K", in1), _project(params, block, "V", in1)  # [batch, head, d_head]
        k2, v2 = _project(params, block, "K", in2), _project(params, block, "V", in2)
        ka, va = k0[a], v0[a]  # [batch, head, d_head]: position 0's keys and values, gathered
        scale = math.sqrt(k0.shape[-1])
        q2 = _project(params, block, "Q", in2)
        w2 = (torch.stack([(q2 * k).sum(-1) for k in (ka, k1, k2)], dim=-1) / scale).softmax(-1)  # [batch, head, 3]
        mid2 = x2 + _attn_out(params, block, w2[..., 0, None] * va + w2[..., 1, None] * v1 + w2[..., 2, None] * v2)
        if arch.layernorm == "post":
            mid2 = layer_norm(params, f"{block}.ln1", mid2)
        if layer == n_layers - 1:
            return unembed(params, mlp_block(params, block, mid2, arch, None, None), arch, None, None)
        q1 = _project(params, block, "Q", in1)
        w1 = (torch.stack([(q1 * k).sum(-1) for k in (ka, k1)], dim=-1) / scale).softmax(-1)  # [batch, head, 2]
        mid1 = x1 + _attn_out(params, block, w1[..., 0, None] * va + w1[..., 1, None] * v1)
        mid0 = x0 + _attn_out(params, block, v0)  # position 0 attends to itself alone: its pattern is 1
        if arch.layernorm == "post":
            mid0, mid1 = (layer_norm(params, f"{block}.ln1", m) for m in (mid0, mid1))
        x0, x1, x2 = (mlp_block(params, block, m, arch, None, None) for m in (mid0, mid1, mid2))
    raise AssertionError("unreachable: the last block returns")


def _project(params: Params, block: str, name: str, x: torch.Tensor) -> torch.Tensor:
    """x [..., d_model] -> [..., head, d_head]: one head-concatenated matrix product with W_{name}."""
    W = params[f"{block}.attn.W_{name}"]  # [head, d_model, d_head]
    head, d_model, d_head = W.shape
    out = (x @ W.transpose(0, 1).reshape(d_model, head * d_head)).unflatten(-1, (head, d_head))
    return add_bias(params, f"{block}.attn.b_{name}", out)


def _attn_out(params: Params, block: str, z: torch.Tensor) -> torch.Tensor:
    """z [..., head, d_head] -> [..., d_model]: W_O over the concatenated heads, and b_O."""
    return add_bias(params, f"{block}.attn.b_O", z.flatten(-2) @ params[f"{block}.attn.W_O"].flatten(0, 1))


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
