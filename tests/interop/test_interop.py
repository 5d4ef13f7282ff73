"""Importers and exporter of grokviz.interop / grokviz.convert.

The reference model is re-implemented here, independently of grokviz, from the paper's code
(left-multiplying weights, masked scores scaled by 1/sqrt(d_head), no LayerNorm, W_O applied to z
flattened as (head d_head)), so that the layout conversion is checked against the original maths
rather than against itself. The TransformerLens side is checked against TransformerLens 3.x's
documented names, shapes and buffers, and against a TransformerLens-style forward (test_layers.tl_forward).
"""

from __future__ import annotations

import json
import math
import random

import pytest
import torch
import torch.nn.functional as F

from grokviz import interop
from grokviz.commands.convert import main as convert_main
from grokviz.core.config import Config
from grokviz.core.fast_path import forward_last
from grokviz.core.forward import forward
from grokviz.core.params import init_params
from grokviz.core.tasks import make_dataset
from grokviz.errors import GrokvizError
from grokviz.storage.runs import list_runs, open_run, save_checkpoint, write_run_file
from tests.interop.test_layers import tl_forward  # TransformerLens' forward at any depth, in plain torch

FIXTURE_FILES = ("progress-measures-seed1-wd1.pth", "progress-measures-no-wd.pth")


# --- an independent re-implementation of the paper's reference model ------------------------------


def reference_forward(sd: dict[str, torch.Tensor], tokens: torch.Tensor) -> torch.Tensor:
    """The reference code's forward on its own state dict: tokens [batch, pos] -> logits [batch, pos, d_vocab]."""
    x = sd["embed.W_E"][:, tokens].permute(1, 2, 0)  # 'dbp -> bpd': [batch, pos, d_model]
    x = x + sd["pos_embed.W_pos"][: x.shape[-2]]
    W_K, W_Q, W_V, W_O = (sd[f"blocks.0.attn.{n}"] for n in ("W_K", "W_Q", "W_V", "W_O"))
    d_head = W_Q.shape[1]
    k = torch.einsum("ihd,bpd->biph", W_K, x)
    q = torch.einsum("ihd,bpd->biph", W_Q, x)
    v = torch.einsum("ihd,bpd->biph", W_V, x)
    scores = torch.einsum("biph,biqh->biqp", k, q)  # [batch, head, query, key]
    n = x.shape[-2]
    mask = sd["blocks.0.attn.mask"][:n, :n]
    scores = torch.tril(scores) - 1e10 * (1 - mask)
    pattern = F.softmax(scores / math.sqrt(d_head), dim=-1)
    z = torch.einsum("biph,biqp->biqh", v, pattern)  # [batch, head, query, d_head]
    z_flat = z.permute(0, 2, 1, 3).reshape(z.shape[0], n, -1)  # 'b i q h -> b q (i h)'
    x = x + torch.einsum("df,bqf->bqd", W_O, z_flat)
    pre = torch.einsum("md,bpd->bpm", sd["blocks.0.mlp.W_in"], x) + sd["blocks.0.mlp.b_in"]
    post = F.relu(pre)
    x = x + torch.einsum("dm,bpm->bpd", sd["blocks.0.mlp.W_out"], post) + sd["blocks.0.mlp.b_out"]
    return x @ sd["unembed.W_U"]


def random_reference_state_dict(p=23, d_model=24, n_heads=3, d_head=5, d_mlp=40, seed=0) -> dict[str, torch.Tensor]:
    """Random weights in the reference layout; n_heads * d_head != d_model so transposes cannot hide."""
    g = torch.Generator().manual_seed(seed)
    r = lambda *shape: torch.randn(*shape, generator=g)  # noqa: E731
    return {
        "embed.W_E": r(d_model, p + 1),
        "pos_embed.W_pos": r(3, d_model),
        "blocks.0.attn.W_K": r(n_heads, d_head, d_model),
        "blocks.0.attn.W_Q": r(n_heads, d_head, d_model),
        "blocks.0.attn.W_V": r(n_heads, d_head, d_model),
        "blocks.0.attn.W_O": r(d_model, n_heads * d_head),
        "blocks.0.attn.mask": torch.ones(3, 3).tril(),
        "blocks.0.mlp.W_in": r(d_mlp, d_model),
        "blocks.0.mlp.b_in": r(d_mlp),
        "blocks.0.mlp.W_out": r(d_model, d_mlp),
        "blocks.0.mlp.b_out": r(d_model),
        "unembed.W_U": r(d_model, p + 1),
    }


