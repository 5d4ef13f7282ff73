"""Gini, progress measures, phase boundaries and the cached timeline (grokviz.progress, .timeline)."""

from __future__ import annotations

import math
import os

import numpy as np
import pandas as pd
import pytest
import torch

import grokviz.storage.timeline as timeline_module
from grokviz.analysis.baseline import evaluate
from grokviz.analysis.fourier import embed_spectrum, unembed_spectrum
from grokviz.analysis.progress import PHASE_RULE, Phases, gini, phase_boundaries, progress_measures
from grokviz.core.config import Config, dataset_for
from grokviz.core.fast_path import forward_all_pairs
from grokviz.core.params import init_params
from grokviz.storage.runs import open_run, save_checkpoint
from grokviz.storage.timeline import timeline
from grokviz.training.single import train

# --- Gini ---------------------------------------------------------------------------------


def test_gini_extremes_and_invariances():
    assert gini(torch.ones(10)) == pytest.approx(0.0, abs=1e-12)
    one_hot = torch.zeros(10)
    one_hot[3] = 5.0
    assert gini(one_hot) == pytest.approx(1 - 1 / 10)
    x = torch.rand(56, generator=torch.Generator().manual_seed(0))
    assert gini(x) == pytest.approx(gini(7.5 * x))  # scale invariant
    assert gini(x) == pytest.approx(gini(x.flip(0)))  # order of input irrelevant
    assert gini(torch.zeros(5)) == 0.0


def test_gini_equals_the_mean_absolute_difference_form():
    x = np.random.default_rng(1).random(40)
    expected = np.abs(x[:, None] - x[None, :]).sum() / (2 * len(x) ** 2 * x.mean())
    assert gini(torch.tensor(x)) == pytest.approx(expected, rel=1e-9)
    # and the Hurley-Rickard formula written out
    s = np.sort(x)
    n = len(s)
    hr = 1 - 2 * sum((s[i - 1] / s.sum()) * (n - i + 0.5) / n for i in range(1, n + 1))
    assert gini(list(x)) == pytest.approx(hr, rel=1e-12)


# --- progress measures -----------------------------------------------------------------------


def test_progress_measures_keys_and_values():
    cfg = Config(p=23, d_model=32, d_mlp=64, n_heads=4, d_head=8, frac_train=0.5)
    params = init_params(cfg)
    dataset = dataset_for(cfg)
    measures = progress_measures(params, dataset, [2, 5])
    expected_keys = {
        "restricted_loss",
        "restricted_loss_train",
        "excluded_loss",
        "gini_embed",
        "gini_unembed",
        "sum_sq_weights",
        "train_loss",
        "test_loss",
        "train_accuracy",
        "test_accuracy",
    }
    expected_keys |= {f"sum_sq.{name}" for name in params}
    assert set(measures) == expected_keys
    assert measures["sum_sq_weights"] == pytest.approx(sum(float(t.pow(2).sum()) for t in params.values()), rel=1e-6)
    assert measures["sum_sq.embed.W_E"] == pytest.approx(float(params["embed.W_E"].pow(2).sum()), rel=1e-6)
    assert measures["gini_embed"] == pytest.approx(gini(embed_spectrum(params)))
    assert measures["gini_unembed"] == pytest.approx(gini(unembed_spectrum(params)))
    metrics, _ = evaluate(forward_all_pairs(params), dataset)
    assert measures["train_loss"] == metrics["train"].loss and measures["test_accuracy"] == metrics["test"].accuracy
    # Removing no frequency excludes nothing.
    assert progress_measures(params, dataset, [])["excluded_loss"] == pytest.approx(measures["train_loss"])


# --- phases ---------------------------------------------------------------------------------


def _synthetic_log(grok: bool = True, fit: bool = True) -> pd.DataFrame:
    steps = np.arange(0, 3001, 10)
    train_accuracy = np.where(steps >= 100, 1.0, 0.5) if fit else np.full(len(steps), 0.5)
    # log10 test loss: up to 1 at step 300, flat to 1000, down linearly to -6 at 2000, flat after.
    log_test = (
        np.interp(steps, [0, 300, 1000, 2000, 3000], [0.5, 1.0, 1.0, -6.0, -6.0])
        if grok
        else np.interp(steps, [0, 300, 3000], [0.5, 1.0, 0.8])
    )
    test_accuracy = np.clip((1.0 - log_test) / 2, 0, 1) if grok else np.full(len(steps), 0.1)
    return pd.DataFrame(
        {
            "step": steps,
            "train_loss": 0.0,
            "train_accuracy": train_accuracy,
            "test_loss": 10**log_test,
            "test_accuracy": test_accuracy,
        }
    )


def test_phase_rule_on_a_synthetic_curve():
    phases = phase_boundaries(_synthetic_log())
    assert phases.rule == PHASE_RULE and "10%" in phases.rule and "90%" in phases.rule
    assert "sum of squared weights" in phases.rule
    assert phases.memorisation_end == 300  # the first step of the highest test loss after fitting
    # The fall is 7 decades (1 -> -6); 10% of it is reached at log10 = 0.3, i.e. step 1100.
    assert phases.circuit_formation_end == 1100
    # 90%: log10 = -5.3, i.e. step 1900.
    assert phases.cleanup_end == 1900


