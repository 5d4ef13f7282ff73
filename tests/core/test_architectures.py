"""Every architecture option against PyTorch's own ``nn.TransformerEncoder`` (float64, eval mode),
the fast path against the general forward, and the PyTorch encoder's state dicts through the importer.

The PyTorch model here is written from PyTorch's documentation, independently of grokviz's
converter: our parameters are loaded into real ``nn`` modules and their logits compared on all
pairs, as micrograd checks its engine against PyTorch.
"""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from grokviz.core.architecture import Architecture
from grokviz.core.config import Config
from grokviz.core.fast_path import forward_last
from grokviz.core.forward import forward
from grokviz.core.params import init_params, param_shapes
from grokviz.errors import GrokvizError
from grokviz.interop.torch_encoder import import_torch_encoder
from grokviz.training.single import train

SMALL = dict(p=13, d_model=16, n_heads=2, d_head=8, d_mlp=32, frac_train=0.5)
TORCH_ENCODER = dict(layernorm="post", biases="all", pos_embed="none", attention="bidirectional")
# One option at a time away from the reference, then the PyTorch encoder's combination and a pre-LN one.
OPTIONS = [
    {},
    {"layernorm": "pre"},
    {"layernorm": "post"},
    {"biases": "all"},
    {"biases": "none"},
    {"pos_embed": "none"},
    {"attention": "bidirectional"},
    {"unembed": "tied"},
    {"activation": "gelu"},
    {"dropout": 0.1},
    TORCH_ENCODER,
    {"layernorm": "pre", "biases": "all", "activation": "gelu", "unembed": "tied"},
]


class TorchModel(nn.Module):
    """Embedding (+ learned positions) -> one nn.TransformerEncoderLayer -> nn.Linear on the last position."""

    def __init__(self, cfg: Config):
        super().__init__()
        arch, d = cfg.architecture, cfg.d_model
        self.cfg = cfg
        self.embedding = nn.Embedding(cfg.d_vocab, d)
        self.pos = nn.Parameter(torch.zeros(cfg.n_ctx, d)) if arch.pos_embed == "learned" else None
        layer = nn.TransformerEncoderLayer(
            d, cfg.n_heads, cfg.d_mlp, dropout=cfg.dropout, activation=arch.activation,
            batch_first=True, norm_first=arch.layernorm == "pre",
        )  # fmt: skip
        norm = nn.LayerNorm(d) if arch.layernorm == "pre" else None
        self.transformer_encoder = nn.TransformerEncoder(layer, 1, norm=norm, enable_nested_tensor=False)
        if arch.layernorm == "none":  # the paper's block: the residual sums are not normalised
            copy = self.transformer_encoder.layers[0]
            copy.norm1, copy.norm2 = nn.Identity(), nn.Identity()
        self.output_head = nn.Linear(d, cfg.p)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:  # [batch, 3] -> [batch, p]
        x = self.embedding(tokens)
        if self.pos is not None:
            x = x + self.pos
        mask = None
        if self.cfg.attention == "causal":
            mask = nn.Transformer.generate_square_subsequent_mask(tokens.shape[1], dtype=x.dtype)
        # PyTorch's fused inference path reads norm1.eps; without norms, take its Python path.
        fused = torch.backends.mha.get_fastpath_enabled()
        torch.backends.mha.set_fastpath_enabled(fused and self.cfg.layernorm != "none")
        try:
            return self.output_head(self.transformer_encoder(x, mask=mask)[:, -1])
        finally:
            torch.backends.mha.set_fastpath_enabled(fused)


