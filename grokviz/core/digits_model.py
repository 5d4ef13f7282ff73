"""The adder's model: a small causal decoder as plain tensors with TransformerLens names.

Architecture (gpt-acc-jax's, written out): token + learned positional embeddings; per block a
pre-LayerNorm (with bias, eps 1e-6) before causal self-attention without biases, and before a GELU
(tanh approximation) FFN, biases optional; a final LayerNorm; logits from ``W_U``, which a tied
model does not store: it is ``W_E^T``. Parameters are keyed and shaped as TransformerLens names them
(``blocks.0.attn.W_Q`` is ``[n_heads, d_model, d_head]``, right-multiplying).

The architecture is read from the parameters themselves (``ln*.b`` present = LayerNorm, else
RMSNorm; ``unembed.W_U`` absent = tied; ``mlp.b_in`` present = FFN biases), so a forward needs
no config.

:func:`forward` scores every position; with ``answer_only`` (the training and evaluation path)
the last block computes its queries, FFN and logits at the 12 answer positions only (the keys and
values still cover the whole prompt): nothing else reaches the loss. Interventions:
``hooks={"blocks.0.mlp.hook_post": fn}`` calls ``fn(activation)`` and continues with what it
returns; ``cache`` collects activations under the same names.

Initialisation follows Flax's defaults, which the recipe depends on (docs/adder.md): embeddings
normal with std 1/sqrt(d_model), dense kernels truncated normal (2 std) with std 1/sqrt(fan_in),
norms' weights 1, biases 0.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import einsum

from grokviz.core.digits_config import DigitsConfig
from grokviz.core.digits_tasks import ANSWER_LEN, PROMPT_LEN
from grokviz.core.forward import Hooks
from grokviz.core.forward import hook as _hook  # one intervention/cache rule for both families
from grokviz.core.params import Params

EPS = 1e-6  # Flax LayerNorm's default


def param_shapes(cfg: DigitsConfig) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every stored tensor, in a checkpoint's canonical order."""
    d, h, dh, m = cfg.d_model, cfg.n_heads, cfg.d_head, cfg.d_mlp
    shapes: dict[str, tuple[int, ...]] = {"embed.W_E": (cfg.d_vocab, d), "pos_embed.W_pos": (cfg.n_ctx, d)}

    def norm(prefix: str) -> None:
        shapes[f"{prefix}.w"] = (d,)
        if cfg.normalization == "LN":
            shapes[f"{prefix}.b"] = (d,)

    for layer in range(cfg.n_layers):
        block = f"blocks.{layer}"
        norm(f"{block}.ln1")
        for name in ("W_Q", "W_K", "W_V"):
            shapes[f"{block}.attn.{name}"] = (h, d, dh)
        shapes[f"{block}.attn.W_O"] = (h, dh, d)
        norm(f"{block}.ln2")
        shapes[f"{block}.mlp.W_in"] = (d, m)
        if cfg.mlp_bias == "yes":
            shapes[f"{block}.mlp.b_in"] = (m,)
        shapes[f"{block}.mlp.W_out"] = (m, d)
        if cfg.mlp_bias == "yes":
            shapes[f"{block}.mlp.b_out"] = (d,)
    norm("ln_final")
    if not cfg.tied:
        shapes["unembed.W_U"] = (d, cfg.d_vocab)
    return shapes


def _truncated_normal(shape: tuple[int, ...], std: float, generator: torch.Generator) -> torch.Tensor:
    """jax.nn.initializers.truncated_normal as variance_scaling uses it: a standard normal cut at
    +-2, rescaled so the cut distribution has standard deviation ``std``."""
    low, high = (1 + math.erf(-2 / math.sqrt(2))) / 2, (1 + math.erf(2 / math.sqrt(2))) / 2
    uniform = torch.rand(shape, generator=generator, dtype=torch.float64) * (high - low) + low
    standard = math.sqrt(2) * torch.erfinv(2 * uniform - 1)
    return (standard * std / 0.87962566103423978).float()


def init_params(cfg: DigitsConfig, device: torch.device | str = "cpu") -> Params:
    """Flax-default initialisation from ``cfg.seed`` (see the module docstring)."""
    generator = torch.Generator().manual_seed(cfg.seed)
    params: Params = {}
    fan_in = {"W_Q": cfg.d_model, "W_K": cfg.d_model, "W_V": cfg.d_model, "W_O": cfg.d_model, "W_in": cfg.d_model}
    fan_in |= {"W_out": cfg.d_mlp, "W_U": cfg.d_model}
    for name, shape in param_shapes(cfg).items():
        leaf = name.split(".")[-1]
        if leaf in ("W_E", "W_pos"):
            params[name] = torch.randn(shape, generator=generator) / math.sqrt(cfg.d_model)
        elif leaf == "w":
            params[name] = torch.ones(shape)
        elif leaf.startswith("b"):
            params[name] = torch.zeros(shape)
        else:
            params[name] = _truncated_normal(shape, 1 / math.sqrt(fan_in[leaf]), generator)
    return {name: t.to(device) for name, t in params.items()}


