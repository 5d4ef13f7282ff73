"""The LLC estimator on a model whose answer is known, under the one fixed sampler setting."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from grokviz.analysis.llc import SAMPLER, estimate_llc


def regression(d: int, n: int = 2000, scale: float = 4.0, seed: int = 0):
    """Full-rank linear regression with d parameters: y = X w + N(0, 1), its Gaussian NLL per example.

    ``scale`` sets the curvature (X's column scale squared): at 4, step_size * n * beta * curvature
    is ~0.16, inside the range where the fixed sampler setting is unbiased (analysis/llc.py)."""
    g = torch.Generator().manual_seed(seed)
    x = scale * torch.randn(n, d, generator=g)  # [n, d]
    y = x @ torch.randn(d, generator=g) + torch.randn(n, generator=g)  # [n]
    w_star = torch.linalg.lstsq(x, y[:, None]).solution[:, 0]  # the minimum of the loss

    def loss(w: dict[str, torch.Tensor], idx: torch.Tensor) -> torch.Tensor:
        return 0.5 * (y[idx] - x[idx] @ w["w"]).double().pow(2).mean()

    return loss, {"w": w_star}, n


def test_regular_model_has_llc_half_its_dimension():
    # d = 50: at the fixed setting one estimate spreads ~5% (d = 20: ~15%), see docs/forecast.md.
    loss, params, n = regression(50)
    for seed in (0, 1, 2):
        estimate = estimate_llc(loss, params, n, replace(SAMPLER, seed=seed))
        assert abs(estimate - 25) <= 2.5, (seed, estimate)


def test_more_parameters_more_llc_and_same_setting_same_value():
    small = estimate_llc(*regression(10))
    large = estimate_llc(*regression(40))
    assert large > 2.5 * small  # 4x in expectation
    assert estimate_llc(*regression(10)) == pytest.approx(small, rel=1e-3)  # seeded: one setting, one value


def test_timeline_keeps_each_checkpoints_llc(grokked_run, tmp_path, monkeypatch):
    import shutil

    from grokviz.storage import timeline as timeline_module
    from grokviz.storage.runs import open_run

    path = tmp_path / "run"
    shutil.copytree(grokked_run.path, path, ignore=shutil.ignore_patterns("timeline*.json"))
    run = open_run(path)
    seen = []
    first = timeline_module.timeline(run, llc=True, progress=lambda done, total: seen.append(total))
    assert seen[0] == len(run.steps()) and first["llc"].notna().all()
    # The LLC falls once the model has grokked and cleaned up: the end is below the run's highest value.
    assert first["llc"].iloc[-1] < first["llc"].max()

    def refuse(*args, **kwargs):
        raise AssertionError("recomputed an LLC the cache holds")

    monkeypatch.setattr(timeline_module, "checkpoint_llc", refuse)
    again = timeline_module.timeline(run, key_freqs=[1, 2], llc=True)  # other key frequencies, same LLCs
    assert again["llc"].tolist() == pytest.approx(first["llc"].tolist())
    plain = timeline_module.timeline(run)  # without llc=True the known values still come along
    assert plain["llc"].tolist() == pytest.approx(first["llc"].tolist())