def all_tokens(p: int) -> torch.Tensor:
    a = torch.arange(p).repeat_interleave(p)
    b = torch.arange(p).repeat(p)
    return torch.stack([a, b, torch.full_like(a, p)], dim=1)  # [p^2, 3], row-major a * p + b


def mean_loss(logits: torch.Tensor, labels: torch.Tensor) -> float:
    return F.cross_entropy(logits.double(), labels).item()


# --- layout conversion (no fixtures needed) --------------------------------------------------------


def test_reference_layout_conversion_gives_the_reference_logits():
    sd = random_reference_state_dict()
    cfg, params = interop.from_progress_measures_state_dict(sd)
    assert (cfg.p, cfg.d_model, cfg.n_heads, cfg.d_head, cfg.d_mlp) == (23, 24, 3, 5, 40)
    tokens = all_tokens(cfg.p)
    # In float64 the only differences left are summation order: a layout error would be O(1).
    expected = reference_forward({k: v.double() for k, v in sd.items()}, tokens)[:, -1, : cfg.p]  # '=' column dropped
    params64 = {k: v.double() for k, v in params.items()}
    torch.testing.assert_close(forward(params64, tokens), expected, rtol=1e-10, atol=1e-9)
    torch.testing.assert_close(forward_last(params64, tokens[:, 0], tokens[:, 1]), expected, rtol=1e-10, atol=1e-9)


def test_reference_state_dict_with_a_config_hint():
    sd = random_reference_state_dict()
    cfg, _ = interop.from_progress_measures_state_dict(
        sd, {"p": 23, "frac_train": 0.5, "seed": 7, "fn_name": "subtract"}
    )
    assert (cfg.frac_train, cfg.seed, cfg.task) == (0.5, 7, "sub")
    with pytest.raises(GrokvizError, match="p=29"):
        interop.from_progress_measures_state_dict(sd, {"p": 29})
    ours = Config(p=23, d_model=24, n_heads=3, d_head=5, d_mlp=40, seed=3)
    assert interop.from_progress_measures_state_dict(sd, ours)[0] is ours


def test_reference_state_dict_that_is_not_the_model_is_refused():
    sd = random_reference_state_dict()
    bad_mask = dict(sd, **{"blocks.0.attn.mask": torch.ones(3, 3)})
    with pytest.raises(GrokvizError, match="causal"):
        interop.from_progress_measures_state_dict(bad_mask)
    with pytest.raises(GrokvizError, match="missing"):
        interop.from_progress_measures_state_dict({k: v for k, v in sd.items() if k != "unembed.W_U"})
    with pytest.raises(GrokvizError, match="unexpected"):
        interop.from_progress_measures_state_dict(dict(sd, **{"blocks.0.ln1.w_ln": torch.ones(24)}))
    with pytest.raises(GrokvizError, match="expected 2 dimensions"):
        interop.from_progress_measures_state_dict(dict(sd, **{"embed.W_E": torch.ones(24)}))
    with pytest.raises(GrokvizError, match="W_in has shape"):
        interop.from_progress_measures_state_dict(dict(sd, **{"blocks.0.mlp.W_in": torch.ones(40, 7)}))


def test_reference_split_is_python_random_shuffle():
    train, test = interop.reference_split(113, 0.3, 1)
    pairs = [(i, j) for i in range(113) for j in range(113)]
    random.seed(1)
    random.shuffle(pairs)
    assert len(train) == 3830 and len(test) == 12769 - 3830
    assert set(train.tolist()) == {a * 113 + b for a, b in pairs[:3830]}


def test_merge_histories_places_sparse_test_losses():
    notes: list[str] = []
    rows = interop.merge_histories([float(i) for i in range(25)], [100.0, 110.0, 120.0], notes)
    assert len(rows) == 25 and notes and "every 10 steps" in notes[0]
    assert [r["step"] for r in rows if not math.isnan(r["test_loss"])] == [0, 10, 20]
    assert all(math.isnan(r["train_accuracy"]) and math.isnan(r["elapsed_s"]) for r in rows)
    shifted = interop.merge_histories([1.0, 2.0], [3.0, 4.0], [], test_offset=1)  # test evaluated after the update
    assert [r["step"] for r in shifted] == [0, 1, 2]
    assert [r["train_loss"] for r in shifted[:2]] == [1.0, 2.0] and math.isnan(shifted[2]["train_loss"])
    assert math.isnan(shifted[0]["test_loss"]) and [r["test_loss"] for r in shifted[1:]] == [3.0, 4.0]