def test_cleanup_also_waits_for_the_weight_norm():
    steps = np.arange(0, 3001, 100)
    # Flat at 100 until 1100, down linearly to 10 at 2500: 90% of the fall is reached at 2360.
    weights = np.interp(steps, [0, 1100, 2500, 3000], [100.0, 100.0, 10.0, 10.0])
    timeline_frame = pd.DataFrame({"step": steps, "sum_sq_weights": weights})
    phases = phase_boundaries(_synthetic_log(), timeline_frame)
    assert (phases.memorisation_end, phases.circuit_formation_end) == (300, 1100)
    assert phases.cleanup_end == 2400  # the first checkpoint past 2360; the test loss alone says 1900
    # Weights that settle before the test loss does leave the test-loss boundary.
    early = pd.DataFrame(
        {"step": steps, "sum_sq_weights": np.interp(steps, [0, 1100, 1300, 3000], [100.0, 100.0, 10.0, 10.0])}
    )
    assert phase_boundaries(_synthetic_log(), early).cleanup_end == 1900
    flat = pd.DataFrame({"step": steps, "sum_sq_weights": 50.0})
    assert phase_boundaries(_synthetic_log(), flat).cleanup_end == 1900


def test_phase_rule_without_grokking_or_fitting():
    assert phase_boundaries(_synthetic_log(grok=False)) == Phases(300, None, None)
    assert phase_boundaries(_synthetic_log(fit=False)) == Phases(None, None, None)
    assert phase_boundaries(pd.DataFrame()) == Phases(None, None, None)


def test_phase_rule_falls_back_to_the_timeline():
    empty_log = _synthetic_log().iloc[:0]
    timeline_frame = _synthetic_log().iloc[::10]  # checkpoint granularity
    phases = phase_boundaries(empty_log, timeline_frame)
    assert phases.memorisation_end == 300 and phases.circuit_formation_end == 1100


def test_phases_of_a_real_grokked_run(grokked_run):
    run = grokked_run
    log = run.log()
    phases = phase_boundaries(log, None)
    assert phases.memorisation_end is not None and phases.cleanup_end is not None
    assert phases.memorisation_end < phases.circuit_formation_end < phases.cleanup_end <= run.config.steps
    with_weights = phase_boundaries(log, timeline(run))
    assert with_weights.circuit_formation_end == phases.circuit_formation_end
    assert phases.cleanup_end <= with_weights.cleanup_end <= run.config.steps
    at = log.set_index("step")
    assert at.loc[phases.memorisation_end, "train_accuracy"] >= 0.99
    assert at.loc[phases.memorisation_end, "test_accuracy"] < 0.9
    assert at.loc[phases.cleanup_end, "test_accuracy"] >= 0.99


# --- the timeline and its cache ----------------------------------------------------------------


@pytest.fixture
def tiny_run(tmp_path, tiny_config):
    return train(tiny_config, tmp_path / "tiny", progress=False)


def _count_calls(monkeypatch) -> list[int]:
    calls: list[int] = []
    original = timeline_module.progress_measures

    def counting(*args):
        calls.append(1)
        return original(*args)

    monkeypatch.setattr(timeline_module, "progress_measures", counting)
    return calls


def test_timeline_rows_match_progress_measures_and_are_cached(tiny_run, monkeypatch):
    seen = []
    frame = timeline(tiny_run, progress=lambda done, total: seen.append((done, total)))
    steps = tiny_run.steps()
    assert frame["step"].tolist() == steps
    keys = frame.attrs["key_freqs"]
    assert keys == timeline_module.default_key_frequencies(tiny_run)
    assert seen[-1] == (len(steps), len(steps))
    cfg = tiny_run.config
    dataset = dataset_for(cfg)
    expected = progress_measures(tiny_run.load(steps[-1]), dataset, keys)
    assert set(frame.columns) == {"step"} | set(expected)
    for name, value in expected.items():
        assert frame.iloc[-1][name] == pytest.approx(value, rel=1e-9, abs=1e-12)
    assert (tiny_run.path / "timeline.json").is_file()

    calls = _count_calls(monkeypatch)
    again = timeline(tiny_run)
    assert calls == []  # everything from the cache
    pd.testing.assert_frame_equal(again, frame, check_exact=False, rtol=1e-12)


def test_timeline_recomputes_only_changed_checkpoints(tiny_run, monkeypatch):
    first = timeline(tiny_run, key_freqs=[1, 2])
    assert (tiny_run.path / "timeline-k1-2.json").is_file()
    calls = _count_calls(monkeypatch)
    # A new checkpoint (the run goes on) and a rewritten one.
    params = tiny_run.load(tiny_run.steps()[-1])
    save_checkpoint(tiny_run.path, 400, params, tiny_run.config)
    rewritten = tiny_run.steps()[1]
    path = tiny_run.checkpoint_path(rewritten)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    second = timeline(tiny_run, key_freqs=[2, 1])
    assert len(calls) == 2
    assert second["step"].tolist() == tiny_run.steps() and 400 in second["step"].tolist()
    # A deleted checkpoint disappears from the timeline.
    tiny_run.checkpoint_path(400).unlink()
    third = timeline(tiny_run, key_freqs=[1, 2])
    assert third["step"].tolist() == first["step"].tolist() and len(calls) == 2


