"""The forward of the modular 1-layer transformer: the definition, all positions, every :class:`Architecture`.

One block, written as PyTorch's ``nn.TransformerEncoderLayer`` computes it (its two norm
orders) and as TransformerLens names it:

* pre-LN:  ``x = x + attn(ln1(x)); x = x + mlp(ln2(x)); logits = ln_final(x) @ W_U + b_U``
* post-LN: ``x = ln1(x + attn(x)); x = ln2(x + mlp(x)); logits = x @ W_U + b_U``
* none (the paper's): ``x = x + attn(x); x = x + mlp(x); logits = x @ W_U``

Hook names are TransformerLens' (``blocks.0.attn.hook_pattern``, ``blocks.0.mlp.hook_post``,
...). In a post-LN block ``blocks.0.hook_resid_mid`` and ``hook_resid_post`` are the normalised
streams (what the next sublayer reads); ``blocks.0.ln1.hook_normalized`` is the same tensor as
the stream the LayerNorm writes. Interventions: ``hooks={"blocks.0.mlp.hook_post": fn}`` calls
``fn(activation)`` and continues with what it returns (shapes as in the cache of that forward).

``last_only`` computes queries, MLP and unembedding at the last position only: in one layer
nothing else reaches the logits there, so the logits equal the all-position forward's. Its
activations have no position axis (``hook_pattern`` [batch, head, key_pos], ``hook_post``
[batch, d_mlp]), as the reference fast path's.

Dropout (training only) sits where PyTorch's encoder layer has it: on the attention pattern,
on the attention output, after the activation, and on the MLP output. Masks are drawn by the
trainer (:func:`dropout_masks`) and passed in, so a step is a function of its inputs: a run
resumes exactly and an ensemble draws per-member masks outside ``vmap``.

Owns :func:`forward`, the hook and cache rule (:func:`hook`, also the adder's), the pieces the
fast path shares with it (:func:`layer_norm`, :func:`add_bias`, :func:`drop`,
:func:`mlp_unembed`), :func:`unembed_matrix` (W_U) and the dropout masks. What training and
analysis run is ``grokviz.core.fast_path.forward_last``, equal to this forward's logits (tested).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import torch
import torch.nn.functional as F
from einops import einsum

from grokviz.core.architecture import LN_EPS, REFERENCE, Architecture
from grokviz.core.params import Params, n_layers_of

Hooks = Mapping[str, Callable[[torch.Tensor], torch.Tensor]]

# einsum equations of attention with a query-position axis (all positions) or without (last only).
_ATTENTION = {
    False: {
        "q": "batch pos d_model, head d_model d_head -> batch pos head d_head",
        "scores": "batch q_pos head d_head, batch k_pos head d_head -> batch head q_pos k_pos",
        "z": "batch head q_pos k_pos, batch k_pos head d_head -> batch q_pos head d_head",
        "out": "batch pos head d_head, head d_head d_model -> batch pos d_model",
    },
    True: {
        "q": "batch d_model, head d_model d_head -> batch head d_head",
        "scores": "batch head d_head, batch k_pos head d_head -> batch head k_pos",
        "z": "batch head k_pos, batch k_pos head d_head -> batch head d_head",
        "out": "batch head d_head, head d_head d_model -> batch d_model",
    },
}


def hook(hooks: Hooks | None, cache: dict | None, name: str, act: torch.Tensor) -> torch.Tensor:
    """Apply the intervention at ``name`` (if any), record the result (if caching), return it."""
    if hooks is not None and name in hooks:
        act = hooks[name](act)
    if cache is not None:
        cache[name] = act
    return act


def unembed_matrix(params: Params) -> torch.Tensor:
    """[d_model, p]: ``unembed.W_U``, or ``W_E[:p]^T`` for a tied model (the '=' row is no output)."""
    if "unembed.W_U" in params:
        return params["unembed.W_U"]
    W_E = params["embed.W_E"]  # [p + 1, d_model]
    return W_E[:-1].T


def layer_norm(params: Params, prefix: str, x: torch.Tensor) -> torch.Tensor:
    """LayerNorm over d_model with ``prefix.w`` and ``prefix.b``."""
    return F.layer_norm(x, (x.shape[-1],), params[f"{prefix}.w"], params[f"{prefix}.b"], eps=LN_EPS)


def drop(dropout: Mapping[str, torch.Tensor] | None, site: str, act: torch.Tensor) -> torch.Tensor:
    """``act`` times its dropout mask (training), or ``act`` itself (no masks)."""
    return act if dropout is None else act * dropout[site]


def add_bias(params: Params, name: str, x: torch.Tensor) -> torch.Tensor:
    """``x + params[name]``, or ``x`` for an architecture without that bias."""
    bias = params.get(name)
    return x if bias is None else x + bias


def mlp_block(
    params: Params,
    block: str,
    resid_mid: torch.Tensor,
    arch: Architecture,
    hooks: Hooks | None,
    cache: dict | None,
    dropout: Mapping[str, torch.Tensor] | None = None,
) -> torch.Tensor:
    """resid_mid [..., d_model] -> resid_post [..., d_model]: the MLP sublayer of ``block`` ("blocks.0")."""
    x = resid_mid
    if arch.layernorm == "pre":
        x = hook(hooks, cache, f"{block}.ln2.hook_normalized", layer_norm(params, f"{block}.ln2", x))
    pre = add_bias(params, f"{block}.mlp.b_in", x @ params[f"{block}.mlp.W_in"])
    pre = hook(hooks, cache, f"{block}.mlp.hook_pre", pre)
    post = torch.relu(pre) if arch.activation == "relu" else F.gelu(pre)
    post = hook(hooks, cache, f"{block}.mlp.hook_post", post)
    mlp_out = add_bias(params, f"{block}.mlp.b_out", drop(dropout, "mlp_post", post) @ params[f"{block}.mlp.W_out"])
    mlp_out = hook(hooks, cache, f"{block}.hook_mlp_out", mlp_out)
    resid_post = resid_mid + drop(dropout, "mlp_out", mlp_out)
    if arch.layernorm == "post":
        resid_post = layer_norm(params, f"{block}.ln2", resid_post)
        resid_post = hook(hooks, cache, f"{block}.ln2.hook_normalized", resid_post)
    return hook(hooks, cache, f"{block}.hook_resid_post", resid_post)


def unembed(params: Params, resid: torch.Tensor, arch: Architecture, hooks: Hooks | None, cache: dict | None):
    """The last block's resid_post [..., d_model] -> logits [..., d_vocab_out] (the final LayerNorm, W_U, b_U)."""
    if arch.layernorm == "pre":
        resid = hook(hooks, cache, "ln_final.hook_normalized", layer_norm(params, "ln_final", resid))
    return add_bias(params, "unembed.b_U", resid @ unembed_matrix(params))