# --- the paper's reference checkpoints -------------------------------------------------------------


@pytest.fixture(scope="module", params=FIXTURE_FILES)
def fixture_import(request, fixtures_dir):
    path = fixtures_dir / request.param
    if not path.is_file():
        pytest.skip(f"{path} missing")
    raw = torch.load(path, map_location="cpu", weights_only=True)
    return request.param, path, raw, interop.import_progress_measures(path)


def test_fixture_converted_logits_equal_the_reference_forward(fixture_import):
    _, _, raw, imported = fixture_import
    cfg, (_, params) = imported.config, imported.checkpoints[-1]
    tokens = all_tokens(cfg.p)
    expected = reference_forward(raw["model"], tokens)[:, -1, : cfg.p]
    ours = forward_last(params, tokens[:, 0], tokens[:, 1])
    # Same maths, different summation order: differences are fp32 round-off of logits of size ~30.
    torch.testing.assert_close(ours, expected, rtol=1e-4, atol=2e-4)


def test_fixture_reproduces_the_stored_final_losses(fixture_import):
    name, _, raw, imported = fixture_import
    cfg, (_, params) = imported.config, imported.checkpoints[-1]
    tokens = all_tokens(cfg.p)
    labels = (tokens[:, 0] + tokens[:, 1]) % cfg.p
    train, test = interop.reference_split(cfg.p, cfg.frac_train, cfg.seed)
    logits = forward_last(params, tokens[:, 0], tokens[:, 1])
    stored = (raw["train_loss"].item(), raw["test_loss"].item())
    ours = (mean_loss(logits[train], labels[train]), mean_loss(logits[test], labels[test]))
    # The stored losses were computed one AdamW update before the saved weights (the reference
    # loop logs, then steps); near the end of training one update moves them by well under 0.1%.
    for value, reference in zip(ours, stored):
        assert value == pytest.approx(reference, rel=2e-3), (name, ours, stored)
    # The reference loss includes the '=' output column we drop: it carries no probability here.
    full = reference_forward(raw["model"], tokens)[:, -1].double()
    assert mean_loss(full[train], labels[train]) == pytest.approx(ours[0], rel=1e-3)
    # The split matters: grokviz's own split for the same seed does not reproduce the train loss.
    other = make_dataset("add", cfg.p, cfg.frac_train, cfg.seed).train_idx
    assert mean_loss(logits[other], labels[other]) > 5 * stored[0]


def test_fixture_all_pairs_accuracy(fixture_import):
    name, _, _, imported = fixture_import
    cfg, (_, params) = imported.config, imported.checkpoints[-1]
    tokens = all_tokens(cfg.p)
    correct = forward_last(params, tokens[:, 0], tokens[:, 1]).argmax(-1) == (tokens[:, 0] + tokens[:, 1]) % cfg.p
    # seed1-wd1 grokked. The no-wd run is 100% too: it trained on 90% of the pairs (inferred from
    # its stored losses, see test_fixture_config), memorising them and getting the rest right.
    assert correct.all(), (name, correct.double().mean().item())


def test_fixture_config(fixture_import):
    name, _, _, imported = fixture_import
    cfg, notes = imported.config, " | ".join(imported.notes)
    assert (cfg.task, cfg.p, cfg.d_model, cfg.n_heads, cfg.d_head, cfg.d_mlp) == ("add", 113, 128, 4, 32, 512)
    assert (cfg.lr, cfg.beta1, cfg.beta2) == (1e-3, 0.9, 0.98)
    if name == "progress-measures-seed1-wd1.pth":
        assert (cfg.frac_train, cfg.seed, cfg.steps) == (0.3, 1, 107791)
        # The file's config says weight_decay 1, its optimizer state says 0.1: the latter is what
        # AdamW used; the conflict is stated, not hidden.
        assert cfg.weight_decay == pytest.approx(0.1)
        assert "the config says 1 but the optimizer state says 0.1" in notes
        assert "stopping_thresh" in notes  # reported as having no equivalent
    else:
        assert (cfg.frac_train, cfg.seed, cfg.weight_decay, cfg.steps) == (0.9, 0, 0.0, 5000)
        assert "no config" in notes and "frac_train=0.9 inferred" in notes
        assert "defaulted to 0.3" not in notes  # the default was replaced by the inference


