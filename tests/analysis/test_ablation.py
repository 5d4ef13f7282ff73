"""Frequency ablation at three sites, prediction, attention (grokviz.analysis.ablation, baseline, projections).

Mathematical facts on small random models and synthetic logits; the grokked-model facts on a
p = 29 model that this module trains once (about 7 s on one core; it really groks: test
accuracy 100%) and on the bundled p = 113 run when it is present and finished.
"""

from __future__ import annotations

import math

import pytest
import torch

from grokviz.analysis.ablation import ablate, ablate_baseline, predict, site_baseline
from grokviz.analysis.attention import attention_to
from grokviz.analysis.baseline import Baseline, baseline, evaluate
from grokviz.analysis.fourier import fourier_2d, fourier_basis, inverse_fourier_2d, n_frequencies
from grokviz.analysis.neurons import key_frequencies, neuron_activations, neuron_stats
from grokviz.analysis.projections import SITES, ablated_logits, project_logits, residue_sign
from grokviz.core.config import Config, dataset_for
from grokviz.core.fast_path import all_pairs, forward_all_pairs, forward_last
from grokviz.core.forward import forward
from grokviz.core.params import init_params
from grokviz.core.tasks import make_dataset
from grokviz.storage.runs import open_run


@pytest.fixture(scope="module")
def grokked(grokked_run):
    run = grokked_run
    cfg = run.config
    params = run.load(cfg.steps)
    dataset = dataset_for(cfg)
    keys = key_frequencies(neuron_stats(neuron_activations(params)))
    return params, dataset, keys


@pytest.fixture(scope="module")
def random_model():
    cfg = Config(p=23, d_model=32, d_mlp=64, n_heads=4, d_head=8, frac_train=0.5, seed=3)
    return init_params(cfg), dataset_for(cfg)


def _explicit_logit_projection(logits, frequencies, sign=1):
    """ANALYSIS.md's formula with explicit unit vectors c_k, s_k in R^{p^2}."""
    p = logits.shape[1]
    a, b = all_pairs(p)
    projected = torch.zeros_like(logits, dtype=torch.float64)
    for k in frequencies:
        angle = 2 * math.pi * k * (a + sign * b).double() / p
        for direction in (torch.cos(angle), torch.sin(angle)):
            unit = direction / direction.norm()  # [p^2]
            projected += unit[:, None] * (unit @ logits.double())[None, :]
    return projected


# --- mathematical facts ---------------------------------------------------------------------


