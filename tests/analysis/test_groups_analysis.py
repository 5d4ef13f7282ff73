"""The group analysis (grokviz.analysis.groups) on synthetic functions with known answers, and on Z_p
against the modular analysis (fourier, neurons, progress) where the definitions coincide."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from grokviz.analysis import fourier
from grokviz.analysis.groups import (
    NeuronIrreps,
    character_fve,
    clustered_fraction,
    embedding_gini,
    embedding_spectrum,
    key_irreps,
    neuron_counts,
    neuron_irreps,
    restricted_and_excluded_logits,
    restricted_and_excluded_loss,
    summarise_group_checkpoint,
    unembedding_spectrum,
)
from grokviz.analysis.irreps import irreps
from grokviz.analysis.neurons import neuron_stats
from grokviz.analysis.progress import gini, progress_measures_from_logits
from grokviz.analysis.projections import project_logits
from grokviz.core.config import Config
from grokviz.core.fast_path import forward_all_pairs
from grokviz.core.groups import parse_group
from grokviz.core.params import init_params, param_shapes


def _irrep(group, label):
    return next(irrep for irrep in irreps(group) if irrep.label == label)


def _g_of(group) -> np.ndarray:
    """[n², n] the element a·b·c⁻¹ of every (pair, c)."""
    return group.table[group.table.reshape(-1)][:, group.inverse]


def _regressor(group, label) -> np.ndarray:
    """[n², n] χ_ρ(a·b·c⁻¹)."""
    return _irrep(group, label).character[_g_of(group)]


def _row_noise(group, seed=0) -> np.ndarray:
    """[n², 1] a per-pair constant (removed by the centring, invisible to softmax)."""
    return np.random.default_rng(seed).standard_normal((group.order**2, 1))


def _model(p: int, seed: int = 0, scale: float = 1.0):
    """A random Config(p) model's params and its all-pairs logits (scaled: larger logits, larger loss gaps)."""
    cfg = Config(p=p, d_model=32, d_mlp=64, n_heads=2, d_head=16, seed=seed)
    params = init_params(cfg)
    return cfg, params, forward_all_pairs(params) * scale