def test_fixture_imported_run_folder(fixture_import, tmp_path, capsys):
    name, path, raw, _ = fixture_import
    out = tmp_path / "runs" / name.removesuffix(".pth")
    assert convert_main(["progress-measures", str(path), "--out", str(out)]) == 0
    assert "imported from the reference code" in capsys.readouterr().out
    runs, problems = list_runs(tmp_path / "runs")  # what the app's run picker lists
    assert [r.name for r in runs] == [out.name] and not problems
    run = runs[0]
    assert run.steps() == [raw["scheduler"]["last_epoch"]] == [run.config.steps]
    log = run.log()
    # One row per stored train loss (steps 0..N-1), test losses at their own steps, full precision.
    assert len(log) == len(raw["train_losses"])
    assert log["train_loss"].tolist() == raw["train_losses"]
    assert log["test_loss"].notna().sum() == len(raw["test_losses"])
    assert log["test_loss"].dropna().tolist() == raw["test_losses"]
    assert log[["train_accuracy", "test_accuracy", "elapsed_s"]].isna().all().all()  # NaN survives the CSV
    params = run.load(run.steps()[-1])
    _, expected = interop.from_progress_measures_state_dict(raw["model"])
    assert all(torch.equal(params[k], expected[k]) for k in expected)
    assert "progress-measures:" in open_run(out).source


