"""Neuron FVE, frequencies, key frequencies and the cos·cos / sin·sin probe (grokviz.neurons)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from grokviz.analysis.neurons import (
    TERMS,
    key_frequencies,
    neuron_activations,
    neuron_frequency_counts,
    neuron_stats,
    probe,
    probe_coefficients,
    term_correlations,
    term_values,
)
from grokviz.core.config import Config
from grokviz.core.forward import forward
from grokviz.core.params import init_params

P = 23


def _grid(p: int = P) -> tuple[torch.Tensor, torch.Tensor]:
    a = torch.arange(p, dtype=torch.float64)[:, None].expand(p, p)
    b = torch.arange(p, dtype=torch.float64)[None, :].expand(p, p)
    return a, b


def _synthetic_acts() -> torch.Tensor:
    """[P, P, 5]: cos(w3(a+b)), dead, noise, cos(w5 a) + 2, relu(cos(w4 a)cos(w4 b))."""
    a, b = _grid()
    w = lambda k: 2 * math.pi * k / P  # noqa: E731
    noise = torch.randn(P, P, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    columns = [
        torch.cos(w(3) * (a + b)),
        torch.zeros(P, P, dtype=torch.float64),
        noise,
        torch.cos(w(5) * a) + 2.0,
        torch.relu(torch.cos(w(4) * a) * torch.cos(w(4) * b)),
    ]
    return torch.stack(columns, dim=-1).float()


@pytest.fixture(scope="module")
def tiny_params():
    cfg = Config(p=P, d_model=32, d_mlp=64, n_heads=4, d_head=8, frac_train=0.5)
    return cfg, init_params(cfg)


def test_neuron_activations_match_the_full_forward(tiny_params):
    cfg, params = tiny_params
    acts = neuron_activations(params)
    assert acts.shape == (P, P, cfg.d_mlp)
    a, b = (t.reshape(-1).long() for t in _grid())
    tokens = torch.stack([a, b, torch.full_like(a, P)], dim=1)
    cache: dict = {}
    with torch.no_grad():
        forward(params, tokens, cache=cache)
    expected = cache["blocks.0.mlp.hook_post"][:, 2].reshape(P, P, cfg.d_mlp)
    assert torch.allclose(acts, expected, atol=1e-5)


def test_fve_frequency_clustered_dead_on_synthetic_neurons():
    stats = neuron_stats(_synthetic_acts())
    assert stats.fve.shape == (5, (P - 1) // 2)
    # cos(w3(a+b)) = cos cos - sin sin: all of it in frequency 3's block.
    assert float(stats.fve[0, 2]) == pytest.approx(1.0, abs=1e-5)
    assert int(stats.frequency[0]) == 3 and bool(stats.clustered[0])
    # A dead neuron has no frequency and is never clustered.
    assert bool(stats.dead[1]) and int(stats.frequency[1]) == 0 and not bool(stats.clustered[1])
    assert float(stats.best_fve[1]) == 0.0 and float(stats.fve[1].abs().sum()) == 0.0
    # Noise spreads its variance: no frequency explains much.
    assert not bool(stats.clustered[2]) and float(stats.best_fve[2]) < 0.3
    # A constant offset is not variance: cos(w5 a) + 2 is pure frequency 5.
    assert int(stats.frequency[3]) == 5 and float(stats.best_fve[3]) == pytest.approx(1.0, abs=1e-5)
    # relu(cos cos) leaks into multiples of 4 (8, 12 = -11 mod 23, ...) but 4 stays the best.
    assert int(stats.frequency[4]) == 4
    assert not stats.dead[[0, 2, 3, 4]].any()
    assert key_frequencies(stats) == {3: 1, 5: 1} | ({4: 1} if stats.clustered[4] else {})
    assert stats.fraction_clustered == pytest.approx(float(stats.clustered.float().mean()))


def test_threshold_moves_the_clustered_set():
    acts = _synthetic_acts()
    best = float(neuron_stats(acts).best_fve[4])
    assert bool(neuron_stats(acts, threshold=best - 1e-3).clustered[4])
    assert not bool(neuron_stats(acts, threshold=best + 1e-3).clustered[4])


def test_fves_of_a_neuron_sum_to_at_most_one(tiny_params):
    _, params = tiny_params
    for acts in (
        neuron_activations(params),
        _synthetic_acts(),
        torch.rand(P, P, 50, generator=torch.Generator().manual_seed(3)),
    ):
        stats = neuron_stats(acts)
        totals = stats.fve.double().sum(dim=1)
        assert (totals <= 1 + 1e-6).all()
        assert (stats.fve >= 0).all()
    # Random activations: the frequency blocks leave most variance in cross-frequency terms.
    assert float(neuron_stats(torch.rand(P, P, 50)).fve.sum(dim=1).max()) < 0.9


def test_key_frequencies_count_clustered_neurons_only_ascending():
    acts = torch.cat(
        [_synthetic_acts()[:, :, [0]]] * 3 + [_synthetic_acts()[:, :, [3]]] * 2 + [_synthetic_acts()[:, :, [1, 2]]],
        dim=2,
    )
    stats = neuron_stats(acts)
    assert key_frequencies(stats) == {3: 3, 5: 2}
    assert list(key_frequencies(stats)) == [3, 5]
    assert key_frequencies(stats, min_neurons=3) == {3: 3}
    counts = neuron_frequency_counts(stats)  # live neurons by best frequency, clustered or not
    assert counts[3] == 3 and counts[5] == 2 and sum(counts.values()) == 6


def test_probe_coefficients_equal_an_explicit_least_squares_fit(tiny_params):
    _, params = tiny_params
    acts = neuron_activations(params)
    a, b = (t.reshape(-1) for t in _grid())
    for frequency in (1, 6, 11):
        design = term_values(P, frequency, a, b)  # [P*P, 9]
        target = acts.reshape(P * P, -1).double()  # [P*P, d_mlp]
        expected = torch.linalg.lstsq(design, target).solution.T  # [d_mlp, 9]
        assert torch.allclose(probe_coefficients(acts, frequency), expected, atol=1e-8)


def test_probe_of_one_neuron_at_one_input(tiny_params):
    _, params = tiny_params
    acts = neuron_activations(params)
    neuron, a, b = 5, 7, 19
    result = probe(acts, neuron, a, b, frequency=4)
    assert list(result.terms["term"]) == list(TERMS)
    assert list(result.terms.columns) == ["term", "value", "coefficient", "contribution", "correlation"]
    terms = result.terms
    assert np.allclose(terms["contribution"], terms["coefficient"] * terms["value"])
    assert result.fit == pytest.approx(float(terms["contribution"].sum()))
    assert result.activation == pytest.approx(float(acts[a, b, neuron]))
    assert result.residual == pytest.approx(result.activation - result.fit)
    # The fit is the least-squares prediction at (a, b).
    design = term_values(P, 4, *(t.reshape(-1) for t in _grid()))
    solution = torch.linalg.lstsq(design, acts[:, :, neuron].reshape(-1, 1).double()).solution[:, 0]
    assert result.fit == pytest.approx(float(design[a * P + b] @ solution), abs=1e-6)
    assert np.allclose(terms["value"], term_values(P, 4, torch.tensor([a]), torch.tensor([b]))[0].numpy())


def test_probe_reads_the_sum_identity_from_a_cos_of_a_plus_b_neuron():
    acts = _synthetic_acts()
    result = probe(acts, neuron=0, a=4, b=9)  # defaults to the neuron's frequency, 3
    assert result.frequency == 3
    coefficients = dict(zip(result.terms["term"], result.terms["coefficient"]))
    assert coefficients["cos(wa)cos(wb)"] == pytest.approx(1.0, abs=1e-6)
    assert coefficients["sin(wa)sin(wb)"] == pytest.approx(-1.0, abs=1e-6)
    for term in ("const", "cos(wa)", "sin(wa)", "cos(wb)", "sin(wb)", "cos(wa)sin(wb)", "sin(wa)cos(wb)"):
        assert coefficients[term] == pytest.approx(0.0, abs=1e-6)
    assert result.residual == pytest.approx(0.0, abs=1e-5)
    assert result.activation == pytest.approx(math.cos(2 * math.pi * 3 * 13 / P), abs=1e-6)
    correlations = dict(zip(result.terms["term"], result.terms["correlation"]))
    assert math.isnan(correlations["const"])
    assert correlations["cos(wa)cos(wb)"] == pytest.approx(1 / math.sqrt(2), abs=1e-5)
    assert correlations["sin(wa)sin(wb)"] == pytest.approx(-1 / math.sqrt(2), abs=1e-5)
    assert result.fve == pytest.approx(1.0, abs=1e-5)


def test_term_correlations_are_pearson(tiny_params):
    _, params = tiny_params
    acts = neuron_activations(params)
    frequency = 2
    correlations = term_correlations(acts, frequency)
    assert correlations.shape == (acts.shape[2], 9)
    assert torch.isnan(correlations[:, 0]).all()
    design = term_values(P, frequency, *(t.reshape(-1) for t in _grid())).numpy()
    flat = acts.reshape(P * P, -1).double().numpy()
    live = [n for n in range(flat.shape[1]) if flat[:, n].std() > 1e-6][:5]
    assert live
    for n in live:
        for t in range(1, 9):
            expected = np.corrcoef(flat[:, n], design[:, t])[0, 1]
            assert float(correlations[n, t]) == pytest.approx(expected, abs=1e-5)
    dead = term_correlations(torch.zeros(P, P, 2), frequency)
    assert torch.isnan(dead).all()


def test_probe_rejects_bad_inputs():
    acts = _synthetic_acts()
    with pytest.raises(ValueError):
        probe(acts, neuron=99, a=0, b=0)
    with pytest.raises(ValueError):
        probe(acts, neuron=0, a=P, b=0)
    with pytest.raises(ValueError):
        probe(acts, neuron=0, a=0, b=0, frequency=12)


def test_frequency_blocks_equal_the_blocks_of_the_full_transform(tiny_params):
    from grokviz.analysis.fourier import blocks_of, fourier_2d, frequency_blocks

    _, params = tiny_params
    for acts in (
        neuron_activations(params),
        _synthetic_acts(),
        torch.randn(P, P, 7, generator=torch.Generator().manual_seed(5), dtype=torch.float64),
    ):
        fast = frequency_blocks(acts)
        assert fast.shape == ((P - 1) // 2, 3, 3, acts.shape[2])
        full = blocks_of(fourier_2d(acts.double()))
        assert torch.allclose(fast.double(), full, atol=1e-5 * float(full.abs().max()))
        by_coefficients = neuron_stats(acts, coefficients=fourier_2d(acts))
        assert torch.allclose(neuron_stats(acts).fve, by_coefficients.fve, atol=1e-5)
