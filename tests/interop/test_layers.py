"""Interop at depth (2 to 4 blocks): TransformerLens export and import, the PyTorch encoder importer, and
the refusals of files whose layer count or shapes disagree with their config.

The logits are checked against a TransformerLens ``HookedTransformer`` forward written here from its
components in plain torch (its weight layout: ``W_Q [head, d_model, d_head]``, ``W_O [head, d_head,
d_model]``, LayerNorm ``(x - mean) / sqrt(var + eps)``), independently of grokviz's forward, and
against TransformerLens 3.x itself where it is installed (``transformer_lens_3`` skips otherwise).
"""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from grokviz import interop
from grokviz.commands.convert import main as convert
from grokviz.core.config import Config
from grokviz.core.fast_path import forward_last
from grokviz.core.params import init_params
from grokviz.errors import GrokvizError
from grokviz.interop.torch_encoder import import_torch_encoder
from grokviz.storage.runs import open_run, save_checkpoint, write_run_file
from tests.core.test_architectures import TorchEncoder, saved_and_imported_encoder

SMALL = dict(p=13, d_model=16, n_heads=2, d_head=8, d_mlp=32)
ARCHITECTURES = {
    "reference": {},
    "pre-ln-gelu-biases": {"layernorm": "pre", "biases": "all", "activation": "gelu"},
    "no-pos-bidirectional-tied": {"pos_embed": "none", "attention": "bidirectional", "unembed": "tied"},
}


def weights(cfg: Config, seed: int = 0) -> dict[str, torch.Tensor]:
    """Initial weights moved off their 0 / 1 values (zero biases and unit norms would hide a mix-up); small
    enough that 4 blocks keep logits of a trained model's size (tens), where fp32 rounding stays under 1e-4."""
    generator = torch.Generator().manual_seed(seed)
    return {k: v + 0.05 * torch.randn(v.shape, generator=generator) for k, v in init_params(cfg).items()}


def all_tokens(p: int) -> torch.Tensor:
    a, b = torch.arange(p).repeat_interleave(p), torch.arange(p).repeat(p)
    return torch.stack([a, b, torch.full_like(a, p)], dim=1)  # [p^2, 3]


def tl_layer_norm(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, eps: float) -> torch.Tensor:
    x = x - x.mean(-1, keepdim=True)
    return x / (x.pow(2).mean(-1, keepdim=True) + eps).sqrt() * w + b


def tl_forward(sd: dict[str, torch.Tensor], tl_config: dict, tokens: torch.Tensor) -> torch.Tensor:
    """A HookedTransformer's last-position logits [batch, d_vocab_out], from its state dict and config."""
    ln = tl_config["normalization_type"] == "LN"
    eps = tl_config.get("eps", 1e-5)
    act = {"relu": torch.relu, "gelu": F.gelu}[tl_config["act_fn"]]
    n = tokens.shape[1]
    resid = sd["embed.W_E"][tokens] + sd["pos_embed.W_pos"][:n]  # [batch, pos, d_model]
    for layer in range(tl_config["n_layers"]):
        w = {k.removeprefix(f"blocks.{layer}."): v for k, v in sd.items() if k.startswith(f"blocks.{layer}.")}
        x = tl_layer_norm(resid, w["ln1.w"], w["ln1.b"], eps) if ln else resid
        q, k, v = (torch.einsum("bpd,hde->bphe", x, w[f"attn.W_{m}"]) + w[f"attn.b_{m}"] for m in "QKV")
        scores = torch.einsum("bqhe,bkhe->bhqk", q, k) / math.sqrt(tl_config["d_head"])
        scores = torch.where(w["attn.mask"][:n, :n], scores, w["attn.IGNORE"])
        z = torch.einsum("bhqk,bkhe->bqhe", scores.softmax(-1), v)  # [batch, pos, head, d_head]
        resid = resid + torch.einsum("bqhe,hed->bqd", z, w["attn.W_O"]) + w["attn.b_O"]
        x = tl_layer_norm(resid, w["ln2.w"], w["ln2.b"], eps) if ln else resid
        resid = resid + act(x @ w["mlp.W_in"] + w["mlp.b_in"]) @ w["mlp.W_out"] + w["mlp.b_out"]
    if ln:
        resid = tl_layer_norm(resid, sd["ln_final.w"], sd["ln_final.b"], eps)
    return (resid @ sd["unembed.W_U"] + sd["unembed.b_U"])[:, -1]