def load_into_torch(params: dict[str, torch.Tensor], cfg: Config) -> TorchModel:
    """Our params in PyTorch's modules (absent biases as zeros), float64, eval mode."""
    model = TorchModel(cfg).double().eval()
    layer = model.transformer_encoder.layers[0]
    h, dh, d = cfg.n_heads, cfg.d_head, cfg.d_model
    get = lambda name, shape: params[name].double() if name in params else torch.zeros(shape, dtype=torch.float64)  # noqa: E731
    with torch.no_grad():
        model.embedding.weight.copy_(params["embed.W_E"])
        if model.pos is not None:
            model.pos.copy_(params["pos_embed.W_pos"])
        # PyTorch: q = x @ in_proj[:d].T, head h uses output features h*dh .. (h+1)*dh.
        layer.self_attn.in_proj_weight.copy_(
            torch.cat([params[f"blocks.0.attn.W_{n}"].permute(0, 2, 1).reshape(h * dh, d) for n in "QKV"])
        )
        layer.self_attn.in_proj_bias.copy_(torch.cat([get(f"blocks.0.attn.b_{n}", (h, dh)).reshape(-1) for n in "QKV"]))
        layer.self_attn.out_proj.weight.copy_(params["blocks.0.attn.W_O"].reshape(h * dh, d).T)
        layer.self_attn.out_proj.bias.copy_(get("blocks.0.attn.b_O", (d,)))
        layer.linear1.weight.copy_(params["blocks.0.mlp.W_in"].T)
        layer.linear1.bias.copy_(get("blocks.0.mlp.b_in", (cfg.d_mlp,)))
        layer.linear2.weight.copy_(params["blocks.0.mlp.W_out"].T)
        layer.linear2.bias.copy_(get("blocks.0.mlp.b_out", (d,)))
        if cfg.layernorm != "none":
            for ours, theirs in (("ln1", layer.norm1), ("ln2", layer.norm2)):
                theirs.weight.copy_(params[f"blocks.0.{ours}.w"]), theirs.bias.copy_(params[f"blocks.0.{ours}.b"])
        if cfg.layernorm == "pre":
            model.transformer_encoder.norm.weight.copy_(params["ln_final.w"])
            model.transformer_encoder.norm.bias.copy_(params["ln_final.b"])
        W_U = params["unembed.W_U"] if cfg.unembed == "untied" else params["embed.W_E"][: cfg.p].T
        model.output_head.weight.copy_(W_U.T)
        model.output_head.bias.copy_(get("unembed.b_U", (cfg.p,)))
    return model


def all_tokens(p: int) -> torch.Tensor:
    a, b = torch.arange(p).repeat_interleave(p), torch.arange(p).repeat(p)
    return torch.stack([a, b, torch.full_like(a, p)], dim=1)  # [p*p, 3]


def random_params(cfg: Config) -> dict[str, torch.Tensor]:
    """float64 weights with non-trivial biases and norm weights, so every term matters."""
    generator = torch.Generator().manual_seed(7)
    return {k: (v + 0.3 * torch.randn(v.shape, generator=generator)).double() for k, v in init_params(cfg).items()}


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "reference")
def test_trained_model_equals_pytorch_encoder(tmp_path, options) -> None:
    cfg = Config(**SMALL, steps=20, log_every=10, **options)
    run = train(cfg, tmp_path / "run", progress=False, threads=1)
    params = {k: v.double() for k, v in run.load(20).items()}
    assert set(params) == set(param_shapes(cfg))
    tokens = all_tokens(cfg.p)
    theirs = load_into_torch(params, cfg)(tokens)
    ours_all = forward(params, tokens, arch=cfg.architecture)
    ours_last = forward_last(params, tokens[:, 0], tokens[:, 1], arch=cfg.architecture)
    torch.testing.assert_close(ours_all, theirs, rtol=0, atol=1e-10)
    torch.testing.assert_close(ours_last, theirs, rtol=0, atol=1e-10)
    # Training moved the weights away from their initialisation (the comparison is not of a blank model).
    start = {k: v.double() for k, v in run.load(0).items()}
    assert max((params[k] - start[k]).abs().max() for k in params) > 1e-3


