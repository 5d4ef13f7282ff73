"""Models of 1 to 4 blocks: the forward against a reference written separately, the fast path's
'=' position contract, parameter names, and the config's refusals (issue: depth and minibatches)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from grokviz.core.config import Config, ConfigError
from grokviz.core.fast_path import all_pairs, forward_all_pairs, forward_last
from grokviz.core.forward import forward
from grokviz.core.groups_config import GroupsConfig
from grokviz.core.params import init_params, n_layers_of, n_params, param_shapes
from grokviz.core.recipes import RECIPES
from grokviz.interop.progress_measures import REFERENCE_KEYS

ARCHS = [
    {},
    {"layernorm": "pre", "biases": "all"},
    {"layernorm": "post", "attention": "bidirectional", "pos_embed": "none", "biases": "none"},
    {"unembed": "tied", "activation": "gelu"},
]


def reference_logits(params: dict, tokens: torch.Tensor, cfg: Config) -> torch.Tensor:
    """The last position's logits, written plainly, head by head (no einsum, no fast path, no hooks)."""
    arch = cfg.architecture
    get = lambda name: params.get(name)  # noqa: E731
    ln = lambda x, name: F.layer_norm(x, (x.shape[-1],), params[f"{name}.w"], params[f"{name}.b"], eps=1e-5)  # noqa: E731
    plus = lambda x, name: x if get(name) is None else x + get(name)  # noqa: E731
    x = params["embed.W_E"][tokens]  # [batch, pos, d_model]
    if "pos_embed.W_pos" in params:
        x = x + params["pos_embed.W_pos"][: tokens.shape[1]]
    n = tokens.shape[1]
    for layer in range(cfg.n_layers):
        blk = f"blocks.{layer}"
        h_in = ln(x, f"{blk}.ln1") if arch.layernorm == "pre" else x
        out = torch.zeros_like(x)
        for head in range(cfg.n_heads):
            q = h_in @ params[f"{blk}.attn.W_Q"][head]
            k = h_in @ params[f"{blk}.attn.W_K"][head]
            v = h_in @ params[f"{blk}.attn.W_V"][head]
            if get(f"{blk}.attn.b_Q") is not None:
                q, k, v = (t + params[f"{blk}.attn.b_{c}"][head] for t, c in zip((q, k, v), "QKV"))
            scores = q @ k.transpose(1, 2) / math.sqrt(cfg.d_head)  # [batch, q_pos, k_pos]
            if arch.attention == "causal":
                scores = scores.masked_fill(torch.ones(n, n, dtype=torch.bool).triu(1), float("-inf"))
            out = out + (scores.softmax(-1) @ v) @ params[f"{blk}.attn.W_O"][head]
        out = plus(out, f"{blk}.attn.b_O")
        x = ln(x + out, f"{blk}.ln1") if arch.layernorm == "post" else x + out
        m_in = ln(x, f"{blk}.ln2") if arch.layernorm == "pre" else x
        hidden = plus(m_in @ params[f"{blk}.mlp.W_in"], f"{blk}.mlp.b_in")
        hidden = torch.relu(hidden) if arch.activation == "relu" else F.gelu(hidden)
        mlp = plus(hidden @ params[f"{blk}.mlp.W_out"], f"{blk}.mlp.b_out")
        x = ln(x + mlp, f"{blk}.ln2") if arch.layernorm == "post" else x + mlp
    if arch.layernorm == "pre":
        x = ln(x, "ln_final")
    W_U = params["unembed.W_U"] if "unembed.W_U" in params else params["embed.W_E"][:-1].T
    return plus(x[:, -1] @ W_U, "unembed.b_U")


def tiny(n_layers: int, **arch) -> Config:
    return Config(p=11, d_model=16, n_heads=2, d_head=8, d_mlp=24, n_layers=n_layers, **arch)


def randomised(cfg: Config) -> dict:
    """Initial weights with every norm weight and bias moved off 1 and 0, so each one matters."""
    gen = torch.Generator().manual_seed(1)
    return {k: v + 0.3 * torch.randn(v.shape, generator=gen) for k, v in init_params(cfg).items()}