# --- export and import at depth -----------------------------------------------------------------------


@pytest.mark.parametrize("n_layers", [2, 4])
@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_export_matches_transformer_lens_maths_and_imports_back(arch, n_layers) -> None:
    cfg = Config(**SMALL, **ARCHITECTURES[arch], n_layers=n_layers)
    params = weights(cfg)
    tl_config, sd = interop.to_transformer_lens(params, cfg)
    assert tl_config["n_layers"] == n_layers
    assert {k.split(".")[1] for k in sd if k.startswith("blocks.")} == {str(i) for i in range(n_layers)}
    last = n_layers - 1
    assert sd[f"blocks.{last}.attn.IGNORE"] == -math.inf and sd[f"blocks.{last}.attn.b_K"].shape == (2, 8)
    assert sd[f"blocks.{last}.attn.mask"].all() == (cfg.architecture.attention == "bidirectional")
    tokens = all_tokens(cfg.p)
    ours = forward_last(params, tokens[:, 0], tokens[:, 1], arch=cfg.architecture)  # [p^2, p]
    torch.testing.assert_close(ours, tl_forward(sd, tl_config, tokens), rtol=0, atol=1e-4)
    # In float64 the two are the same computation up to rounding, not merely close.
    sd64 = {k: v.double() if v.is_floating_point() else v for k, v in sd.items()}
    params64 = {k: v.double() for k, v in params.items()}
    ours64 = forward_last(params64, tokens[:, 0], tokens[:, 1], arch=cfg.architecture)
    torch.testing.assert_close(ours64, tl_forward(sd64, tl_config, tokens), rtol=0, atol=1e-10)

    back, imported = interop.from_transformer_lens(sd, tl_config)
    assert back.n_layers == n_layers and back.architecture.layernorm == cfg.architecture.layernorm
    if cfg.architecture.pos_embed == "learned" and cfg.architecture.unembed == "untied":
        assert back == cfg.replace(frac_train=back.frac_train)  # the same run's config (the split is not in TL's)
        assert set(imported) == set(params) and all(torch.equal(imported[k], params[k]) for k in params)
    # Read from the shapes alone (no config), the depth is the same.
    assert interop.from_transformer_lens(sd, None)[0].n_layers == n_layers


@pytest.mark.parametrize("arch", ["reference", "pre-ln-gelu-biases"])
def test_transformer_lens_3_computes_the_same_logits_at_depth(arch, transformer_lens_3) -> None:
    cfg = Config(**SMALL, **ARCHITECTURES[arch], n_layers=2)
    params = weights(cfg)
    tl_config, sd = interop.to_transformer_lens(params, cfg)
    model = transformer_lens_3.HookedTransformer(transformer_lens_3.HookedTransformerConfig(**tl_config))
    model.load_state_dict(sd, strict=True)
    tokens = all_tokens(cfg.p)
    with torch.no_grad():
        theirs = model(tokens)[:, -1]
    ours = forward_last(params, tokens[:, 0], tokens[:, 1], arch=cfg.architecture)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-4)
    # And TransformerLens' own state dict (its buffers as it holds them) imports back to the same model.
    back, imported = interop.from_transformer_lens(model.state_dict(), model.cfg.to_dict())
    assert back.n_layers == 2 and all(torch.equal(imported[k], params[k]) for k in params)