@pytest.mark.parametrize("sign", [1, -1])
def test_logit_projection_equals_the_explicit_formula(sign):
    p = 11
    logits = torch.randn(p * p, p, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    frequencies = [2, 5]
    projected = _explicit_logit_projection(logits, frequencies, sign)
    removed = project_logits(logits, frequencies, "remove", sign)
    assert torch.allclose(removed, logits - projected, atol=1e-10)
    kept = project_logits(logits, frequencies, "keep", sign)
    correction = (logits - projected).mean(dim=0, keepdim=True)  # the reference code's bias fix
    assert torch.allclose(kept, projected + correction, atol=1e-10)


@pytest.mark.parametrize("task, sign", [("add", 1), ("sub", -1)])
def test_a_pure_rotation_is_all_in_its_frequency(task, sign):
    p, k = 13, 4
    dataset = make_dataset(task, p, 0.5, 0)
    assert residue_sign(dataset) == sign
    a, b = all_pairs(p)
    c = torch.arange(p)
    logits = torch.cos(2 * math.pi * k * ((a + sign * b)[:, None] - c[None, :]).double() / p)  # [p^2, p]
    assert project_logits(logits, [k], "remove", sign).abs().max() < 1e-10
    assert torch.allclose(project_logits(logits, [k], "keep", sign), logits, atol=1e-10)
    assert torch.allclose(project_logits(logits, [k + 1], "remove", sign), logits, atol=1e-10)
    metrics, grid = evaluate(logits.float(), dataset)  # cos peaks at the answer: all correct
    assert metrics["all"].accuracy == 1.0 and grid.all()


@pytest.mark.parametrize("site", SITES)
def test_ablating_nothing_changes_nothing(random_model, site):
    params, dataset = random_model
    result = ablate(params, dataset, [], "remove", site)
    assert set(result.before) == set(result.after) == {"train", "test", "all"}
    for split in ("train", "test", "all"):
        assert result.after[split].loss == pytest.approx(result.before[split].loss, rel=1e-6)
        assert result.after[split].accuracy == result.before[split].accuracy
    assert torch.equal(result.correct_after, result.correct_before)
    base = baseline(params)
    assert torch.allclose(ablated_logits(base, [], "remove", site, params), base.logits, atol=1e-5)


@pytest.mark.parametrize("site", ["logits", "embedding"])
def test_keep_only_all_frequencies_equals_the_original(random_model, site):
    params, dataset = random_model
    p = dataset.p
    everything = range(1, n_frequencies(p) + 1)
    base = baseline(params)
    kept = ablated_logits(base, everything, "keep", site, params)
    if site == "logits":
        # Keep-all at the logits keeps every function of a+b; a random model also uses the
        # rest, so compare with the explicit formula instead of the original.
        expected = _explicit_logit_projection(base.logits, everything) + (
            base.logits.double() - _explicit_logit_projection(base.logits, everything)
        ).mean(0)
        assert torch.allclose(kept.double(), expected, atol=1e-4)
    else:
        assert torch.allclose(kept, base.logits, atol=1e-4)
    result = ablate(params, dataset, everything, "keep", site)
    if site == "embedding":
        assert result.after["all"].loss == pytest.approx(result.before["all"].loss, rel=1e-5)


def test_keep_only_all_frequencies_at_the_logits_is_the_original_for_a_function_of_a_plus_b():
    p = 11
    a, b = all_pairs(p)
    table = torch.randn(p, p, generator=torch.Generator().manual_seed(2), dtype=torch.float64)  # [s, class]
    logits = table[(a + b) % p]  # depends on (a, b) only through a+b
    kept = project_logits(logits, range(1, n_frequencies(p) + 1), "keep")
    assert torch.allclose(kept, logits, atol=1e-10)


def test_neuron_site_equals_rerunning_the_model_with_projected_activations(random_model):
    params, dataset = random_model
    p = dataset.p
    base = baseline(params)
    chosen = [2, 7]
    mask = torch.zeros(p, p)
    for k in chosen:
        block = torch.tensor([0, 2 * k - 1, 2 * k])
        mask[block[:, None], block[None, :]] = 1.0
    mask[0, 0] = 0.0  # the mean is no frequency's: kept in both modes
    F = fourier_2d(base.acts)
    mean = torch.zeros(p, p)
    mean[0, 0] = 1.0
    for mode, kept_entries in (("remove", 1 - mask), ("keep", mask + mean)):
        projected = inverse_fourier_2d(F * kept_entries[:, :, None])  # [p, p, d_mlp]
        hooks = {"blocks.0.mlp.hook_post": lambda _: projected.reshape(p * p, -1)}
        a, b = all_pairs(p)
        with torch.no_grad():
            expected = forward_last(params, a, b, hooks=hooks)
        got = ablated_logits(base, chosen, mode, "neurons")
        assert torch.allclose(got, expected, atol=1e-4), mode


def test_embedding_site_equals_rerunning_with_a_projected_embedding(random_model):
    params, dataset = random_model
    p = dataset.p
    basis = fourier_basis(p)
    coefficients = basis @ params["embed.W_E"][:p]  # [p, d_model]
    removed = coefficients.clone()
    removed[[5, 6]] = 0  # frequency 3's cos and sin rows
    changed = dict(params)
    changed["embed.W_E"] = torch.cat([basis.T @ removed, params["embed.W_E"][p:]])
    expected = forward_all_pairs(changed)
    got = ablated_logits(baseline(params), [3], "remove", "embedding", params)
    assert torch.allclose(got, expected, atol=1e-4)
    # The '=' row is untouched.
    # A baseline of logits only (the app's, for this site) needs the weights passed in.
    logits_only = Baseline(p=p, logits=baseline(params).logits, acts=None)
    with pytest.raises(ValueError):
        ablated_logits(logits_only, [3], "remove", "embedding")


def test_evaluate_matches_the_model_and_handles_missing_pairs():
    cfg = Config(task="div", p=23, d_model=32, d_mlp=64, n_heads=4, d_head=8, frac_train=0.5)
    params = init_params(cfg)
    dataset = dataset_for(cfg)
    assert len(dataset.a) == 23 * 22  # no b = 0
    result = ablate(params, dataset, [1, 2], "remove", "logits")
    assert result.correct_before.shape == (23, 23) and result.correct_before.dtype == torch.bool
    assert not result.correct_before[:, 0].any() and not result.correct_after[:, 0].any()
    assert result.before["all"].accuracy == pytest.approx(float(result.correct_before.sum()) / len(dataset.a))
    tokens = dataset.tokens
    with torch.no_grad():
        logits = forward(params, tokens[dataset.train_idx])
    loss = torch.nn.functional.cross_entropy(logits.double(), dataset.labels[dataset.train_idx])
    assert result.before["train"].loss == pytest.approx(float(loss), rel=1e-5)
    accuracy = (logits.argmax(-1) == dataset.labels[dataset.train_idx]).double().mean()
    assert result.before["train"].accuracy == pytest.approx(float(accuracy))


def test_bad_arguments_raise(random_model):
    params, dataset = random_model
    with pytest.raises(ValueError):
        ablate(params, dataset, [1], "drop", "logits")
    with pytest.raises(ValueError):
        ablate(params, dataset, [1], "remove", "attention")
    with pytest.raises(ValueError):
        ablate(params, dataset, [12], "remove", "logits")  # p = 23 has frequencies 1..11


def test_attention_to_is_the_equals_query_pattern(random_model):
    params, dataset = random_model
    p = dataset.p
    pattern = attention_to(params)
    assert pattern.shape == (4, p, p, 3)
    assert torch.allclose(pattern.sum(-1), torch.ones(4, p, p), atol=1e-5)
    a, b = all_pairs(p)
    cache: dict = {}
    with torch.no_grad():
        forward(params, torch.stack([a, b, torch.full_like(a, p)], 1), cache=cache)
    full = cache["blocks.0.attn.hook_pattern"][:, :, 2, :]  # [p^2, head, key]
    assert torch.allclose(pattern, full.reshape(p, p, 4, 3).permute(2, 0, 1, 3), atol=1e-5)


def test_predict_decomposes_the_correct_logit(random_model):
    params, dataset = random_model
    p = dataset.p
    prediction = predict(params, 3, 8, range(1, n_frequencies(p) + 1), label=11)
    with torch.no_grad():
        expected = forward_last(params, torch.tensor([3]), torch.tensor([8]))[0]
    assert torch.allclose(prediction.logits, expected)
    assert prediction.answer == int(expected.argmax()) and prediction.label == 11
    # Exact decomposition over the output axis: mean + every frequency's wave.
    assert prediction.mean_logit + sum(prediction.contributions.values()) == pytest.approx(
        float(expected[11]), abs=1e-4
    )
    assert torch.allclose(prediction.components.sum(0) + prediction.mean_logit, expected, atol=1e-4)
    assert predict(params, 3, 8, [2]).label == prediction.answer  # label defaults to the answer


# --- a genuinely grokked model (p = 29) -------------------------------------------------------


def test_small_grokked_model_facts(grokked):
    params, dataset, keys = grokked
    p = dataset.p
    base = baseline(params)
    metrics, grid = evaluate(base.logits, dataset)
    assert metrics["test"].accuracy == 1.0 and metrics["train"].accuracy == 1.0 and grid.all()
    assert 2 <= len(keys) <= 6 and min(keys.values()) >= 5, keys
    chance = 1 / p
    for site in SITES:
        removed = ablate_baseline(base, params, dataset, keys, "remove", site)
        assert removed.after["test"].accuracy < 4 * chance, site
        assert removed.after["train"].loss > math.log(p), site  # far above chance loss
    kept = ablate_baseline(base, params, dataset, keys, "keep", "logits")
    for split in ("train", "test", "all"):
        assert kept.after[split].accuracy == 1.0
    # The restricted loss (all pairs) is at or below the original; on the training pairs alone
    # the memorising remainder still helps a little at this size (5e-8 -> 7e-8).
    assert kept.after["all"].loss <= kept.before["all"].loss
    assert kept.after["test"].loss <= kept.before["test"].loss
    assert kept.after["train"].loss < 1e-6
    everything = range(1, n_frequencies(p) + 1)
    gone = ablate_baseline(base, params, dataset, everything, "remove", "logits")
    assert gone.after["all"].accuracy < 2 * chance
    assert not gone.correct_after.float().mean() > 2 * chance


def test_small_grokked_key_frequencies_interfere_constructively(grokked):
    params, dataset, keys = grokked
    p = dataset.p
    for a, b in ((0, 0), (3, 17), (28, 28), (11, 5)):
        label = (a + b) % p
        prediction = predict(params, a, b, keys, label)
        assert prediction.answer == label
        assert all(value > 0 for value in prediction.contributions.values()), prediction.contributions
        # Each key frequency's wave is near its crest at the answer (within 20%: the waves' phases
        # are not exactly aligned in a small model), and their sum peaks exactly there.
        crest = prediction.components.max(dim=1).values
        assert (prediction.components[:, label] >= 0.8 * crest).all()
        assert int(prediction.components.sum(dim=0).argmax()) == label


@pytest.mark.parametrize("mode", ["remove", "keep"])
@pytest.mark.parametrize("site", SITES)
def test_ablate_in_one_call_equals_the_two_step_path(grokked, site, mode):
    # The app's two steps: the full baseline at the neurons site (it needs the activations), a
    # logits-only one elsewhere, then ablate_baseline. ablate builds that baseline itself, or takes one.
    params, dataset, keys = grokked
    p = dataset.p
    logits_only = Baseline(p=p, logits=forward_all_pairs(params), acts=None)
    chosen_base = baseline(params) if site == "neurons" else logits_only
    expected = ablate_baseline(chosen_base, params, dataset, keys, mode, site)
    assert expected.before["test"].accuracy == 1.0 and expected.before["train"].accuracy == 1.0
    if mode == "remove":
        assert expected.after["test"].accuracy < 4 / p and expected.after["train"].loss > math.log(p)
    else:
        assert expected.after["test"].accuracy == 1.0
    for got in (
        ablate(params, dataset, keys, mode, site),
        ablate(params, dataset, keys, mode, site, base=chosen_base),
        ablate(params, dataset, keys, mode, site, base=site_baseline(params, site)),
    ):
        assert (got.frequencies, got.mode, got.site) == (sorted(keys), mode, site)
        for split in ("train", "test", "all"):
            assert got.before[split] == expected.before[split]  # the same numbers, bit for bit
            assert got.after[split] == expected.after[split]
        assert torch.equal(got.correct_before, expected.correct_before)
        assert torch.equal(got.correct_after, expected.correct_after)
    # Only the neurons site needs (and gets) the activations.
    assert (site_baseline(params, site).acts is not None) == (site == "neurons")


# --- the bundled p = 113 run ------------------------------------------------------------------


@pytest.fixture(scope="module")
def bundled(bundled_run_path):
    run = open_run(bundled_run_path)
    if run.config.steps not in run.steps():
        pytest.skip(f"the bundled run at {bundled_run_path} is still training")
    cfg = run.config
    params = run.load(cfg.steps)
    dataset = dataset_for(cfg)
    return params, dataset, key_frequencies(neuron_stats(neuron_activations(params)))


def test_bundled_run_is_grokked_with_a_handful_of_key_frequencies(bundled):
    params, dataset, keys = bundled
    base = baseline(params)
    metrics, _ = evaluate(base.logits, dataset)
    assert metrics["test"].accuracy == 1.0
    big = {k: n for k, n in keys.items() if n >= 10}
    assert 3 <= len(big) <= 8, keys
    assert sum(big.values()) >= 0.5 * base.acts.shape[2]


@pytest.mark.parametrize("site", SITES)
def test_bundled_run_removing_key_frequencies_collapses_accuracy(bundled, site):
    params, dataset, keys = bundled
    result = ablate(params, dataset, keys, "remove", site)
    assert result.before["test"].accuracy == 1.0
    # At the neurons the residual stream's direct path and the cross-frequency terms survive:
    # 6.4% is left there (2.7% at the logits, 1.0% at the embedding; chance is 0.9%).
    assert result.after["test"].accuracy < (10 if site == "neurons" else 5) / dataset.p
    assert result.after["train"].loss > math.log(dataset.p)


def test_bundled_run_keeping_only_key_frequencies_keeps_everything(bundled):
    params, dataset, keys = bundled
    result = ablate(params, dataset, keys, "keep", "logits")
    for split in ("train", "test", "all"):
        assert result.after[split].accuracy == 1.0
    assert result.after["all"].loss <= result.before["all"].loss
    assert result.after["test"].loss <= result.before["test"].loss
    neurons = ablate(params, dataset, keys, "keep", "neurons")
    assert neurons.after["test"].accuracy == 1.0


# --- the paper's reference checkpoints (shared/fixtures) -------------------------------------------


def _reference_model(fixtures_dir, name):
    from grokviz import interop

    path = fixtures_dir / name
    if not path.is_file():
        pytest.skip(f"{path} missing")
    cfg, params = interop.load_progress_measures_checkpoint(path)
    # The reference code's own train/test split (Python random.shuffle), not grokviz's randperm.
    dataset = dataset_for(cfg)
    assert torch.equal(dataset.train_idx, interop.reference_split(cfg.p, cfg.frac_train, cfg.seed)[0])
    return cfg, params, dataset


@pytest.mark.parametrize(
    "name, expected_keys, keep_embedding_accuracy",
    [
        # Key frequencies measured once and pinned: a different list means the analysis (or the
        # import) changed. Without weight decay the embedding keeps using other frequencies a
        # little, so keeping only the key ones there leaves 89% (99.9% with weight decay).
        ("progress-measures-seed1-wd1.pth", {6: 47, 23: 31, 37: 65, 39: 11, 41: 31}, 0.99),
        ("progress-measures-no-wd.pth", {36: 181, 52: 139}, 0.85),
    ],
)
def test_reference_checkpoints_are_grokked_and_use_their_key_frequencies(
    fixtures_dir, name, expected_keys, keep_embedding_accuracy
):
    cfg, params, dataset = _reference_model(fixtures_dir, name)
    assert cfg.p == 113
    stats = neuron_stats(neuron_activations(params))
    keys = key_frequencies(stats)
    assert keys == expected_keys
    assert all(count >= 10 for count in keys.values())
    base = baseline(params)
    removed = ablate_baseline(base, params, dataset, keys, "remove", "logits")
    assert removed.before["test"].accuracy == 1.0 and removed.before["train"].accuracy == 1.0
    assert removed.after["test"].accuracy < 5 / cfg.p and removed.after["train"].loss > math.log(cfg.p)
    kept = ablate_baseline(base, params, dataset, keys, "keep", "logits")
    for split in ("train", "test", "all"):
        assert kept.after[split].accuracy == 1.0
    assert kept.after["all"].loss <= kept.before["all"].loss
    for site in ("embedding", "neurons"):
        assert ablate_baseline(base, params, dataset, keys, "remove", site).after["test"].accuracy < 5 / cfg.p
    assert ablate_baseline(base, params, dataset, keys, "keep", "neurons").after["test"].accuracy > 0.99
    assert (
        ablate_baseline(base, params, dataset, keys, "keep", "embedding").after["test"].accuracy
        > keep_embedding_accuracy
    )


def test_bundled_run_removing_every_frequency_is_chance(bundled):
    params, dataset, _ = bundled
    p = dataset.p
    base = baseline(params)
    everything = range(1, n_frequencies(p) + 1)
    for site, limit in (("logits", 2 / p), ("embedding", 2 / p), ("neurons", 6 / p)):
        # measured: 1.0%, 0.9%, 4.3% (chance 0.9%); the neurons site keeps the direct path and cross terms
        assert ablate_baseline(base, params, dataset, everything, "remove", site).after["test"].accuracy < limit, site