@pytest.mark.parametrize(
    "layernorm,biases,pos_embed,attention,unembed,activation",
    list(itertools.product(("none", "pre", "post"), ("mlp", "all", "none"), ("learned", "none"),
                           ("causal", "bidirectional"), ("untied", "tied"), ("relu", "gelu"))),
)  # fmt: skip
def test_last_position_path_equals_full_forward(layernorm, biases, pos_embed, attention, unembed, activation) -> None:
    cfg = Config(**SMALL, layernorm=layernorm, biases=biases, pos_embed=pos_embed, attention=attention,
                 unembed=unembed, activation=activation)  # fmt: skip
    params, tokens = random_params(cfg), all_tokens(cfg.p)
    full_cache, last_cache = {}, {}
    full = forward(params, tokens, cache=full_cache, arch=cfg.architecture)
    last = forward_last(params, tokens[:, 0], tokens[:, 1], cache=last_cache, arch=cfg.architecture)
    torch.testing.assert_close(last, full, rtol=0, atol=1e-11)
    # The last-position cache is the full cache's last position.
    torch.testing.assert_close(last_cache["blocks.0.mlp.hook_post"], full_cache["blocks.0.mlp.hook_post"][:, -1])
    torch.testing.assert_close(
        last_cache["blocks.0.attn.hook_pattern"], full_cache["blocks.0.attn.hook_pattern"][:, :, -1]
    )


def test_causal_and_bidirectional_differ_only_before_the_last_position() -> None:
    cfg = Config(**SMALL)
    params, tokens = random_params(cfg), all_tokens(cfg.p)
    causal, bidirectional = {}, {}
    forward(params, tokens, cache=causal, arch=Architecture(attention="causal"))
    forward(params, tokens, cache=bidirectional, arch=Architecture(attention="bidirectional"))
    pattern_c, pattern_b = causal["blocks.0.attn.hook_pattern"], bidirectional["blocks.0.attn.hook_pattern"]
    assert pattern_c[:, :, 0, 1:].abs().max() == 0  # position 0 sees only itself
    assert pattern_b[:, :, 0, 1:].min() > 0
    torch.testing.assert_close(pattern_c[:, :, -1], pattern_b[:, :, -1])


def test_reference_initialisation_is_unchanged() -> None:
    # The architecture options must not move the reference model's random draws (bundled runs,
    # and every test that pins numbers, depend on them).
    params = init_params(Config())
    assert list(params) == [
        "embed.W_E", "pos_embed.W_pos", "blocks.0.attn.W_Q", "blocks.0.attn.W_K", "blocks.0.attn.W_V",
        "blocks.0.attn.W_O", "blocks.0.mlp.W_in", "blocks.0.mlp.b_in", "blocks.0.mlp.W_out", "blocks.0.mlp.b_out",
        "unembed.W_U",
    ]  # fmt: skip
    assert float(params["embed.W_E"][0, 0]) == pytest.approx(-0.0995111, abs=1e-6)
    assert float(params["unembed.W_U"][5, 7]) == pytest.approx(-0.1703737, abs=1e-6)


# --- the PyTorch encoder's file through the importer ---------------------------------------------------------


class TorchEncoder(nn.Module):
    """The PyTorch nn.TransformerEncoder model, as its post writes it (keys embedding, transformer_encoder, output_head)."""

    def __init__(
        self, p: int, d: int = 16, nhead: int = 2, d_ff: int = 32, norm_first: bool = False, num_layers=1, **kwargs
    ):
        super().__init__()
        self.embedding = nn.Embedding(p + 1, d)
        layer = nn.TransformerEncoderLayer(d, nhead, d_ff, batch_first=True, norm_first=norm_first, **kwargs)
        norm = nn.LayerNorm(d) if norm_first else None
        self.transformer_encoder = nn.TransformerEncoder(layer, num_layers, norm=norm, enable_nested_tensor=False)
        self.output_head = nn.Linear(d, p + 1, bias=kwargs.get("bias", True))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.output_head(self.transformer_encoder(self.embedding(tokens))[:, -1])