def test_export_tl_command_round_trip_of_a_two_layer_run(tmp_path, capsys) -> None:
    cfg = Config(**SMALL, n_layers=2, steps=40)
    params = weights(cfg)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    write_run_file(run_dir, cfg)
    save_checkpoint(run_dir, 40, params, cfg)
    out = tmp_path / "tl" / "two.safetensors"
    assert convert(["export-tl", str(run_dir), "--out", str(out)]) == 0
    assert json.loads(out.with_suffix(".json").read_text())["n_layers"] == 2
    assert "blocks.1.mlp.W_out" in load_file(str(out))
    back = tmp_path / "back"
    assert convert(["transformer-lens", str(out), "--out", str(back)]) == 0
    assert "a grokviz export: config and step 40" in capsys.readouterr().out
    run = open_run(back)
    assert run.config == cfg and run.steps() == [40]
    loaded = run.load(40)
    assert set(loaded) == set(params) and all(torch.equal(loaded[k], params[k]) for k in params)


# --- imports whose layer count or shapes disagree with their config --------------------------------------


@pytest.fixture
def two_layer_export() -> tuple[dict, dict[str, torch.Tensor]]:
    cfg = Config(**SMALL, n_layers=2)
    return interop.to_transformer_lens(weights(cfg), cfg)


def test_tl_import_refuses_a_layer_count_or_shapes_that_disagree(two_layer_export) -> None:
    tl_config, sd = two_layer_export
    one_block = {k: v for k, v in sd.items() if not k.startswith("blocks.1.")}

    def refused(state, config, match: str) -> str:
        with pytest.raises(GrokvizError, match=match) as info:
            interop.from_transformer_lens(state, config)
        assert "\n" not in str(info.value)  # one line
        return str(info.value)

    refused(one_block, tl_config, r"the config says n_layers=2 but the state dict has 1 block\(s\) \(blocks.0 only\)")
    refused(
        sd, dict(tl_config, n_layers=3), r"n_layers=3 but the state dict has 2 block\(s\) \(blocks.0 ... blocks.1\)"
    )
    without_wq = {k: v for k, v in sd.items() if k != "blocks.1.attn.W_Q"}
    refused(without_wq, tl_config, r"missing \['blocks.1.attn.W_Q'\]: a HookedTransformer with 2 block\(s\)")
    wide = dict(sd, **{"blocks.1.mlp.W_in": torch.zeros(16, 40), "blocks.1.mlp.b_in": torch.zeros(40)})
    wide["blocks.1.mlp.W_out"] = torch.zeros(40, 16)
    refused(wide, tl_config, r"blocks.1.mlp.W_in has shape \(16, 40\) but blocks.0.mlp.W_in has \(16, 32\)")
    message = refused(sd, dict(tl_config, d_mlp=64), "the config says d_mlp=64 but blocks.0.mlp.W_in has shape")
    assert "which means d_mlp=32" in message
    gap = {k.replace("blocks.1.", "blocks.2."): v for k, v in sd.items()}
    refused(gap, None, r"has blocks \[0, 2\]; a HookedTransformer's blocks are numbered without gaps")
    five = dict(sd, **{k.replace("blocks.1.", f"blocks.{i}."): v for k, v in sd.items() for i in (2, 3, 4)})
    refused(five, None, r"n_layers=5 \(grokviz's models have 1 to 4 blocks\)")