@pytest.mark.parametrize("arch", ARCHS, ids=lambda a: ",".join(f"{k}={v}" for k, v in a.items()) or "reference")
@pytest.mark.parametrize("n_layers", [1, 2, 4])
def test_forward_and_fast_path_equal_the_reference_for_every_depth_and_architecture(n_layers, arch) -> None:
    cfg = tiny(n_layers, **arch)
    # float64: four blocks without LayerNorm reach logits of thousands, where float32's order of
    # summation alone moves them by 1e-2.
    params = {name: t.double() for name, t in randomised(cfg).items()}
    a, b = all_pairs(cfg.p)
    tokens = torch.stack([a, b, torch.full_like(a, cfg.p)], dim=1)
    expected = reference_logits(params, tokens, cfg)
    torch.testing.assert_close(forward(params, tokens, cfg.architecture), expected, atol=1e-9, rtol=1e-9)
    torch.testing.assert_close(
        forward(params, tokens, cfg.architecture, last_only=True), expected, atol=1e-4, rtol=1e-4
    )
    torch.testing.assert_close(forward_last(params, a, b, arch=cfg.architecture), expected, atol=1e-9, rtol=1e-9)


def test_the_fast_path_caches_every_block_at_the_equals_position() -> None:
    cfg = tiny(3)
    params = randomised(cfg)
    cache, full = {}, {}
    forward_all_pairs(params, cache=cache, arch=cfg.architecture)
    a, b = all_pairs(cfg.p)
    forward(params, torch.stack([a, b, torch.full_like(a, cfg.p)], dim=1), cfg.architecture, cache=full)
    for layer in range(3):
        blk = f"blocks.{layer}"
        assert cache[f"{blk}.mlp.hook_post"].shape == (cfg.p**2, cfg.d_mlp)
        assert cache[f"{blk}.attn.hook_pattern"].shape == (cfg.p**2, cfg.n_heads, 3)
        torch.testing.assert_close(cache[f"{blk}.mlp.hook_post"], full[f"{blk}.mlp.hook_post"][:, -1])
        torch.testing.assert_close(cache[f"{blk}.attn.hook_pattern"], full[f"{blk}.attn.hook_pattern"][:, :, -1])
        torch.testing.assert_close(cache[f"{blk}.hook_resid_post"], full[f"{blk}.hook_resid_post"][:, -1])


def test_a_hook_on_an_earlier_block_changes_its_equals_position_only() -> None:
    cfg = tiny(2)
    params = randomised(cfg)
    a, b = all_pairs(cfg.p)
    tokens = torch.stack([a, b, torch.full_like(a, cfg.p)], dim=1)
    zero_first = lambda act: act * torch.arange(cfg.d_mlp).ge(5)  # noqa: E731  neurons 0..4 off

    def at_equals_only(act: torch.Tensor) -> torch.Tensor:  # [batch, pos, d_mlp]
        return torch.cat([act[:, :-1], zero_first(act[:, -1:])], dim=1)

    got = forward_last(params, a, b, hooks={"blocks.0.mlp.hook_post": zero_first}, arch=cfg.architecture)
    expected = forward(params, tokens, cfg.architecture, hooks={"blocks.0.mlp.hook_post": at_equals_only})
    torch.testing.assert_close(got, expected)
    assert not torch.allclose(got, forward_last(params, a, b, arch=cfg.architecture))


def test_one_layer_keeps_its_tensors_order_and_initialisation() -> None:
    cfg = Config()
    # The paper's layout, in its order: what every 1-layer reference checkpoint stores.
    assert tuple(param_shapes(cfg)) == REFERENCE_KEYS
    two = init_params(cfg.replace(n_layers=2))
    one = init_params(cfg)
    assert n_layers_of(two) == 2 and n_layers_of(one) == 1
    # The second block's tensors are drawn after the first's: everything before them is unchanged.
    for name in ("embed.W_E", "pos_embed.W_pos", "blocks.0.attn.W_Q", "blocks.0.mlp.W_out"):
        assert torch.equal(one[name], two[name])