def _group_params(order: int, d_model=32, d_mlp=64, seed=0) -> dict:
    """Random weights of a model with order + 1 input tokens and order outputs (any order, prime or not)."""
    shapes = param_shapes(Config(p=7, d_model=d_model, d_mlp=d_mlp, n_heads=2, d_head=d_model // 2))
    shapes |= {"embed.W_E": (order + 1, d_model), "unembed.W_U": (d_model, order)}
    generator = torch.Generator().manual_seed(seed)
    return {name: torch.randn(shape, generator=generator) / math.sqrt(shape[0]) for name, shape in shapes.items()}


# --- characters of the logits --------------------------------------------------------------------


@pytest.mark.parametrize("name", ["S4", "A4", "D5"])
def test_character_regressors_are_orthogonal_over_the_grid(name):
    group = parse_group(name)
    n = group.order
    regressors = np.stack([_regressor(group, irrep.label).reshape(-1) for irrep in irreps(group)])  # [irreps, n³]
    gram = regressors @ regressors.T
    # <r_ρ, r_σ> = n² Σ_g χ_ρ χ_σ = n³ <χ_ρ, χ_σ>: 0 off the diagonal, n³ (real type) or 2 n³ (complex type).
    expected = np.diag([n**3 * (2.0 if irrep.kind == "complex" else 1.0) for irrep in irreps(group)])
    np.testing.assert_allclose(gram, expected, atol=1e-8 * n**3)


def test_character_fve_of_one_character_is_one():
    group = parse_group("S4")
    logits = 3.0 * _regressor(group, "3,1") + 5.0 * _row_noise(group)  # [576, 24]
    fves = character_fve(group, torch.tensor(logits, dtype=torch.float32))
    assert fves["3,1"] == pytest.approx(1.0, abs=1e-6)
    assert all(abs(value) < 1e-6 for label, value in fves.items() if label != "3,1")
    assert fves["4"] == 0.0  # the trivial irrep


def test_character_fve_splits_a_mix_by_the_regressor_norms():
    # S4, both real type (|r|² = n³): L = 2 r_sign + r_std has |L|² = 5 n³, FVE = 4/5 and 1/5.
    s4 = parse_group("S4")
    fves = character_fve(s4, 2 * _regressor(s4, "1,1,1,1") + _regressor(s4, "3,1") + _row_noise(s4))
    assert fves["1,1,1,1"] == pytest.approx(4 / 5, abs=1e-12)
    assert fves["3,1"] == pytest.approx(1 / 5, abs=1e-12)
    assert sum(fves.values()) == pytest.approx(1.0, abs=1e-12)
    # A4: "2,2" is of complex type, |r|² = 2 n³. L = 2 r_{3,1} + r_{2,2}: |L|² = 4 n³ + 2 n³ = 6 n³,
    # FVE_{3,1} = (2 n³)² / (n³ 6 n³) = 2/3 and FVE_{2,2} = (2 n³)² / (2 n³ 6 n³) = 1/3.
    a4 = parse_group("A4")
    fves = character_fve(a4, 2 * _regressor(a4, "3,1") + _regressor(a4, "2,2") + _row_noise(a4, 1))
    assert fves["3,1"] == pytest.approx(2 / 3, abs=1e-12)
    assert fves["2,2"] == pytest.approx(1 / 3, abs=1e-12)
    assert fves["4"] == 0.0


def test_character_fve_on_zp_is_the_fve_of_cos_w_a_plus_b_minus_c():
    p = 11
    _, _, logits = _model(p, scale=20.0)
    fves = character_fve(f"Z{p}", logits)
    L = logits.double().reshape(p, p, p)
    L = L - L.mean(dim=2, keepdim=True)
    a, b, c = torch.meshgrid(*[torch.arange(p, dtype=torch.float64)] * 3, indexing="ij")
    for k in range(1, p // 2 + 1):
        r = torch.cos(2 * math.pi * k * (a + b - c) / p)
        expected = float((L * r).sum() ** 2 / ((r * r).sum() * (L * L).sum()))
        assert fves[f"freq {k}"] == pytest.approx(expected, rel=1e-9, abs=1e-15)
    assert 0 < sum(fves.values()) <= 1


# --- neurons ---------------------------------------------------------------------------------------


def test_neuron_irreps_of_known_neurons():
    group = parse_group("S4")
    n = group.order
    a, b = np.divmod(np.arange(n * n), n)
    standard, pair = _irrep(group, "3,1").matrices, _irrep(group, "2,2").matrices
    columns = [
        standard[group.table[a, b], 0, 1],  # ρ(a)ρ(b) entry (0, 1): the (ρ, ρ) block
        pair[a, 1, 0] - 2.0,  # a function of a alone: the (ρ, trivial) block
        np.full(n * n, 0.7),  # constant: dead
        standard[a, 0, 0] * pair[b, 0, 0],  # (3,1) x (2,2): a cross term, in no irrep's blocks
        standard[b, 2, 2] + 0.5 * pair[group.table[a, b], 1, 1],  # (trivial, ρ) + (σ, σ)
    ]
    acts = torch.tensor(np.stack(columns, axis=1), dtype=torch.float32)  # [576, 5]
    result = neuron_irreps(group, acts)
    labels = result.labels
    assert [labels[i] if i >= 0 else None for i in result.irrep[:2]] == ["3,1", "2,2"]
    np.testing.assert_allclose(result.fve[:2], 1.0, atol=1e-6)
    assert result.dead.tolist() == [False, False, True, False, False]
    assert result.irrep[2] == -1 and result.fve[2] == 0.0 and not result.fves[2].any()
    assert np.abs(result.fves[3]).max() < 1e-6  # alive, but no single irrep explains it
    # Column 4: |ρ_22(b)|² over the grid = n·n/3 (Schur: Σ_g ρ_ij² = n/d), |0.5 σ_11(ab)|² = 0.25 · n·n/2.
    energy_std, energy_pair = n * n / 3, 0.25 * n * n / 2
    assert labels[result.irrep[4]] == "3,1"
    assert result.fve[4] == pytest.approx(energy_std / (energy_std + energy_pair), abs=1e-6)
    assert result.fves[4, labels.index("2,2")] == pytest.approx(energy_pair / (energy_std + energy_pair), abs=1e-6)
    assert np.all(result.fves.sum(axis=1) <= 1 + 1e-9)
    assert clustered_fraction(result) == pytest.approx(2 / 5)
    assert neuron_counts(result) == {"3,1": 1, "2,2": 1}
    assert neuron_counts(result, threshold=0.6) == {"3,1": 2, "2,2": 1}


def test_neuron_irreps_on_zp_are_the_modular_neuron_fves():
    p, d_mlp = 13, 40
    acts = torch.relu(torch.randn(p * p, d_mlp, generator=torch.Generator().manual_seed(3)))
    acts[:, 7] = 1.5  # a dead neuron
    result = neuron_irreps(f"Z{p}", acts)
    stats = neuron_stats(acts.reshape(p, p, d_mlp))
    # Irrep k of Z_p is "freq k" (index k); the modular fve puts frequency k at column k - 1.
    np.testing.assert_allclose(result.fves[:, 1:], stats.fve.double().numpy(), atol=1e-5)
    assert result.fves[:, 0].tolist() == [0.0] * d_mlp
    assert result.dead.tolist() == stats.dead.tolist()
    alive = ~result.dead
    assert result.irrep[alive].tolist() == stats.frequency[torch.from_numpy(alive)].tolist()
    assert result.irrep[7] == -1


def test_key_irreps_by_neurons_then_by_character_fve():
    labels = ["trivial", "a", "b", "c"]
    irrep = np.array([1, 1, 1, 2, 2, 2, 2, 3, 1, -1])
    fve = np.array([0.9, 0.95, 0.99, 0.9, 0.9, 0.86, 0.9, 0.99, 0.5, 0.0])
    neurons = NeuronIrreps(irrep, fve, labels, np.zeros((10, 4)), irrep < 0)
    assert key_irreps(neurons) == ["b", "a"]  # default min_neurons max(2, ceil(10/100)) = 2: "c" has 1
    assert key_irreps(neurons, min_neurons=1) == ["b", "a", "c"]
    assert key_irreps(neurons, threshold=0.96) == []  # nobody has 2, no character FVEs to fall back on
    assert key_irreps(neurons, {"trivial": 0.0, "a": 0.04, "b": 0.3, "c": 0.06}, threshold=0.96) == ["b", "c"]


# --- spectra ---------------------------------------------------------------------------------------


def test_embedding_spectrum_of_one_irreps_basis_functions():
    group = parse_group("S4")
    matrices = _irrep(group, "2,2").matrices  # [24, 2, 2]
    W_E = np.concatenate([matrices.reshape(24, 4), np.random.default_rng(0).standard_normal((1, 4))])  # '=' last
    spectrum = embedding_spectrum(group, torch.tensor(W_E))
    assert spectrum["2,2"] == pytest.approx(1.0, abs=1e-12)
    assert sum(abs(v) for label, v in spectrum.items() if label != "2,2") < 1e-12
    # The same functions as W_U's columns (functions of the answer): all in "2,2" too.
    assert unembedding_spectrum(group, W_E[:24].T)["2,2"] == pytest.approx(1.0, abs=1e-12)
    # One irrep holds everything: the Gini of the other non-trivial norms is 1 - 1/(number of them).
    assert embedding_gini(group, W_E) == pytest.approx(1 - 1 / (len(irreps(group)) - 1))


def test_spectra_on_zp_match_the_modular_fourier_spectra():
    p = 11
    _, params, _ = _model(p, seed=2)
    W_E, W_U = params["embed.W_E"], params["unembed.W_U"]
    spectrum = embedding_spectrum(f"Z{p}", W_E)
    norms = fourier.embed_spectrum(params).double()  # [K]
    total = float(W_E[:p].double().pow(2).sum())
    for k in range(1, p // 2 + 1):
        assert spectrum[f"freq {k}"] == pytest.approx(float(norms[k - 1] ** 2) / total, rel=1e-5)
    assert sum(spectrum.values()) == pytest.approx(1.0)
    assert embedding_gini(f"Z{p}", W_E) == pytest.approx(gini(norms), abs=1e-6)  # progress' gini_embed
    unembedding = unembedding_spectrum(f"Z{p}", W_U)
    u_norms = fourier.frequency_norms(fourier.fourier_basis(p, torch.float64) @ W_U.double().T)
    for k in range(1, p // 2 + 1):
        assert unembedding[f"freq {k}"] == pytest.approx(float(u_norms[k - 1] ** 2 / W_U.double().pow(2).sum()))


# --- restricted and excluded loss ------------------------------------------------------------------


def _loss(group, logits, pairs=None) -> float:
    labels = torch.from_numpy(group.table.reshape(-1).copy())
    logits = torch.as_tensor(logits).double()
    if pairs is not None:
        logits, labels = logits[pairs], labels[pairs]
    return float(F.cross_entropy(logits, labels))


def test_product_span_on_zp_is_progress_restricted_and_excluded_loss():
    p = 11
    cfg, params, logits = _model(p, seed=1, scale=30.0)  # scaled: losses far apart
    dataset = cfg.dataset()
    key = [1, 3]
    restricted, excluded = restricted_and_excluded_logits(f"Z{p}", logits, [f"freq {k}" for k in key], "product")
    np.testing.assert_allclose(restricted, project_logits(logits.double(), key, "keep").numpy(), atol=1e-9)
    np.testing.assert_allclose(excluded, project_logits(logits.double(), key, "remove").numpy(), atol=1e-9)
    measures = progress_measures_from_logits(params, logits, dataset, key)
    ours = restricted_and_excluded_loss(
        f"Z{p}", logits, ["freq 3", "freq 1"], None, dataset.train_idx.numpy(), span="product"
    )
    assert ours == pytest.approx((measures["restricted_loss"], measures["excluded_loss"]), rel=1e-6)
    assert abs(ours[0] - ours[1]) > 0.1  # not two copies of log p


def test_character_span_on_zp_is_the_projection_on_cos_sin_w_a_plus_b_minus_c():
    p = 7
    _, _, logits = _model(p, seed=4, scale=10.0)
    a, b, c = (t.reshape(-1) for t in torch.meshgrid(*[torch.arange(p, dtype=torch.float64)] * 3, indexing="ij"))
    L = logits.double().reshape(-1)  # [p³] in (a, b, c) order
    design = torch.stack([f(2 * math.pi * k * (a + b - c) / p) for k in (1, 3) for f in (torch.cos, torch.sin)], 1)
    projected = design @ torch.linalg.lstsq(design, L[:, None]).solution[:, 0]  # [p³]
    mean_per_class = logits.double().mean(dim=0)  # [p]
    restricted, excluded = restricted_and_excluded_logits(f"Z{p}", logits, ["freq 1", "freq 3"])
    np.testing.assert_allclose(restricted, (projected.reshape(p * p, p) + mean_per_class).numpy(), atol=1e-9)
    np.testing.assert_allclose(excluded, (L - projected).reshape(p * p, p).numpy(), atol=1e-9)


@pytest.mark.parametrize("span", ["character", "product"])
def test_keeping_everything_and_removing_nothing(span):
    group = parse_group("D4")
    n = group.order
    rng = np.random.default_rng(5)
    logits = rng.standard_normal((n * n, n)) * 4  # general logits
    everything = [irrep.label for irrep in irreps(group)]
    full = _loss(group, logits)
    # Removing nothing leaves the logits as they are, on any pairs.
    pairs = rng.permutation(n * n)[:20]
    _, excluded = restricted_and_excluded_loss(group, logits, [], pairs, pairs, span)
    assert excluded == _loss(group, logits, pairs)
    restricted, excluded = restricted_and_excluded_logits(group, logits, ["rot 1", "alt"], span)
    np.testing.assert_allclose(restricted + excluded, logits + logits.mean(axis=0), atol=1e-12)
    # Keeping every irrep gives back the logits of the span's kind of function, and so the full loss:
    # "product": f(a·b, c) + h(a, b); "character": f(a·b·c⁻¹) + μ(c) + h(a, b).
    if span == "product":
        structured = rng.standard_normal((n, n))[group.table.reshape(-1)]
    else:
        structured = rng.standard_normal(n)[_g_of(group)] + rng.standard_normal(n)
    structured = 4 * structured + _row_noise(group)
    restricted, _ = restricted_and_excluded_loss(group, structured, everything, span=span)
    assert restricted == pytest.approx(_loss(group, structured), rel=1e-12)
    assert restricted_and_excluded_loss(group, structured, [], span=span)[1] == pytest.approx(_loss(group, structured))
    # On general logits keeping everything is not the original (the span misses their other parts).
    assert restricted_and_excluded_loss(group, logits, everything, span=span)[0] != pytest.approx(full)


def test_unknown_irreps_and_spans_are_refused():
    with pytest.raises(ValueError, match="not irreps of S3"):
        restricted_and_excluded_loss("S3", np.zeros((36, 6)), ["freq 1"])
    with pytest.raises(ValueError, match="span"):
        restricted_and_excluded_logits("S3", np.zeros((36, 6)), [], span="pairs")
    with pytest.raises(ValueError, match=r"\[36, 6\]"):
        character_fve("S3", np.zeros((36, 5)))


# --- one checkpoint --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["S3", "D4"])
def test_summary_of_a_tiny_random_model(name):
    group = parse_group(name)
    n = group.order
    params = _group_params(n, seed=n)
    order = np.random.default_rng(0).permutation(n * n)
    train, test = order[: n * n // 2], order[n * n // 2 :]
    out = summarise_group_checkpoint(name, params, train_idx=torch.from_numpy(train), test_idx=test)
    keys = {
        "group", "order", "train_loss", "test_loss", "train_accuracy", "test_accuracy", "irrep_dims", "key_irreps",
        "character_fve", "embedding_spectrum", "unembedding_spectrum", "neuron_irrep_counts",
        "fraction_neurons_clustered", "restricted_loss", "excluded_loss", "gini_embed",
    }  # fmt: skip
    assert keys <= set(out)
    json.loads(json.dumps(out))  # JSON-able
    assert out["group"] == name and out["order"] == n
    labels = [irrep.label for irrep in irreps(group)]
    assert list(out["irrep_dims"]) == labels
    assert sum(d * d for d in out["irrep_dims"].values()) == n  # S3 and D4: every irrep of real type
    logits = forward_all_pairs(params)
    assert out["train_loss"] == pytest.approx(_loss(group, logits, train))
    assert out["test_loss"] == pytest.approx(_loss(group, logits, test))
    labels_flat = torch.from_numpy(group.table.reshape(-1).copy())
    correct = (logits.argmax(dim=1) == labels_flat).double()
    assert out["train_accuracy"] == pytest.approx(float(correct[train].mean()))
    for key in ("train_accuracy", "test_accuracy", "fraction_neurons_clustered", "gini_embed"):
        assert 0 <= out[key] <= 1
    for key in ("character_fve", "embedding_spectrum", "unembedding_spectrum"):
        assert set(out[key]) == set(labels) and all(v >= 0 for v in out[key].values())
        assert sum(out[key].values()) <= 1 + 1e-9
    assert sum(out["embedding_spectrum"].values()) == pytest.approx(1.0)
    assert sum(out["neuron_irrep_counts"].values()) == round(out["fraction_neurons_clustered"] * out["n_neurons"])
    assert set(out["key_irreps"]) <= set(labels)
    restricted, excluded = restricted_and_excluded_loss(group, logits, out["key_irreps"], None, train)
    assert (out["restricted_loss"], out["excluded_loss"]) == pytest.approx((restricted, excluded))
    assert math.isfinite(out["restricted_loss_product"]) and math.isfinite(out["excluded_loss_product"])
