"""export-tl for the architecture options: what TransformerLens can express is written (checked
against TransformerLens 3.x itself when it is installed), post-LN is refused in words."""

from __future__ import annotations

import pytest
import torch

from grokviz.core.config import Config
from grokviz.core.fast_path import forward_last
from grokviz.core.params import init_params
from grokviz.errors import GrokvizError
from grokviz.interop.transformer_lens import to_transformer_lens

SMALL = dict(p=13, d_model=16, n_heads=2, d_head=8, d_mlp=32)
EXPRESSIBLE = [
    {},
    {"layernorm": "pre", "biases": "all", "activation": "gelu", "unembed": "tied"},
    {"pos_embed": "none", "attention": "bidirectional", "biases": "none"},
]


def weights(cfg: Config) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return {k: v + 0.2 * torch.randn(v.shape, generator=generator) for k, v in init_params(cfg).items()}


def test_post_layernorm_is_refused_in_words() -> None:
    cfg = Config(**SMALL, layernorm="post")
    with pytest.raises(GrokvizError, match="post-LayerNorm.*cannot express this model"):
        to_transformer_lens(weights(cfg), cfg)


@pytest.mark.parametrize("options", EXPRESSIBLE, ids=["reference", "pre-ln", "no-pos"])
def test_export_config_and_tensors(options) -> None:
    cfg = Config(**SMALL, **options)
    tl_config, state = to_transformer_lens(weights(cfg), cfg)
    arch = cfg.architecture
    assert tl_config["normalization_type"] == ("LN" if arch.layernorm == "pre" else None)
    assert (tl_config["act_fn"], tl_config["attention_dir"]) == (arch.activation, arch.attention)
    assert state["unembed.W_U"].shape == (16, 13) and state["pos_embed.W_pos"].shape == (3, 16)
    mask = state["blocks.0.attn.mask"]
    assert mask.all() if arch.attention == "bidirectional" else torch.equal(mask, torch.ones(3, 3).tril().bool())
    if arch.layernorm == "pre":
        assert {"blocks.0.ln1.w", "blocks.0.ln2.b", "ln_final.w"} <= set(state)


@pytest.mark.parametrize("options", EXPRESSIBLE, ids=["reference", "pre-ln", "no-pos"])
def test_transformer_lens_computes_the_same_logits(options, transformer_lens_3) -> None:
    HookedTransformer, HookedTransformerConfig = (
        transformer_lens_3.HookedTransformer,
        transformer_lens_3.HookedTransformerConfig,
    )

    cfg = Config(**SMALL, **options)
    params = weights(cfg)
    tl_config, state = to_transformer_lens(params, cfg)
    model = HookedTransformer(HookedTransformerConfig(**tl_config))
    model.load_state_dict(state, strict=True)
    a, b = torch.arange(13).repeat_interleave(13), torch.arange(13).repeat(13)
    with torch.no_grad():
        theirs = model(torch.stack([a, b, torch.full_like(a, 13)], 1))[:, -1]
    torch.testing.assert_close(forward_last(params, a, b, arch=cfg.architecture), theirs, rtol=0, atol=2e-5)
