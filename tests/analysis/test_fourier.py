"""Mathematical facts of the Fourier basis and the spectra (grokviz.fourier)."""

from __future__ import annotations

import math

import pytest
import torch

from grokviz.analysis.fourier import (
    basis_labels,
    embed_spectrum,
    fourier_2d,
    fourier_basis,
    frequency_norms,
    inverse_fourier_2d,
    n_frequencies,
    unembed_spectrum,
)
from grokviz.core.config import Config
from grokviz.core.params import init_params


@pytest.mark.parametrize("p", [5, 23, 113])
def test_basis_is_orthonormal(p):
    basis = fourier_basis(p)
    assert basis.shape == (p, p)
    assert torch.allclose(basis @ basis.T, torch.eye(p), atol=1e-5)
    assert torch.allclose(basis.T @ basis, torch.eye(p), atol=1e-5)


def test_basis_rows_are_const_then_cos_then_sin():
    p = 23
    basis = fourier_basis(p, torch.float64)
    x = torch.arange(p, dtype=torch.float64)
    assert torch.allclose(basis[0], torch.full((p,), 1 / math.sqrt(p), dtype=torch.float64))
    for k in (1, 4, 11):
        cos = torch.cos(2 * math.pi * k * x / p)
        sin = torch.sin(2 * math.pi * k * x / p)
        assert torch.allclose(basis[2 * k - 1], cos / cos.norm())
        assert torch.allclose(basis[2 * k], sin / sin.norm())
    labels = basis_labels(p)
    assert labels[:5] == ["const", "cos 1", "sin 1", "cos 2", "sin 2"]
    assert labels[-1] == "sin 11" and len(labels) == p
    assert n_frequencies(113) == 56 and n_frequencies(23) == 11


def test_basis_rejects_sizes_below_3():
    # Even sizes are allowed since the discrete-log basis of Z_{p-1} (tests/analysis/test_discrete_log.py).
    with pytest.raises(ValueError):
        fourier_basis(2)


def _params_with_embedding(p: int, token_embedding: torch.Tensor) -> dict:
    cfg = Config(p=p, d_model=token_embedding.shape[1], d_mlp=16, n_heads=1, d_head=4)
    params = init_params(cfg)
    params["embed.W_E"][:p] = token_embedding
    return params


@pytest.mark.parametrize("k", [1, 5, 11])
@pytest.mark.parametrize("wave", [torch.cos, torch.sin])
def test_pure_wave_embedding_has_all_its_energy_at_its_frequency(k, wave):
    p, d_model = 23, 8
    x = torch.arange(p, dtype=torch.float32)
    direction = torch.randn(d_model, generator=torch.Generator().manual_seed(k))
    W_E = wave(2 * math.pi * k * x / p)[:, None] * direction[None, :]  # [p, d_model]
    spectrum = embed_spectrum(_params_with_embedding(p, W_E))
    assert spectrum.shape == (n_frequencies(p),)
    assert spectrum[k - 1] == pytest.approx(float(W_E.norm()), rel=1e-5)
    others = torch.cat([spectrum[: k - 1], spectrum[k:]])
    assert others.abs().max() < 1e-5 * float(W_E.norm())


def test_embed_spectrum_ignores_the_equals_row_and_keeps_all_nonconstant_energy():
    p = 23
    params = init_params(Config(p=p, d_model=16, d_mlp=16, n_heads=1, d_head=4))
    spectrum = embed_spectrum(params)
    tokens = params["embed.W_E"][:p]
    centred = tokens - tokens.mean(dim=0)  # the constant row carries the mean
    assert float(spectrum.pow(2).sum()) == pytest.approx(float(centred.pow(2).sum()), rel=1e-5)
    params["embed.W_E"][p] += 100.0
    assert torch.allclose(embed_spectrum(params), spectrum)


def test_unembed_spectrum_of_a_pure_output_wave():
    p, k = 23, 7
    params = init_params(Config(p=p, d_model=16, d_mlp=32, n_heads=1, d_head=4))
    c = torch.arange(p, dtype=torch.float32)
    wave = torch.sin(2 * math.pi * k * c / p) + 0.5 * torch.cos(2 * math.pi * k * c / p)  # [p]
    readout = torch.randn(16, generator=torch.Generator().manual_seed(0))
    params["unembed.W_U"] = readout[:, None] * wave[None, :]  # [d_model, p]
    spectrum = unembed_spectrum(params)
    W_L = params["blocks.0.mlp.W_out"] @ params["unembed.W_U"]
    assert spectrum[k - 1] == pytest.approx(float(W_L.norm()), rel=1e-4)
    assert float(spectrum.sum() - spectrum[k - 1]) < 1e-4 * float(W_L.norm())


def test_fourier_2d_is_b_m_bt_per_channel_and_invertible():
    p = 23
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(p, p, 3, generator=generator, dtype=torch.float64)
    basis = fourier_basis(p, torch.float64)
    F = fourier_2d(x)
    for channel in range(3):
        assert torch.allclose(F[:, :, channel], basis @ x[:, :, channel] @ basis.T)
    assert torch.allclose(inverse_fourier_2d(F), x)
    assert float(F.pow(2).sum()) == pytest.approx(float(x.pow(2).sum()))  # Parseval
    # Works without channels too.
    assert torch.allclose(fourier_2d(x[:, :, 0]), F[:, :, 0])


def test_fourier_2d_of_a_product_wave_is_one_entry():
    p, k, j = 23, 3, 8
    a = torch.arange(p, dtype=torch.float64)
    wave = torch.cos(2 * math.pi * k * a / p)[:, None] * torch.sin(2 * math.pi * j * a / p)[None, :]  # [a, b]
    F = fourier_2d(wave)
    peak = F[2 * k - 1, 2 * j]
    assert float(peak) == pytest.approx(p / 2)  # |cos| = |sin| = sqrt(p/2) over Z_p
    F[2 * k - 1, 2 * j] = 0
    assert F.abs().max() < 1e-9


def test_frequency_norms_groups_cos_and_sin_rows():
    coefficients = torch.zeros(7, 2)
    coefficients[3] = torch.tensor([3.0, 0.0])  # cos 2
    coefficients[4] = torch.tensor([0.0, 4.0])  # sin 2
    coefficients[0] = 100.0  # constant: not a frequency
    assert torch.allclose(frequency_norms(coefficients), torch.tensor([0.0, 5.0, 0.0]))


def test_fourier_coefficient_matrices_match_the_spectra():
    from grokviz.analysis.fourier import embed_fourier, unembed_fourier

    p = 23
    params = init_params(Config(p=p, d_model=16, d_mlp=32, n_heads=1, d_head=4))
    coefficients = embed_fourier(params)
    assert coefficients.shape == (p, 16)
    assert torch.allclose(fourier_basis(p).T @ coefficients, params["embed.W_E"][:p], atol=1e-5)
    assert torch.allclose(frequency_norms(coefficients), embed_spectrum(params))
    out = unembed_fourier(params)
    assert out.shape == (p, 32)
    W_L = params["blocks.0.mlp.W_out"] @ params["unembed.W_U"]
    assert torch.allclose(out.T @ fourier_basis(p), W_L, atol=1e-5)
    assert torch.allclose(frequency_norms(out), unembed_spectrum(params))