def test_timeline_default_key_frequencies_follow_the_last_checkpoint(tiny_run, monkeypatch):
    timeline(tiny_run)
    calls = _count_calls(monkeypatch)
    computed = []
    original = timeline_module.default_key_frequencies
    monkeypatch.setattr(
        timeline_module, "default_key_frequencies", lambda run, step=None: computed.append(1) or original(run, step)
    )
    timeline(tiny_run)
    assert computed == [] and calls == []  # last checkpoint unchanged: stored key frequencies reused
    save_checkpoint(tiny_run.path, 400, init_params(tiny_run.config.replace(seed=9)), tiny_run.config)
    frame = timeline(tiny_run)
    assert computed == [1]
    assert frame.attrs["key_freqs"] == original(tiny_run)


def test_timeline_works_on_a_read_only_run(tiny_run, monkeypatch):
    def refuse(path, write):
        raise PermissionError(f"{path}: read-only")

    monkeypatch.setattr(timeline_module, "atomic_write", refuse)
    frame = timeline(tiny_run)
    assert frame["step"].tolist() == tiny_run.steps()
    assert not (tiny_run.path / "timeline.json").exists()


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root ignores folder permissions")
def test_timeline_on_a_folder_without_write_permission(tiny_run):
    os.chmod(tiny_run.path, 0o555)
    try:
        frame = timeline(tiny_run)
    finally:
        os.chmod(tiny_run.path, 0o755)
    assert len(frame) == len(tiny_run.steps())
    assert not (tiny_run.path / "timeline.json").exists()


def test_a_corrupt_cache_is_ignored(tiny_run):
    frame = timeline(tiny_run)
    (tiny_run.path / "timeline.json").write_text("{not json")
    again = timeline(tiny_run)
    pd.testing.assert_frame_equal(again, frame, check_exact=False, rtol=1e-12)
    assert math.isfinite(again["restricted_loss"].iloc[-1])


# --- the bundled p = 113 run ------------------------------------------------------------------


def _finished_bundled_run(bundled_run_path):
    run = open_run(bundled_run_path)
    if run.config.steps not in run.steps():
        pytest.skip("the bundled run is still training")
    return run


def test_bundled_run_phases_from_its_log(bundled_run_path):
    run = _finished_bundled_run(bundled_run_path)
    log = run.log().set_index("step")
    phases = phase_boundaries(run.log(), None)
    assert 500 <= phases.memorisation_end <= 3000  # the paper's run: 1.4k
    assert phases.memorisation_end < phases.circuit_formation_end < phases.cleanup_end
    assert log.loc[phases.circuit_formation_end, "test_accuracy"] < 0.9  # test loss still high
    assert log.loc[phases.cleanup_end, "test_accuracy"] == 1.0


@pytest.mark.slow
def test_bundled_run_progress_measures_tell_the_papers_story(bundled_run_path):
    """~10 s: the whole timeline, computed without writing a cache into the bundled run."""
    run = _finished_bundled_run(bundled_run_path)
    frame = timeline(run, use_cache=False).set_index("step")
    phases = phase_boundaries(run.log(), frame.reset_index())
    at = lambda step, name: frame[name][frame.index <= step].iloc[-1]  # noqa: E731 (last checkpoint at or before)
    memorised, formed, cleaned = phases.memorisation_end, phases.circuit_formation_end, phases.cleanup_end
    # Circuit formation: restricted loss falls and excluded loss rises while test loss stays high.
    assert at(formed, "restricted_loss") < 0.1 * at(memorised, "restricted_loss")
    assert at(formed, "excluded_loss") > 10 * at(memorised, "excluded_loss")
    assert at(formed, "test_loss") > 1.0
    # Cleanup: weights shrink and their spectra concentrate.
    assert at(cleaned, "sum_sq_weights") < 0.6 * at(formed, "sum_sq_weights")
    assert at(cleaned, "gini_embed") > at(formed, "gini_embed") + 0.2
    assert frame["restricted_loss"].iloc[-1] <= frame["test_loss"].iloc[-1]


def test_a_cache_of_other_frequencies_is_never_taken_for_the_default(tiny_run):
    """Rows and key live in one file: another frequency set's cache swapped in is recomputed, not trusted."""
    import shutil

    default = timeline(tiny_run)
    other = timeline(tiny_run, key_freqs=[1, 2])
    assert default.attrs["key_freqs"] != [1, 2]
    shutil.copy(tiny_run.path / "timeline-k1-2.json", tiny_run.path / "timeline.json")
    again = timeline(tiny_run)
    assert again.attrs["key_freqs"] == default.attrs["key_freqs"]
    pd.testing.assert_series_equal(again["restricted_loss"], default["restricted_loss"], rtol=1e-12)
    assert not other["restricted_loss"].equals(default["restricted_loss"])