def test_fixture_key_frequencies(fixture_import):
    from grokviz.analysis import neurons

    name, _, _, imported = fixture_import
    cfg, (_, params) = imported.config, imported.checkpoints[-1]
    counts = neurons.key_frequencies(neurons.neuron_stats(neurons.neuron_activations(params)))
    major = {k for k, n in counts.items() if n >= 10}
    expected = {"progress-measures-seed1-wd1.pth": {6, 23, 37, 39, 41}, "progress-measures-no-wd.pth": {36, 52}}[name]
    assert major == expected, counts
    # Independent check: the same frequencies dominate W_L = W_out @ W_U in the Fourier basis,
    # computed here from plain cos/sin vectors (a large gap separates them from the rest).
    p = cfg.p
    x = torch.arange(p, dtype=torch.float64)
    W_L = (params["blocks.0.mlp.W_out"] @ params["unembed.W_U"]).double()  # [d_mlp, p]
    norms = {}
    for k in range(1, (p - 1) // 2 + 1):
        waves = torch.stack([torch.cos(2 * math.pi * k * x / p), torch.sin(2 * math.pi * k * x / p)])
        norms[k] = (W_L @ (waves / waves.norm(dim=1, keepdim=True)).T).norm().item()
    ranked = sorted(norms, key=norms.get, reverse=True)
    assert set(ranked[: len(expected)]) == expected
    assert norms[ranked[len(expected) - 1]] > 1.5 * norms[ranked[len(expected)]]


def test_load_progress_measures_checkpoint(fixtures_dir):
    cfg, params = interop.load_progress_measures_checkpoint(fixtures_dir / "progress-measures-seed1-wd1.pth")
    assert cfg.p == 113 and params["unembed.W_U"].shape == (128, 113) and params["embed.W_E"].dtype == torch.float32


# --- other shapes of reference files ----------------------------------------------------------------


def to_reference_layout(params: dict[str, torch.Tensor], p: int) -> dict[str, torch.Tensor]:
    """Our layout -> the reference code's, written out by hand (with a random '=' output column)."""
    n_heads, d_model, d_head = params["blocks.0.attn.W_Q"].shape
    return {
        "embed.W_E": params["embed.W_E"].T.contiguous(),
        "pos_embed.W_pos": params["pos_embed.W_pos"].clone(),
        **{f"blocks.0.attn.W_{n}": params[f"blocks.0.attn.W_{n}"].transpose(1, 2).contiguous() for n in "QKV"},
        "blocks.0.attn.W_O": params["blocks.0.attn.W_O"].reshape(n_heads * d_head, d_model).T.contiguous(),
        "blocks.0.attn.mask": torch.ones(3, 3).tril(),
        "blocks.0.mlp.W_in": params["blocks.0.mlp.W_in"].T.contiguous(),
        "blocks.0.mlp.b_in": params["blocks.0.mlp.b_in"].clone(),
        "blocks.0.mlp.W_out": params["blocks.0.mlp.W_out"].T.contiguous(),
        "blocks.0.mlp.b_out": params["blocks.0.mlp.b_out"].clone(),
        "unembed.W_U": torch.cat([params["unembed.W_U"], torch.randn(d_model, 1)], dim=1),
    }


def memorise(cfg: Config, train_idx: torch.Tensor, steps: int = 300) -> dict[str, torch.Tensor]:
    """A few hundred full-batch AdamW steps on the given pairs: train loss far below test loss."""
    params = {k: v.clone().requires_grad_(True) for k, v in init_params(cfg).items()}
    optimiser = torch.optim.AdamW(params.values(), lr=3e-3, weight_decay=0.0)
    a, b = train_idx // cfg.p, train_idx % cfg.p
    for _ in range(steps):
        loss = F.cross_entropy(forward_last(params, a, b), (a + b) % cfg.p)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return {k: v.detach() for k, v in params.items()}


def test_full_run_file_becomes_one_checkpoint_per_epoch(tiny_config, tmp_path):
    p = tiny_config.p
    train, test = interop.reference_split(p, 0.4, 3)
    states = [init_params(tiny_config.replace(seed=s)) for s in range(2)] + [memorise(tiny_config, train)]
    per_pair, _ = interop.per_pair_losses(states[-1], tiny_config)
    train_losses = [3.0 - i / 100 for i in range(250)]
    test_losses = [3.5 - i / 200 for i in range(250)]
    # The last model's true losses, logged at its step (epoch 200 -> step 201), identify its split.
    train_losses[201], test_losses[201] = per_pair[train].mean().item(), per_pair[test].mean().item()
    data = {
        "state_dicts": [to_reference_layout(s, p) for s in states],
        "epochs": [0, 100, 200],
        "train_losses": train_losses,
        "test_losses": test_losses,
    }
    path = tmp_path / "full_run.pth"
    torch.save(data, path)
    out = tmp_path / "run"
    assert convert_main(["progress-measures", str(path), "--out", str(out)]) == 0
    run = open_run(out)
    assert run.steps() == [1, 101, 201]  # saved after that epoch's update
    for step, expected in zip(run.steps(), states):
        loaded = run.load(step)
        assert all(torch.equal(loaded[k], expected[k]) for k in expected)
    assert len(run.log()) == 250 and run.config.p == p
    assert (run.config.seed, run.config.frac_train) == (3, 0.4)  # inferred from the losses at step 201
    assert "at the same step" in run.source


def test_split_is_not_inferred_from_losses_that_cannot_tell(tiny_config, tmp_path):
    path = tmp_path / "untrained.pth"
    torch.save(
        {"model": to_reference_layout(init_params(tiny_config), tiny_config.p), "train_loss": 3.2, "test_loss": 3.3},
        path,
    )
    imported = interop.import_progress_measures(path)
    assert (imported.config.seed, imported.config.frac_train) == (0, 0.3)
    assert any("too close to tell splits apart" in n for n in imported.notes)


def test_bare_model_without_history(tiny_config, tmp_path):
    path = tmp_path / "bare.pth"
    torch.save({"model": to_reference_layout(init_params(tiny_config), tiny_config.p)}, path)
    imported = interop.import_progress_measures(path)
    assert [s for s, _ in imported.checkpoints] == [0]
    notes = " | ".join(imported.notes)
    assert "stored as step 0" in notes and "no loss history" in notes and "defaulted to 0.3" in notes


# --- TransformerLens ---------------------------------------------------------------------------------


# TransformerLens 3.x: HookedTransformer(cfg).state_dict() for n_layers=1, normalization_type=None,
# standard positional embeddings: parameters of Embed, PosEmbed, Attention, MLP, Unembed and the
# attention buffers mask (bool, causal) and IGNORE (-inf scalar), see
# transformer_lens/components/abstract_attention.py.
def tl_expected_shapes(cfg: Config) -> dict[str, tuple[int, ...]]:
    return {
        "embed.W_E": (cfg.d_vocab, cfg.d_model),
        "pos_embed.W_pos": (cfg.n_ctx, cfg.d_model),
        "blocks.0.attn.W_Q": (cfg.n_heads, cfg.d_model, cfg.d_head),
        "blocks.0.attn.W_K": (cfg.n_heads, cfg.d_model, cfg.d_head),
        "blocks.0.attn.W_V": (cfg.n_heads, cfg.d_model, cfg.d_head),
        "blocks.0.attn.W_O": (cfg.n_heads, cfg.d_head, cfg.d_model),
        "blocks.0.attn.b_Q": (cfg.n_heads, cfg.d_head),
        "blocks.0.attn.b_K": (cfg.n_heads, cfg.d_head),
        "blocks.0.attn.b_V": (cfg.n_heads, cfg.d_head),
        "blocks.0.attn.b_O": (cfg.d_model,),
        "blocks.0.attn.mask": (cfg.n_ctx, cfg.n_ctx),
        "blocks.0.attn.IGNORE": (),
        "blocks.0.mlp.W_in": (cfg.d_model, cfg.d_mlp),
        "blocks.0.mlp.b_in": (cfg.d_mlp,),
        "blocks.0.mlp.W_out": (cfg.d_mlp, cfg.d_model),
        "blocks.0.mlp.b_out": (cfg.d_model,),
        "unembed.W_U": (cfg.d_model, cfg.d_vocab_out),
        "unembed.b_U": (cfg.d_vocab_out,),
    }


# A subset of HookedTransformerConfig's dataclass fields (TransformerLens 3.x,
# transformer_lens/config/HookedTransformerConfig.py and TransformerLensConfig.py).
HOOKED_TRANSFORMER_CONFIG_FIELDS = {
    "d_model",
    "d_head",
    "n_layers",
    "n_ctx",
    "n_heads",
    "d_mlp",
    "d_vocab",
    "d_vocab_out",
    "act_fn",
    "normalization_type",
    "attn_only",
    "positional_embedding_type",
    "attention_dir",
    "use_attn_scale",
    "attn_scale",
    "init_weights",
    "seed",
    "device",
    "dtype",
    "model_name",
    "eps",
    "init_mode",
}


def test_tl_export_layout_and_round_trip(tiny_config):
    params = init_params(tiny_config)
    params["blocks.0.mlp.b_in"] = torch.randn(tiny_config.d_mlp)  # non-zero biases must survive too
    tl_config, sd = interop.to_transformer_lens(params, tiny_config)
    assert {k: tuple(v.shape) for k, v in sd.items()} == tl_expected_shapes(tiny_config)
    assert sd["blocks.0.attn.mask"].dtype == torch.bool and torch.equal(
        sd["blocks.0.attn.mask"], torch.ones(3, 3, dtype=torch.bool).tril()
    )
    assert sd["blocks.0.attn.IGNORE"].item() == -math.inf
    for name in interop.TL_ZERO_BIASES:
        assert not sd[name].any()
    assert set(tl_config) <= HOOKED_TRANSFORMER_CONFIG_FIELDS
    cfg_back, params_back = interop.from_transformer_lens(sd, tl_config)
    assert set(params_back) == set(params)
    assert all(torch.equal(params_back[k], params[k]) for k in params)  # identical tensors
    assert (cfg_back.p, cfg_back.d_model, cfg_back.n_heads, cfg_back.d_head, cfg_back.d_mlp, cfg_back.seed) == (
        tiny_config.p,
        tiny_config.d_model,
        tiny_config.n_heads,
        tiny_config.d_head,
        tiny_config.d_mlp,
        tiny_config.seed,
    )
    tokens = all_tokens(tiny_config.p)
    torch.testing.assert_close(tl_forward(sd, tl_config, tokens), forward(params, tokens), rtol=1e-5, atol=1e-5)


def test_tl_config_is_the_grokking_demo_config():
    tl_config, _ = interop.to_transformer_lens(init_params(Config(seed=999)), Config(seed=999))
    demo = {
        "n_layers": 1,
        "n_heads": 4,
        "d_model": 128,
        "d_head": 32,
        "d_mlp": 512,
        "act_fn": "relu",
        "normalization_type": None,
        "d_vocab": 114,
        "d_vocab_out": 113,
        "n_ctx": 3,
        "init_weights": True,
        "seed": 999,
    }
    assert {k: tl_config[k] for k in demo} == demo
    json.dumps(tl_config)  # plain JSON


def test_tl_import_refuses_what_it_cannot_represent(tiny_config):
    tl_config, sd = interop.to_transformer_lens(init_params(tiny_config), tiny_config)
    with pytest.raises(GrokvizError, match="normalization_type='LN' but .* missing"):
        interop.from_transformer_lens(sd, dict(tl_config, normalization_type="LN"))
    with pytest.raises(GrokvizError, match="normalization_type='RMS'"):
        interop.from_transformer_lens(sd, dict(tl_config, normalization_type="RMS"))
    with pytest.raises(GrokvizError, match="act_fn='silu'"):
        interop.from_transformer_lens(sd, dict(tl_config, act_fn="silu"))
    with pytest.raises(GrokvizError, match="d_model=7"):
        interop.from_transformer_lens(sd, dict(tl_config, d_model=7))
    with pytest.raises(GrokvizError, match="unexpected"):
        interop.from_transformer_lens(dict(sd, **{"blocks.0.ln2.w": torch.ones(3)}), tl_config)


def test_tl_import_reads_the_architectures_transformer_lens_has(tiny_config):
    # A non-zero unembedding bias, GELU and pre-LN are architectures of ours now: imported, not refused.
    cfg = tiny_config.replace(layernorm="pre", biases="all", activation="gelu", attention="bidirectional")
    params = {k: v + 0.1 for k, v in init_params(cfg).items()}
    tl_config, sd = interop.to_transformer_lens(params, cfg)
    back, imported = interop.from_transformer_lens(sd, tl_config)
    arch = back.architecture
    assert (arch.layernorm, arch.biases, arch.activation, arch.attention) == ("pre", "all", "gelu", "bidirectional")
    assert all(torch.equal(imported[k], params[k]) for k in params)
    # All-zero attention and unembedding biases are the paper's architecture (the same function).
    _, plain = interop.to_transformer_lens(init_params(tiny_config), tiny_config)
    assert interop.from_transformer_lens(plain, interop.to_transformer_lens(init_params(tiny_config), tiny_config)[0])[
        0
    ].architecture.is_reference


def fake_hooked_transformer_config(monkeypatch, fields: dict):
    """An object that pickles exactly as TransformerLens 3.x's HookedTransformerConfig (a dataclass
    in transformer_lens.config.HookedTransformerConfig), from a stand-in module that is removed
    again before loading: the importer must not need TransformerLens."""
    import dataclasses
    import types

    module_name = "transformer_lens.config.HookedTransformerConfig"
    cls = dataclasses.make_dataclass("HookedTransformerConfig", list(fields))
    cls.__module__ = module_name
    for name in ("transformer_lens", "transformer_lens.config", module_name):
        module = types.ModuleType(name)
        module.HookedTransformerConfig = cls
        monkeypatch.setitem(__import__("sys").modules, name, module)
    return cls(**fields)


@pytest.mark.parametrize("config_as", ["HookedTransformerConfig", "dict"])
def test_tl_grokking_demo_file(config_as, tiny_config, tmp_path, capsys, monkeypatch):
    """A file as the demo saves it ("config": model.cfg), with checkpoints, losses and indices."""
    p = tiny_config.p
    checkpoints = [init_params(tiny_config.replace(seed=s)) for s in range(2)]
    tl_config, final_sd = interop.to_transformer_lens(checkpoints[-1], tiny_config.replace(seed=11))
    torch.manual_seed(598)  # the demo's DATA_SEED, then torch.randperm(p*p)
    indices = torch.randperm(p * p)
    cutoff = int(p * p * 0.3)
    as_saved = dict(
        tl_config,
        dtype=torch.float32,
        device=torch.device("cpu"),
        attn_scale=math.sqrt(tiny_config.d_head),
        model_name="custom",
        original_architecture=None,
    )  # fields model.cfg also holds
    if config_as == "HookedTransformerConfig":
        as_saved = fake_hooked_transformer_config(monkeypatch, as_saved)
    data = {
        "model": final_sd,
        "config": as_saved,
        "checkpoints": [interop.to_transformer_lens(c, tiny_config)[1] for c in checkpoints],
        "checkpoint_epochs": [99, 199],
        "train_losses": [4.0 - i / 100 for i in range(200)],
        "test_losses": [4.5 - i / 100 for i in range(200)],
        "train_indices": indices[:cutoff],
        "test_indices": indices[cutoff:],
    }
    path = tmp_path / "grokking_demo.pth"
    torch.save(data, path)
    monkeypatch.undo()  # no transformer_lens module while importing
    assert "transformer_lens" not in __import__("sys").modules
    out = tmp_path / "run"
    assert convert_main(["transformer-lens", str(path), "--out", str(out)]) == 0
    run = open_run(out)
    assert run.steps() == [100, 200]  # checkpoint of epoch e = after e + 1 updates; the final model is step 200
    assert all(torch.equal(run.load(200)[k], checkpoints[-1][k]) for k in checkpoints[-1])
    assert (run.config.frac_train, run.config.split_seed, run.config.warmup_steps) == (0.3, 598, 0)
    assert torch.equal(make_dataset("add", p, 0.3, run.config.split_seed).train_idx, indices[:cutoff].sort().values)
    log = run.log()
    assert len(log) == 201 and log.loc[log.step == 200, "test_loss"].item() == data["test_losses"][-1]
    printed = capsys.readouterr().out
    assert "data_seed=598" in printed and "ignored" not in printed
    assert run.config.seed == 11  # read from the config, whichever way it was saved


def test_export_tl_cli_and_reimport(tiny_config, tmp_path, capsys):
    from safetensors import safe_open
    from safetensors.torch import load_file

    run_dir = tmp_path / "ours"
    params = init_params(tiny_config)
    write_run_file(run_dir, tiny_config)
    save_checkpoint(run_dir, 0, init_params(tiny_config.replace(seed=5)), tiny_config)
    save_checkpoint(run_dir, 300, params, tiny_config)
    out = tmp_path / "export" / "model.safetensors"
    assert convert_main(["export-tl", str(run_dir), "--out", str(out)]) == 0  # the last step by default
    assert "load_state_dict" in capsys.readouterr().out
    sd = load_file(str(out))
    tl_config = json.loads(out.with_suffix(".json").read_text())
    expected_config, expected_sd = interop.to_transformer_lens(params, tiny_config)
    assert tl_config == json.loads(json.dumps(expected_config))
    assert set(sd) == set(expected_sd) and all(torch.equal(sd[k], expected_sd[k]) for k in sd)
    with safe_open(str(out), framework="pt") as handle:
        assert handle.metadata()["step"] == "300"
    # And back: the export's metadata restores our config and step exactly.
    back = tmp_path / "back"
    assert convert_main(["transformer-lens", str(out), "--out", str(back)]) == 0
    run = open_run(back)
    assert run.config == tiny_config and run.steps() == [300]
    assert all(torch.equal(run.load(300)[k], params[k]) for k in params)
    # A single checkpoint file works too, and --step must agree with it.
    single = run_dir / "step_000000.safetensors"
    assert convert_main(["export-tl", str(single), "--out", str(tmp_path / "s.safetensors")]) == 0
    assert convert_main(["export-tl", str(single), "--step", "7", "--out", str(tmp_path / "t.safetensors")]) == 2


# --- pickles and user errors -------------------------------------------------------------------------


class NotAllowed:
    """Stands in for any object outside torch's weights_only allow-list (a user's own config class)."""

    def __init__(self):
        self.n_layers = 1


def test_pickles_needing_full_unpickling_are_refused(tiny_config, tmp_path, capsys):
    path = tmp_path / "demo_with_cfg_object.pth"
    torch.save(
        {"model": interop.to_transformer_lens(init_params(tiny_config), tiny_config)[1], "config": NotAllowed()}, path
    )
    with pytest.raises(GrokvizError, match="refused") as info:
        interop.import_transformer_lens(path)
    message = str(info.value)
    assert str(path) in message and "weights_only" in message and "NotAllowed" in message
    assert convert_main(["transformer-lens", str(path), "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["progress-measures", "/nonexistent/file.pth", "--out", "OUT"], "no such file"),
        (["transformer-lens", "/nonexistent/file.safetensors", "--out", "OUT"], "no such file"),
        # One resolver for "a run folder or a checkpoint file" (grokviz.storage.target), one message.
        (["export-tl", "/nonexistent/run", "--out", "OUT.safetensors"], "no such run folder or checkpoint file"),
    ],
)
def test_cli_user_errors(argv, expected, tmp_path, capsys):
    argv = [str(tmp_path / a) if a.startswith("OUT") else a for a in argv]
    assert convert_main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and expected in err and "Traceback" not in err


def test_cli_refuses_garbage_and_existing_output(tiny_config, tmp_path, capsys):
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a torch file")
    assert convert_main(["progress-measures", str(garbage), "--out", str(tmp_path / "o")]) == 2
    assert "not a readable torch.save file" in capsys.readouterr().err
    other = tmp_path / "other.pth"
    torch.save({"weights": torch.zeros(3)}, other)
    assert convert_main(["progress-measures", str(other), "--out", str(tmp_path / "o")]) == 2
    assert "not a reference-code checkpoint" in capsys.readouterr().err
    good = tmp_path / "good.pth"
    torch.save({"model": to_reference_layout(init_params(tiny_config), tiny_config.p)}, good)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "something").write_text("x")
    assert convert_main(["progress-measures", str(good), "--out", str(busy)]) == 2
    assert (
        "folder exists and is not empty" in capsys.readouterr().err
    )  # the trainers' own words (runs.require_new_folder)