def _norm(params: Params, prefix: str, x: torch.Tensor) -> torch.Tensor:
    """LayerNorm (``prefix.b`` stored) or RMSNorm over the last axis."""
    weight, bias = params[f"{prefix}.w"], params.get(f"{prefix}.b")
    if bias is not None:
        return F.layer_norm(x, (x.shape[-1],), weight, bias, eps=EPS)
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + EPS) * weight


def n_layers_of(params: Params) -> int:
    return 1 + max(int(name.split(".")[1]) for name in params if name.startswith("blocks."))


def unembed_matrix(params: Params) -> torch.Tensor:
    """[d_model, d_vocab]: ``unembed.W_U``, or ``W_E^T`` for a tied model."""
    return params["unembed.W_U"] if "unembed.W_U" in params else params["embed.W_E"].T


def forward(
    params: Params,
    tokens: torch.Tensor,
    *,
    answer_only: bool = False,
    vocab_first: bool = False,
    tiny_attention: bool = False,
    hooks: Hooks | None = None,
    cache: dict | None = None,
) -> torch.Tensor:
    """tokens [batch, pos] -> logits [batch, pos, d_vocab] (``answer_only``: [batch, 12, d_vocab]
    at the positions that predict answer tokens, which needs the 33-token input).

    ``vocab_first``: the same logits laid out [d_vocab, batch, pos], for the ensemble's loss: there
    the softmax over the 14 tokens runs across rows of examples, which a CPU vectorises (over rows
    of 14 numbers it does not: the float64 loss of 8 members, forward and backward, 4x faster).

    ``tiny_attention``: the attention's scores, softmax and mixing by the C kernel of
    ``grokviz.kernels.tiny_attention`` (the same function to float rounding; the compiled
    ensemble's step uses it). It forms no ``hook_attn_scores`` or ``hook_pattern``, so it takes no
    hooks or cache."""
    if tiny_attention and (hooks or cache is not None):
        raise ValueError("tiny_attention forms no attention pattern to hook or cache: leave it off to read one")
    batch, n_pos = tokens.shape
    resid = _hook(hooks, cache, "hook_embed", params["embed.W_E"][tokens])  # [batch, pos, d_model]
    resid = resid + _hook(hooks, cache, "hook_pos_embed", params["pos_embed.W_pos"][:n_pos])
    n_layers = n_layers_of(params)
    for layer in range(n_layers):
        # The last block of the fast path keeps the answer positions after attention.
        queries = slice(PROMPT_LEN - 1, PROMPT_LEN - 1 + ANSWER_LEN) if answer_only and layer == n_layers - 1 else None
        resid = _block(params, layer, resid, queries, tiny_attention, hooks, cache)
    normed = _hook(hooks, cache, "ln_final.hook_normalized", _norm(params, "ln_final", resid))
    if vocab_first:
        logits = einsum(normed, unembed_matrix(params), "b q d, d v -> v b q")  # [d_vocab, batch, pos]
    else:
        logits = normed @ unembed_matrix(params)  # [batch, pos, d_vocab]
    return _hook(hooks, cache, "hook_logits", logits)


