"""The model against an independent implementation, the fast path against the full forward,
and our AdamW against torch.optim.AdamW."""

from __future__ import annotations

import math

import pytest
import torch

from grokviz.core.config import Config, dataset_for
from grokviz.core.fast_path import forward_last
from grokviz.core.forward import forward
from grokviz.core.params import init_params, param_shapes
from grokviz.training.optim import AdamWState, Hyper, adamw_step, learning_rate


def reference_forward(params: dict[str, torch.Tensor], tokens: torch.Tensor) -> torch.Tensor:
    """A deliberately plain re-implementation: explicit per-head loop, all positions, matmuls
    only (no einsum, no token tables). Returns logits at every position [batch, pos, vocab_out]."""
    x = params["embed.W_E"][tokens] + params["pos_embed.W_pos"][: tokens.shape[1]]  # [batch, pos, d_model]
    n_heads = params["blocks.0.attn.W_Q"].shape[0]
    n_ctx = tokens.shape[1]
    mask = torch.triu(torch.ones(n_ctx, n_ctx, dtype=torch.bool), diagonal=1)
    attn_out = torch.zeros_like(x)
    for head in range(n_heads):
        q = x @ params["blocks.0.attn.W_Q"][head]  # [batch, pos, d_head]
        k = x @ params["blocks.0.attn.W_K"][head]
        v = x @ params["blocks.0.attn.W_V"][head]
        scores = q @ k.transpose(1, 2) / math.sqrt(q.shape[-1])  # [batch, q_pos, k_pos]
        scores = scores.masked_fill(mask, -1e30)
        pattern = torch.softmax(scores, dim=-1)
        attn_out = attn_out + (pattern @ v) @ params["blocks.0.attn.W_O"][head]
    x = x + attn_out
    hidden = torch.relu(x @ params["blocks.0.mlp.W_in"] + params["blocks.0.mlp.b_in"])
    x = x + hidden @ params["blocks.0.mlp.W_out"] + params["blocks.0.mlp.b_out"]
    return x @ params["unembed.W_U"]


def trained_like_params(cfg: Config) -> dict[str, torch.Tensor]:
    """Random weights with non-zero biases and larger scale, so every term of the forward matters."""
    params = init_params(cfg)
    generator = torch.Generator().manual_seed(1)
    # float64: the implementations must agree to rounding, not merely to fp32 noise.
    return {k: (v * 3 + 0.1 * torch.randn(v.shape, generator=generator)).double() for k, v in params.items()}


@pytest.fixture
def small() -> tuple[Config, dict[str, torch.Tensor], torch.Tensor]:
    cfg = Config(p=17, d_model=32, n_heads=4, d_head=8, d_mlp=64)
    dataset = dataset_for(cfg)
    return cfg, trained_like_params(cfg), dataset.tokens


def test_params_have_transformer_lens_names_and_shapes() -> None:
    cfg = Config()
    params = init_params(cfg)
    assert {k: tuple(v.shape) for k, v in params.items()} == param_shapes(cfg)
    assert params["embed.W_E"].shape == (114, 128) and params["unembed.W_U"].shape == (128, 113)
    assert sum(v.numel() for v in params.values()) == 226_688


def test_forward_equals_per_head_reference(small) -> None:
    cfg, params, tokens = small
    expected = reference_forward(params, tokens)[:, -1]
    got = forward(params, tokens)
    assert got.shape == (cfg.p**2, cfg.p)
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10)


def test_fast_path_equals_full_forward(small) -> None:
    cfg, params, tokens = small
    full_cache: dict = {}
    fast_cache: dict = {}
    full = forward(params, tokens, cache=full_cache)
    fast = forward_last(params, tokens[:, 0], tokens[:, 1], cache=fast_cache)
    torch.testing.assert_close(fast, full, rtol=1e-10, atol=1e-10)
    # The fast cache holds position-2 activations under the same names.
    for name in (
        "blocks.0.attn.hook_z",
        "blocks.0.hook_attn_out",
        "blocks.0.hook_resid_mid",
        "blocks.0.mlp.hook_pre",
        "blocks.0.mlp.hook_post",
    ):
        torch.testing.assert_close(fast_cache[name], full_cache[name][:, -1], rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(
        fast_cache["blocks.0.attn.hook_pattern"], full_cache["blocks.0.attn.hook_pattern"][:, :, -1]
    )


def test_fast_path_gradients_equal_full_forward(small) -> None:
    cfg, params, tokens = small
    labels = (tokens[:, 0] + tokens[:, 1]) % cfg.p
    grads = []
    for fn in (lambda P: forward(P, tokens), lambda P: forward_last(P, tokens[:, 0], tokens[:, 1])):
        leaf = {k: v.clone().requires_grad_(True) for k, v in params.items()}
        loss = torch.nn.functional.cross_entropy(fn(leaf).double(), labels)
        grads.append(torch.autograd.grad(loss, list(leaf.values())))
    for name, g_full, g_fast in zip(params, *grads):
        torch.testing.assert_close(g_fast, g_full, rtol=1e-9, atol=1e-12, msg=name)


def test_causal_mask_first_position_attends_only_to_itself(small) -> None:
    _, params, tokens = small
    cache: dict = {}
    forward(params, tokens[:5], cache=cache)
    pattern = cache["blocks.0.attn.hook_pattern"]  # [batch, head, q_pos, k_pos]
    assert torch.equal(pattern[:, :, 0, 0], torch.ones_like(pattern[:, :, 0, 0]))
    assert torch.all(pattern[:, :, 1, 2] == 0)


def test_hooks_intervene_on_activations(small) -> None:
    _, params, tokens = small
    zeroed = forward_last(params, tokens[:, 0], tokens[:, 1], hooks={"blocks.0.mlp.hook_post": torch.zeros_like})
    # With no neurons the logits are the residual stream after attention (+ b_out) unembedded.
    cache: dict = {}
    forward_last(params, tokens[:, 0], tokens[:, 1], cache=cache)
    expected = (cache["blocks.0.hook_resid_mid"] + params["blocks.0.mlp.b_out"]) @ params["unembed.W_U"]
    torch.testing.assert_close(zeroed, expected)


def test_adamw_matches_torch_with_warmup() -> None:
    cfg = Config(p=13, d_model=8, n_heads=2, d_head=4, d_mlp=16, warmup_steps=3)
    ours = {k: v.clone() for k, v in init_params(cfg).items()}
    theirs = {k: v.clone().requires_grad_(True) for k, v in init_params(cfg).items()}
    optimizer = torch.optim.AdamW(
        theirs.values(), lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(cfg.beta1, cfg.beta2)
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(step / cfg.warmup_steps, 1))
    state = AdamWState.zeros_like(ours)
    generator = torch.Generator().manual_seed(0)
    for _ in range(8):
        grads = {k: torch.randn(v.shape, generator=generator) for k, v in ours.items()}
        for k, v in theirs.items():
            v.grad = grads[k].clone()
        optimizer.step()
        scheduler.step()
        adamw_step(ours, grads, state, Hyper.of(cfg))
    for k in ours:
        torch.testing.assert_close(ours[k], theirs[k].detach(), rtol=1e-6, atol=1e-7)
    assert learning_rate(cfg, 0) == 0.0 and learning_rate(cfg, 3) == cfg.lr