def saved_and_imported_encoder(tmp_path, p: int, **kwargs):
    """A float64 ``TorchEncoder(p, **kwargs)`` (seed 0) with its biases and norms moved off their
    0 / 1 initialisation, saved with ``torch.save`` and imported: (the model, the import)."""
    torch.manual_seed(0)
    model = TorchEncoder(p, **kwargs).double()
    with torch.no_grad():
        for name, tensor in model.named_parameters():
            if "bias" in name or "norm" in name:
                tensor.add_(0.3 * torch.randn_like(tensor))
    path = tmp_path / "torch_encoder.pt"
    torch.save(model.state_dict(), path)
    imported = import_torch_encoder(
        path, p, n_heads=2, norm_first=kwargs.get("norm_first", False), activation=kwargs.get("activation", "relu")
    )
    return model, imported


@pytest.mark.parametrize(
    "kwargs", [{}, {"activation": "gelu"}, {"norm_first": True}, {"bias": False}], ids=["post", "gelu", "pre", "nobias"]
)
def test_imported_encoder_equals_pytorch(tmp_path, kwargs) -> None:
    p = 11
    model, imported = saved_and_imported_encoder(tmp_path, p, **kwargs)
    (step, params), cfg = imported.checkpoints[0], imported.config
    assert step == 0 and params["embed.W_E"].dtype == torch.float64
    tokens = all_tokens(p)
    model.eval()
    with torch.no_grad():  # eval mode, no grad: PyTorch may take its fused fast path
        theirs = model(tokens)[:, :p]  # the '=' class dropped
    ours = forward_last(params, tokens[:, 0], tokens[:, 1], arch=cfg.architecture)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-10)
    torch.testing.assert_close(forward(params, tokens, arch=cfg.architecture), theirs, rtol=0, atol=1e-10)


def test_importer_refuses_what_it_cannot_read(tmp_path) -> None:
    p = 11
    state = TorchEncoder(p).state_dict()

    def refused(state_dict, match: str, **kwargs) -> None:
        path = tmp_path / "bad.pt"
        torch.save(state_dict, path)
        with pytest.raises(GrokvizError, match=match):
            import_torch_encoder(path, kwargs.pop("p", p), n_heads=2, **kwargs)

    # 2 to 4 layers are imported (tests/interop/test_layers.py)
    refused(TorchEncoder(p, num_layers=5).state_dict(), "has 5 encoder layers; grokviz's models have 1 to 4")
    refused({k: v for k, v in state.items() if "linear2.weight" not in k}, "missing keys")
    refused({**state, "transformer_encoder.norm.weight": torch.ones(16)}, "norm order cannot be told")
    refused(state, "needs the encoder's final norm", norm_first=True)
    refused({**state, "pos_embedding.weight": torch.zeros(3, 16)}, "unknown keys")
    refused(state, "Is --p 11 meant", p=13)
    refused({k: v for k, v in state.items() if k != "output_head.bias"}, "some biases are missing")
    with pytest.raises(GrokvizError, match="not divisible by --n-heads"):
        path = tmp_path / "ok.pt"
        torch.save(state, path)
        import_torch_encoder(path, p, n_heads=3)


def test_convert_command_writes_a_run_that_analyze_opens(tmp_path, capsys) -> None:
    from grokviz.commands.analyze import main as analyze
    from grokviz.commands.convert import main as convert

    p = 11
    torch.manual_seed(1)
    path = tmp_path / "torch_encoder.pt"
    torch.save(TorchEncoder(p).state_dict(), path)
    assert convert(["torch-encoder", str(path), "--p", str(p), "--n-heads", "2", "--out", str(tmp_path / "run")]) == 0
    printed = capsys.readouterr().out
    assert "post-LayerNorm, biases: all, no positional embedding, bidirectional attention" in printed
    assert analyze([str(tmp_path / "run"), "--json"]) == 0
    import json

    summary = json.loads(capsys.readouterr().out)
    assert summary["p"] == p and 0 <= summary["all_accuracy"] <= 1 and summary["all_loss"] > 0
    # TransformerLens cannot express post-LN: refused in one line naming the run, nothing written.
    out = tmp_path / "tl.safetensors"
    assert convert(["export-tl", str(tmp_path / "run"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {tmp_path / 'run'}: this run is post-LayerNorm") and not out.exists()
