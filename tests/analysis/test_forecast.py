"""The forecaster's pure parts on curves whose answers are known."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from grokviz.analysis.forecast import (
    CLOCK_CLIP,
    LEVELS,
    Constants,
    Forecast,
    Model,
    Observation,
    features,
    fitted_constants,
    forecast,
    grok_step,
    memorisation_step,
    norm_law,
)
from grokviz.analysis.forecast_fit import conformal_interval, fit_model, select_features
from grokviz.errors import GrokvizError


def log_of(test_accuracy, train_accuracy=None, every: int = 10) -> pd.DataFrame:
    n = len(test_accuracy)
    train = [1.0] * n if train_accuracy is None else train_accuracy
    return pd.DataFrame(
        {
            "step": np.arange(n) * every,
            "train_loss": np.linspace(1.0, 0.01, n),
            "train_accuracy": train,
            "test_loss": np.linspace(3.0, 2.0, n),
            "test_accuracy": test_accuracy,
        }
    )


def test_grok_step_is_where_test_accuracy_holds_to_the_end():
    assert grok_step(log_of([0.1, 0.96, 0.5, 0.97, 0.98])) == 30  # the dip at 20 resets it
    assert grok_step(log_of([0.1, 0.96, 0.97, 0.5])) is None  # a fall at the end: not grokked
    assert grok_step(log_of([0.95, 0.95])) == 0  # 95% itself counts
    assert memorisation_step(log_of([0.1] * 4, [0.2, 0.98, 0.99, 1.0])) == 20


def observation(rate: float = 1e-3, peak: int = 100, at: int = 1000, weight_decay: float = 1.0) -> Observation:
    """Weights that grow to a peak at ``peak`` and then contract as exp(-rate * (step - peak))."""
    steps = np.arange(0, at + 1, 100)
    log_norm = np.where(steps <= peak, 5.0 + steps / max(peak, 1) * 0.1, 5.1 - rate * (steps - peak))
    curve = pd.DataFrame({"step": steps, "sum_sq_weights": np.exp(log_norm), "gini_embed": 0.2, "gini_unembed": 0.3})
    log = log_of([0.1] * (at // 10 + 1))
    probe = {"restricted_loss": 1.0, "restricted_loss_train": 1.0, "excluded_loss": 1.0, "llc": 50.0}
    return Observation(at, 1e-3, weight_decay, 10_000, log, curve, dict(probe), dict(probe))


def test_norm_law_measures_the_contraction_since_the_peak():
    law = norm_law(observation(rate=1e-3))
    assert law.peak_step == 100 and law.end_step == 1000
    assert law.done == pytest.approx(0.9)  # 1e-3 per step over 900 steps
    assert law.rate == pytest.approx(1e-3)
    assert law.predict(2.0) == pytest.approx(1000 + 1.1 / 1e-3)  # 1.1 more to go at 1e-3 per step
    assert law.predict(0.5) == 1000  # already past it: now


def neutral(rho: float = 2.0, q: float = 0.2) -> Constants:
    """Constants whose correction is 0 and whose interval is exp(+-q) around the law."""
    names = ["progress"]
    model = Model(names, [0.0], [1.0], [0.0], 0.0, -q, q)
    return Constants(rho, 1e-6, {"train": model, "all": model})


def test_forecast_follows_the_law_with_its_interval_and_says_no_in_words():
    made = forecast(observation(rate=1e-3), "train", neutral())
    assert made.will_grok and made.grok_step == 2100
    assert made.low == round(2100 * math.exp(-0.2)) and made.high == round(2100 * math.exp(0.2))
    assert set(made.to_dict()) >= {"at_step", "will_grok", "grok_step", "low", "high", "horizon", "signals"}
    assert made.signals["contraction_rate"] == pytest.approx(1e-3)
    no_decay = forecast(observation(weight_decay=0.0), "train", neutral())
    assert not no_decay.will_grok and no_decay.grok_step is None and "weight decay" in no_decay.reason
    slow = forecast(observation(rate=1e-5), "train", neutral())  # 1.99 / 1e-5 steps: past the horizon
    assert not slow.will_grok and slow.horizon == 10_000 and "step" in slow.sentence()


def test_too_early_says_what_is_missing():
    obs = observation()
    obs.log["train_accuracy"] = 0.5
    with pytest.raises(GrokvizError, match="not memorised yet"):
        forecast(obs, "train", neutral())
    short = observation(at=100)
    with pytest.raises(GrokvizError, match="checkpoint"):
        forecast(short, "train", neutral())
    with pytest.raises(GrokvizError, match="signals 'test'"):
        forecast(observation(), "test", neutral())


def test_fit_recovers_a_linear_correction():
    rng = np.random.default_rng(0)
    xs = rng.normal(size=200)
    rows = [{"progress": float(x)} for x in xs]
    targets = list(0.3 + 0.5 * xs)
    model = fit_model(rows, targets, ["progress"])
    assert model.correction({"progress": 1.0}) == pytest.approx(0.8, abs=0.02)
    assert model.q_high - model.q_low < 0.02  # no noise: a narrow interval (the ridge shrinks a little)


def test_forecast_round_trips_as_a_dict():
    made = Forecast(10, True, 20, 15, 25, 100, {"x": 1.0}, "train", "")
    assert Forecast(**made.to_dict()) == made


def test_conformal_interval_is_the_order_statistics_that_cover_80_percent():
    residuals = np.arange(1.0, 20.0)  # 19 residuals: (n + 1) * 0.1 = 2nd and (n + 1) * 0.9 = 18th
    assert conformal_interval(residuals) == (2.0, 18.0)
    assert conformal_interval(np.arange(1.0, 6.0)) == (1.0, 5.0)  # too few for 80%: the extremes


def noisy_rows(n_groups: int = 20, per_group: int = 5, seed: int = 0):
    """Targets 0.5 * signal + noise whose size depends on ``progress`` (early: 4x wider), and a
    feature of pure noise."""
    rng = np.random.default_rng(seed)
    rows, targets, groups = [], [], []
    for g in range(n_groups):
        for _ in range(per_group):
            progress = float(rng.uniform(0.1, 1.2))
            signal, junk = rng.normal(size=2)
            sd = 0.4 if progress < 0.4 else 0.1
            rows.append({"progress": progress, "signal": float(signal), "junk": float(junk)})
            targets.append(0.5 * signal + sd * float(rng.normal()))
            groups.append(g)
    return rows, targets, groups


def test_selection_keeps_the_signal_and_the_interval_covers_held_out_rows_with_an_early_band():
    rows, targets, groups = noisy_rows()
    names, ridge = select_features(rows, targets, ["signal", "junk"], groups)
    assert "signal" in names and "junk" not in names
    # a feature must pay for itself: demand more than the signal's gain and none is added
    assert select_features(rows, targets, ["signal", "junk"], groups, min_gain=10.0)[0] == ["progress"]
    model = fit_model(rows, targets, names, groups=groups, ridge=ridge)
    assert model.correction({"progress": 0.5, "signal": 1.0}) == pytest.approx(0.5, abs=0.1)
    early, late = model.interval(0.2), model.interval(0.8)
    assert early[1] - early[0] > 2 * (late[1] - late[0])  # the early band is the wider
    fresh, fresh_targets, _ = noisy_rows(seed=1)  # new rows from the same law: about 80% inside
    inside = [
        model.interval(r["progress"])[0] <= y - model.correction(r) <= model.interval(r["progress"])[1]
        for r, y in zip(fresh, fresh_targets)
    ]
    assert 0.65 <= np.mean(inside) <= 0.95


def test_the_shipped_constants_use_known_features_and_intervals_around_the_centre():
    constants = fitted_constants()
    obs = observation(rate=1e-3)
    candidates = features(obs, norm_law(obs), constants.rho, "all", constants.levels)
    assert set(constants.levels) == {name for name, _ in LEVELS}
    for model in constants.models.values():
        assert model.names and set(model.names) <= set(candidates) and "llc_change" not in model.names
        for progress in (0.1, 0.9):  # the early band and the late one
            low, high = model.interval(progress)
            assert low < 0 < high
    made = forecast(obs, "train", constants)
    assert made.low < made.grok_step < made.high


def test_clocks_extrapolate_each_signal_at_its_mean_rate_to_its_level_at_the_grok_step():
    obs = observation(rate=1e-3)  # peak at 100, t = 1000; the law (rho 2) says step 2100
    obs.curve["gini_unembed"] = np.where(obs.curve["step"] <= 100, 0.2, 0.2 + 1e-4 * (obs.curve["step"] - 100))
    obs.probe_end["excluded_loss"] = math.e  # ln 1 -> ln e at the peak and at t: ln level 3 at step 100 + 3 * 900
    obs.log["test_loss"] = np.exp(-1e-3 * obs.log["step"])  # ln falls 1e-3 per step: ln 0.1 at step 2303
    levels = {"gini_unembed": 0.38, "gini_embed": 0.2, "excluded_loss": math.exp(3), "restricted_loss_train": 1.0}
    levels.update({"test_loss": 0.1, "restricted_loss": 1.0})
    x = features(obs, norm_law(obs), 2.0, "all", levels)
    assert x["gini_unembed_clock"] == pytest.approx(math.log(1900 / 2100))  # 0.29 at t, 0.38 at 100 + 2 * 900
    assert x["excluded_loss_clock"] == pytest.approx(math.log(2800 / 2100))
    assert x["test_loss_clock"] == pytest.approx(math.log(1000 * math.log(10) / 2100), abs=1e-6)
    assert x["gini_embed_clock"] == pytest.approx(math.log(1000 / 2100))  # at its level already: now
    assert x["restricted_loss_train_clock"] == pytest.approx(math.log(1000 / 2100))
    obs.curve["gini_unembed"] = 0.2  # has not moved: "much later", clipped
    assert features(obs, norm_law(obs), 2.0, "train", levels)["gini_unembed_clock"] == CLOCK_CLIP
    assert "test_loss_clock" not in features(obs, norm_law(obs), 2.0, "train", levels)


def test_contracted_past_rho_reads_as_grokked_with_train_signals_only():
    # A correction that puts the grok past the horizon, on weights already contracted past rho:
    # with train signals the grok is behind (the first checkpoint past rho); with all signals the
    # log's test accuracy (0.1) shows it is not, so the answer is the corrected law's "no".
    model = Model(["progress"], [0.0], [1.0], [0.0], math.log(20.0), -0.2, 0.2)
    constants = Constants(0.5, 1e-6, {"train": model, "all": model})
    behind = forecast(observation(rate=1e-3), "train", constants)  # 0.9 contracted since step 100
    assert behind.will_grok and behind.grok_step == 600 and "contracted past" in behind.reason
    said = forecast(observation(rate=1e-3), "all", constants)
    assert not said.will_grok and said.grok_step is None and "20,000" in said.reason