def test_power2022_recipe_sizes_and_batch() -> None:
    cfg = RECIPES["power2022"].apply(Config(task="div", frac_train=0.5))
    assert (cfg.p, cfg.n_layers, cfg.d_model, cfg.n_heads, cfg.d_mlp, cfg.batch_size) == (97, 2, 128, 4, 512, 512)
    # 2 blocks of 4 * 128^2 attention + 2 * 128 * 512 MLP weights + 640 biases, embeddings and unembedding.
    assert (
        n_params(param_shapes(cfg)) == 98 * 128 + 3 * 128 + 2 * (4 * 128 * 128 + 2 * 128 * 512 + 512 + 128) + 128 * 97
    )
    small = RECIPES["power2022"].apply(Config(p=23, frac_train=0.5), keep=["p"])
    assert small.batch_size == small.train_size() // 2 == 132  # half the training set when that is below 512
    kept = RECIPES["power2022"].apply(Config(lr=3e-4, batch_size=64), keep=["lr", "batch_size"])
    assert (kept.lr, kept.batch_size, kept.n_layers) == (3e-4, 64, 2)


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"n_layers": 0}, "n_layers", "between 1 and 4"),
        ({"n_layers": 9}, "n_layers", "between 1 and 4"),
        ({"batch_size": 0}, "batch_size", "at least 1"),
        ({"batch_size": 3831}, "batch_size", "above the training set's 3830 pairs; give 1 to 3830"),
        ({"n_layers": 2, "dropout": 0.1}, "dropout", "one layer only"),
    ],
)
def test_bad_depth_and_batch_are_refused_in_words(changes, field, words) -> None:
    with pytest.raises(ConfigError) as info:
        Config(**changes)
    assert f"{field}=" in str(info.value) and words in str(info.value)


def test_a_group_run_has_one_layer() -> None:
    with pytest.raises(ConfigError, match="n_layers=2 must be 1 for a group run"):
        GroupsConfig(group="S3", n_layers=2)
    assert GroupsConfig(group="S3", batch_size=10).batch_size == 10


@pytest.mark.parametrize(
    "arch", ARCHS[:2] + [{"layernorm": "post", "pos_embed": "none"}], ids=["reference", "pre", "post"]
)
def test_the_causal_training_path_has_the_definitions_gradients(arch) -> None:
    """The N-block training forward (position 0 as a p-row table) against ``forward(last_only=True)``:
    the same logits and the same gradient of the loss, in float64."""
    cfg = tiny(3, **arch)
    params = {name: t.double().requires_grad_(True) for name, t in randomised(cfg).items()}
    gen = torch.Generator().manual_seed(2)
    a, b = torch.randint(0, cfg.p, (40,), generator=gen), torch.randint(0, cfg.p, (40,), generator=gen)
    labels = (a + b) % cfg.p
    tokens = torch.stack([a, b, torch.full_like(a, cfg.p)], dim=1)
    fast = forward_last(params, a, b, arch=cfg.architecture)
    slow = forward(params, tokens, cfg.architecture, last_only=True)
    torch.testing.assert_close(fast, slow, atol=1e-10, rtol=1e-10)
    names = list(params)
    g_fast = torch.autograd.grad(F.cross_entropy(fast, labels), [params[n] for n in names])
    g_slow = torch.autograd.grad(F.cross_entropy(slow, labels), [params[n] for n in names])
    for name, x, y in zip(names, g_fast, g_slow):
        torch.testing.assert_close(x, y, atol=1e-10, rtol=1e-9, msg=name)


def test_minibatches_are_drawn_on_the_cpu_whatever_the_device() -> None:
    """The batches come from a CPU generator and are moved: the same on every device (CUDA's
    generator is another RNG), so a run resumed elsewhere or a GPU ensemble member draws them too."""
    from grokviz.training.batches import BatchDraw

    cfg = Config(p=23, batch_size=16)
    draw = BatchDraw(cfg, cfg.train_size(), torch.device("cpu"))
    rows = draw.at(7)
    assert rows.shape == (16,) and len(set(rows.tolist())) == 16 and rows.max() < cfg.train_size()
    assert torch.equal(rows, draw.at(7)) and not torch.equal(rows, draw.at(8))
    if torch.cuda.is_available():
        assert torch.equal(BatchDraw(cfg, cfg.train_size(), torch.device("cuda")).at(7).cpu(), rows)


def test_dropout_masks_on_a_deeper_model_are_refused() -> None:
    cfg = tiny(2)
    params = init_params(cfg)
    a, b = all_pairs(cfg.p)
    with pytest.raises(ValueError, match="1-layer model"):
        forward_last(params, a, b, arch=cfg.architecture, dropout={})