def test_convert_refuses_a_mismatched_file_in_one_line(two_layer_export, tmp_path, capsys) -> None:
    tl_config, sd = two_layer_export
    path = tmp_path / "model.safetensors"
    save_file({k: v for k, v in sd.items() if not k.startswith("blocks.1.")}, str(path))
    path.with_suffix(".json").write_text(json.dumps(tl_config))
    assert convert(["transformer-lens", str(path), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("error: ") and "n_layers=2 but the state dict has 1 block" in err
    assert not (tmp_path / "run").exists()


def test_grokviz_export_whose_metadata_disagrees_with_its_tensors(two_layer_export, tmp_path) -> None:
    tl_config, sd = two_layer_export
    path = tmp_path / "model.safetensors"
    metadata = {"format": "grokviz.transformer-lens/1", "step": "3", "grokviz_config": Config(**SMALL).to_json()}
    save_file(sd, str(path), metadata=metadata)  # a 2-layer model under a 1-layer config
    with pytest.raises(GrokvizError, match=r"does not match its tensors: it says n_layers=1 \(the tensors: 2\)"):
        interop.import_transformer_lens(path)


def test_run_checkpoint_with_the_wrong_block_count_is_skipped_in_one_line(tmp_path) -> None:
    cfg = Config(**SMALL, n_layers=2)
    write_run_file(tmp_path, cfg)
    save_checkpoint(tmp_path, 5, init_params(cfg.replace(n_layers=1)), cfg)  # the metadata says 2 layers
    run = open_run(tmp_path)
    assert run.steps() == []
    (problem,) = run.problems
    assert "the tensors hold 1 block(s) (blocks.0) but the config says n_layers=2" in problem and "\n" not in problem


# --- PyTorch's nn.TransformerEncoder with several layers ----------------------------------------------


@pytest.mark.parametrize(
    "num_layers, kwargs", [(2, {}), (3, {"norm_first": True, "activation": "gelu"})], ids=["post-2", "pre-gelu-3"]
)
def test_encoder_layers_become_blocks(tmp_path, num_layers, kwargs) -> None:
    p = 11
    model, imported = saved_and_imported_encoder(tmp_path, p, num_layers=num_layers, **kwargs)
    cfg, (_, params) = imported.config, imported.checkpoints[0]
    assert cfg.n_layers == num_layers and cfg.dropout == 0.0
    assert any("without dropout" in note for note in imported.notes)
    tokens = all_tokens(p)
    model.eval()
    with torch.no_grad():
        theirs = model(tokens)[:, :p]  # the '=' class dropped
    ours = forward_last(params, tokens[:, 0], tokens[:, 1], arch=cfg.architecture)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-10)


def test_encoder_layers_refused_in_words(tmp_path) -> None:
    p = 11
    state = TorchEncoder(p, num_layers=2).state_dict()
    path = tmp_path / "encoder.pt"

    def refused(state_dict, match: str, **kwargs) -> None:
        torch.save(state_dict, path)
        with pytest.raises(GrokvizError, match=match):
            import_torch_encoder(path, p, n_heads=2, **kwargs)

    refused(state, r"--dropout 0.1 with 2 encoder layers: grokviz trains .* without dropout", dropout=0.1)
    wide = dict(state, **TorchEncoder(p, d_ff=40).state_dict())  # layer 0 with 40 hidden units, layer 1 with 32
    refused(wide, r"layers.1.linear1.weight has shape \(32, 16\) but transformer_encoder.layers.0.linear1.weight")
    refused({k: v for k, v in state.items() if k != "transformer_encoder.layers.1.linear2.weight"}, "missing keys")
    gap = {k.replace("layers.1.", "layers.2."): v for k, v in state.items()}
    refused(gap, r"has encoder layers \[0, 2\]")
    torch.save(state, path)
    assert import_torch_encoder(path, p, n_heads=2, dropout=0).config.n_layers == 2  # an explicit 0 is fine


def test_grokking_demo_file_of_a_two_layer_model(two_layer_export, tmp_path) -> None:
    tl_config, sd = two_layer_export
    path = tmp_path / "demo.pth"
    data = {"model": sd, "config": tl_config, "checkpoints": [sd], "checkpoint_epochs": [9], "train_losses": [1.0] * 20}
    torch.save(data, path)
    imported = interop.import_transformer_lens(path)
    assert imported.config.n_layers == 2 and [step for step, _ in imported.checkpoints] == [10, 20]
    one_block = {k: v for k, v in sd.items() if not k.startswith("blocks.1.")}
    torch.save(dict(data, checkpoints=[one_block]), path)
    with pytest.raises(
        GrokvizError, match=r"checkpoint of epoch 9: the config says n_layers=2 but the state dict has 1"
    ):
        interop.import_transformer_lens(path)