def _block(
    params: Params,
    layer: int,
    resid: torch.Tensor,
    queries: slice | None,
    tiny_attention: bool,
    hooks: Hooks | None,
    cache: dict | None,
) -> torch.Tensor:
    """One pre-norm block; ``queries`` restricts the query positions (and everything after attention)."""
    p = f"blocks.{layer}"
    resid = _hook(hooks, cache, f"{p}.hook_resid_pre", resid)  # [batch, pos, d_model]
    x = _hook(hooks, cache, f"{p}.ln1.hook_normalized", _norm(params, f"{p}.ln1", resid))
    x_query = x if queries is None else x[:, queries]  # [batch, query, d_model]
    q = _hook(hooks, cache, f"{p}.attn.hook_q", einsum(x_query, params[f"{p}.attn.W_Q"], "b q d, h d e -> b q h e"))
    k = _hook(hooks, cache, f"{p}.attn.hook_k", einsum(x, params[f"{p}.attn.W_K"], "b k d, h d e -> b k h e"))
    v = _hook(hooks, cache, f"{p}.attn.hook_v", einsum(x, params[f"{p}.attn.W_V"], "b k d, h d e -> b k h e"))
    first = 0 if queries is None else queries.start
    if tiny_attention:
        from grokviz.kernels.tiny_attention import causal_attention

        z = causal_attention(q, k, v, first)  # [batch, query, head, d_head]
    else:
        z = _hook(hooks, cache, f"{p}.attn.hook_z", _attention_z(q, k, v, first, hooks, cache, f"{p}.attn"))
    attn_out = einsum(z, params[f"{p}.attn.W_O"], "b q h e, h e d -> b q d")
    attn_out = _hook(hooks, cache, f"{p}.hook_attn_out", attn_out)
    resid_query = resid if queries is None else resid[:, queries]
    resid_mid = _hook(hooks, cache, f"{p}.hook_resid_mid", resid_query + attn_out)
    x = _hook(hooks, cache, f"{p}.ln2.hook_normalized", _norm(params, f"{p}.ln2", resid_mid))
    pre = x @ params[f"{p}.mlp.W_in"]  # [batch, query, d_mlp]
    if f"{p}.mlp.b_in" in params:
        pre = pre + params[f"{p}.mlp.b_in"]
    pre = _hook(hooks, cache, f"{p}.mlp.hook_pre", pre)
    post = _hook(hooks, cache, f"{p}.mlp.hook_post", F.gelu(pre, approximate="tanh"))
    mlp_out = post @ params[f"{p}.mlp.W_out"]
    if f"{p}.mlp.b_out" in params:
        mlp_out = mlp_out + params[f"{p}.mlp.b_out"]
    mlp_out = _hook(hooks, cache, f"{p}.hook_mlp_out", mlp_out)
    return _hook(hooks, cache, f"{p}.hook_resid_post", resid_mid + mlp_out)


def _attention_z(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, first: int, hooks: Hooks | None, cache: dict | None, prefix: str
) -> torch.Tensor:
    """Causal attention: q [batch, query, head, d_head] (the first query at key position ``first``),
    k and v [batch, key, head, d_head] -> z like q, with the scores' and pattern's hooks (under
    ``prefix``, such as ``blocks.0.attn``)."""
    scores = einsum(q, k, "b q h e, b k h e -> b h q k") / math.sqrt(q.shape[-1])  # [batch, head, query, key]
    query_pos = torch.arange(first, first + q.shape[1], device=q.device)
    key_pos = torch.arange(k.shape[1], device=q.device)
    causal = key_pos.unsqueeze(0) > query_pos.unsqueeze(1)  # [query, key]: True = in the future
    scores = _hook(hooks, cache, f"{prefix}.hook_attn_scores", scores.masked_fill(causal, float("-inf")))
    pattern = _hook(hooks, cache, f"{prefix}.hook_pattern", scores.softmax(dim=-1))
    return einsum(pattern, v, "b h q k, b k h e -> b q h e")


@torch.no_grad()
def greedy_decode(params: Params, prompt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Prompts [batch, 22] -> (answer tokens [batch, 12], probability of each chosen token [batch, 12]).

    Genuinely autoregressive: each step feeds back the model's own previous tokens (which a
    teacher-forced score does not).
    """
    tokens = prompt
    chosen, probs = [], []
    for _ in range(ANSWER_LEN):
        logits = forward(params, tokens)[:, -1]  # [batch, d_vocab]
        p = logits.double().softmax(-1)
        best = p.argmax(-1)
        chosen.append(best)
        probs.append(p.gather(-1, best.unsqueeze(-1)).squeeze(-1))
        tokens = torch.cat([tokens, best.unsqueeze(-1)], dim=1)
    return torch.stack(chosen, dim=1), torch.stack(probs, dim=1)


def answer_scores(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Teacher-forced scores of answer logits [batch, 12, d_vocab] against labels [batch, 12]:
    (float64 mean loss, exact match, accuracy per answer position [12]) as device tensors.

    Exact match here (all 12 tokens right) is the same as greedy decoding's: with every token right,
    greedy decoding feeds back the true prefix at each step; at the first wrong token it fails too.
    """
    loss = F.cross_entropy(logits.double().reshape(-1, logits.shape[-1]), labels.reshape(-1))
    right = logits.argmax(-1) == labels  # [batch, 12]
    return loss, right.all(-1).double().mean(), right.double().mean(0)