def mlp_unembed(
    params: Params,
    resid_mid: torch.Tensor,
    arch: Architecture,
    hooks: Hooks | None,
    cache: dict | None,
    dropout: Mapping[str, torch.Tensor] | None = None,
    block: str = "blocks.0",
) -> torch.Tensor:
    """resid_mid [..., d_model] -> logits [..., d_vocab_out]: the last block's MLP and the unembedding."""
    return unembed(params, mlp_block(params, block, resid_mid, arch, hooks, cache, dropout), arch, hooks, cache)


def attention_block(
    params: Params,
    block: str,
    resid_pre: torch.Tensor,
    arch: Architecture,
    hooks: Hooks | None,
    cache: dict | None,
    last_only: bool,
    dropout: Mapping[str, torch.Tensor] | None = None,
) -> torch.Tensor:
    """resid_pre [batch, pos, d_model] -> resid_mid [batch, (pos,) d_model]: the attention sublayer of ``block``.

    With ``last_only`` only the last position queries (its output has no position axis).
    """
    n_ctx = resid_pre.shape[1]
    attn_in = resid_pre
    if arch.layernorm == "pre":
        attn_in = hook(hooks, cache, f"{block}.ln1.hook_normalized", layer_norm(params, f"{block}.ln1", attn_in))
    eq = _ATTENTION[last_only]
    query_in = attn_in[:, -1] if last_only else attn_in  # [batch, (q_pos,) d_model]

    def project(name: str, x: torch.Tensor, equation: str) -> torch.Tensor:
        out = add_bias(params, f"{block}.attn.b_{name}", einsum(x, params[f"{block}.attn.W_{name}"], equation))
        return hook(hooks, cache, f"{block}.attn.hook_{name.lower()}", out)

    q = project("Q", query_in, eq["q"])  # [batch, (q_pos,) head, d_head]
    k = project("K", attn_in, _ATTENTION[False]["q"])  # [batch, k_pos, head, d_head]
    v = project("V", attn_in, _ATTENTION[False]["q"])
    scores = einsum(q, k, eq["scores"]) / math.sqrt(q.shape[-1])  # [batch, head, (q_pos,) k_pos]
    if arch.attention == "causal" and not last_only:  # the last query sees every key either way
        future = torch.ones(n_ctx, n_ctx, dtype=torch.bool, device=resid_pre.device).triu(1)  # [q_pos, k_pos]
        scores = scores.masked_fill(future, float("-inf"))
    scores = hook(hooks, cache, f"{block}.attn.hook_attn_scores", scores)
    pattern = hook(hooks, cache, f"{block}.attn.hook_pattern", scores.softmax(dim=-1))
    z = hook(hooks, cache, f"{block}.attn.hook_z", einsum(drop(dropout, "pattern", pattern), v, eq["z"]))
    attn_out = add_bias(params, f"{block}.attn.b_O", einsum(z, params[f"{block}.attn.W_O"], eq["out"]))
    attn_out = hook(hooks, cache, f"{block}.hook_attn_out", attn_out)  # [batch, (pos,) d_model]
    resid_mid = (resid_pre[:, -1] if last_only else resid_pre) + drop(dropout, "attn_out", attn_out)
    if arch.layernorm == "post":
        resid_mid = hook(hooks, cache, f"{block}.ln1.hook_normalized", layer_norm(params, f"{block}.ln1", resid_mid))
    return hook(hooks, cache, f"{block}.hook_resid_mid", resid_mid)


def forward(
    params: Params,
    tokens: torch.Tensor,
    arch: Architecture = REFERENCE,
    *,
    hooks: Hooks | None = None,
    cache: dict | None = None,
    last_only: bool = False,
    dropout: Mapping[str, torch.Tensor] | None = None,
) -> torch.Tensor:
    """tokens [batch, pos] -> last-position logits [batch, d_vocab_out].

    Pass ``cache={}`` to receive every activation under its TransformerLens hook name. With
    ``last_only`` every block but the last runs at all positions (later blocks read them), and the
    last block's query, MLP and unembedding at the last position only.
    """
    n_ctx = tokens.shape[1]
    resid = hook(hooks, cache, "hook_embed", params["embed.W_E"][tokens])  # [batch, pos, d_model]
    if "pos_embed.W_pos" in params:
        pos = params["pos_embed.W_pos"][:n_ctx].expand_as(resid)
        resid = resid + hook(hooks, cache, "hook_pos_embed", pos)
    n_layers = n_layers_of(params)
    for layer in range(n_layers):
        block, last_block = f"blocks.{layer}", layer == n_layers - 1
        resid = hook(hooks, cache, f"{block}.hook_resid_pre", resid)  # [batch, pos, d_model]
        resid_mid = attention_block(params, block, resid, arch, hooks, cache, last_only and last_block, dropout)
        resid = mlp_block(params, block, resid_mid, arch, hooks, cache, dropout)  # [batch, (pos,) d_model]
    logits = unembed(params, resid, arch, hooks, cache)  # [batch, (pos,) d_vocab_out]
    return logits if last_only else logits[:, -1]


def dropout_shapes(batch: int, n_heads: int, d_model: int, d_mlp: int, n_ctx: int = 3) -> dict[str, tuple[int, ...]]:
    """The shape of each dropout mask of a last-position forward over ``batch`` inputs."""
    return {
        "pattern": (batch, n_heads, n_ctx),
        "attn_out": (batch, d_model),
        "mlp_post": (batch, d_mlp),
        "mlp_out": (batch, d_model),
    }


def dropout_masks(
    rate: float, shapes: Mapping[str, tuple[int, ...]], generator: torch.Generator, device: torch.device | str
) -> dict[str, torch.Tensor]:
    """Inverted-dropout masks (0, or 1 / (1 - rate)) of the given shapes, as ``F.dropout`` scales them."""
    keep = 1.0 - rate
    return {
        site: (torch.rand(shape, generator=generator, device=device) < keep).float() / keep
        for site, shape in shapes.items()
    }
