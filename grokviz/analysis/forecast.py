"""Will a run grok, and when: the forecast from what a run shows up to one step.

Owns (definitions, the method and its measured error in docs/forecast.md):

* :func:`grok_step` and :func:`memorisation_step` — read off a log;
* :class:`Observation` — everything a forecast at step t may read (config, log rows <= t, the
  per-checkpoint measures <= t, the probes at two checkpoints <= t);
* :func:`norm_law` — the norm-separation delay law refitted online: the weights' own contraction
  rate, and how far they still have to contract;
* :func:`features`, :class:`Model` and :class:`Constants` — a ridge correction of the law's log
  error from the other signals, fitted on a grid of runs by ``scripts/eval_forecast.py`` with
  ``grokviz.analysis.forecast_fit``;
* :func:`forecast` and :class:`Forecast` (its ``to_dict()`` is ``grokviz forecast --json``).

Pure functions: no files (``grokviz.storage.forecast`` reads a run).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from grokviz.analysis.forecast_fitted import FITTED
from grokviz.errors import GrokvizError

GROK_ACCURACY = 0.95  # test accuracy a run must hold from its grok step to the end of its log
FIT_ACCURACY = 0.99  # train accuracy from which the training set counts as memorised
SIGNALS = ("train", "all")
MIN_CHECKPOINTS = 3  # checkpoints from the norm's peak to t: fewer cannot give a contraction rate
PUBLISHED_C = 1.41  # the norm-separation law's constant for AdamW (arXiv 2603.13331)


def grok_step(log: pd.DataFrame, column: str = "test_accuracy", threshold: float = GROK_ACCURACY) -> int | None:
    """First logged step from which ``column`` stays >= ``threshold`` to the end of the log (None: never)."""
    curve = log[["step", column]].dropna().sort_values("step")
    if curve.empty:
        return None
    below = np.flatnonzero(curve[column].to_numpy(dtype=float) < threshold)
    first = 0 if len(below) == 0 else below[-1] + 1
    return None if first >= len(curve) else int(curve["step"].iloc[first])


def memorisation_step(log: pd.DataFrame) -> int | None:
    """First logged step with train accuracy >= FIT_ACCURACY (None: not yet)."""
    fitted = log["step"][log["train_accuracy"] >= FIT_ACCURACY]
    return None if fitted.empty else int(fitted.min())


@dataclass
class Observation:
    """What a forecast at ``at_step`` reads. ``log``: log rows <= at_step; ``curve``: per-checkpoint
    rows <= at_step with ``step``, ``sum_sq_weights``, ``gini_embed``, ``gini_unembed``;
    ``probe_start`` / ``probe_end``: measures (restricted_loss, restricted_loss_train,
    excluded_loss, llc) at the norm's peak and at the last checkpoint, with the key frequencies of
    the last checkpoint."""

    at_step: int
    lr: float
    weight_decay: float
    horizon: int  # the run's configured last step: a "no" means "not by this step"
    log: pd.DataFrame
    curve: pd.DataFrame
    probe_start: dict[str, float] = field(default_factory=dict)
    probe_end: dict[str, float] = field(default_factory=dict)


@dataclass
class NormLaw:
    """The norm law at t: ``peak`` step and norm (sum of squared weights) after memorisation, the
    contraction so far ``done`` = ln(N_peak / N_t), the observed ``rate`` = done / (t - peak), and
    the law's step for a contraction of ``rho`` at that rate."""

    peak_step: int
    done: float
    rate: float
    end_step: int  # the last checkpoint <= t

    def predict(self, rho: float) -> float:
        """Step at which ln(N_peak / N) reaches ``rho`` at the observed rate (inf: not contracting)."""
        if self.rate <= 0:
            return math.inf
        return self.end_step + max(rho - self.done, 0.0) / self.rate


def norm_law(obs: Observation) -> NormLaw:
    """The contraction of the weights from their peak after memorisation to t (needs checkpoints)."""
    mem = memorisation_step(obs.log)
    if mem is None:
        last = obs.log["train_accuracy"].iloc[-1] if len(obs.log) else math.nan
        raise GrokvizError(
            f"too early at step {obs.at_step}: the training set is not memorised yet "
            f"(train accuracy {last:.1%}; the forecast starts from {FIT_ACCURACY:.0%})"
        )
    curve = obs.curve[obs.curve["step"] >= _checkpoint_at_or_before(obs.curve, mem)]
    if len(curve) < MIN_CHECKPOINTS:
        raise GrokvizError(
            f"too early at step {obs.at_step}: {len(curve)} checkpoint(s) since memorisation at step {mem}; "
            f"the forecast needs {MIN_CHECKPOINTS} to measure how fast the weights contract"
        )
    steps = curve["step"].to_numpy(dtype=float)
    log_norm = np.log(curve["sum_sq_weights"].to_numpy(dtype=float))
    peak = int(np.argmax(log_norm))
    done = float(log_norm[peak] - log_norm[-1])
    span = steps[-1] - steps[peak]
    # The mean rate since the peak: steadier than a slope over the last few checkpoints, which
    # stalls on the plateau's small bumps.
    rate = done / span if span > 0 else 0.0
    return NormLaw(int(steps[peak]), done, rate, int(steps[-1]))


def _checkpoint_at_or_before(curve: pd.DataFrame, step: int) -> int:
    earlier = curve["step"][curve["step"] <= step]
    return int(earlier.max()) if len(earlier) else int(curve["step"].min())


# A float64 mean loss can be exactly 0 once every margin is large: logs of losses floor it here.
_LOSS_FLOOR = 1e-12


def _floored_log(value: float) -> float:
    return math.log(max(value, _LOSS_FLOOR))


def _log_ratio(end: float, start: float) -> float:
    return float(np.log(max(end, _LOSS_FLOOR) / max(start, _LOSS_FLOOR)))


def _relative_change(end: float, start: float) -> float:
    """(end - start) / |start|, for values that may cross 0 (an LLC estimate can)."""
    return float((end - start) / max(abs(start), 1.0))


CLOCK_CLIP = 1.5  # a clock's log ratio to the law is clipped to +-1.5: a signal that has not moved says "much later", not "never"
TEST_TREND = 0.3  # the test loss's log-linear trend is fitted on the last 30% of the steps since the norm's peak
LEVELS = (  # the clocks' signals, and whether each rises to its level at the grok step (else falls)
    ("gini_unembed", True),
    ("gini_embed", True),
    ("excluded_loss", True),
    ("restricted_loss_train", False),
    ("test_loss", False),
    ("restricted_loss", False),
)
TRAIN_ONLY = ("gini_unembed", "gini_embed", "excluded_loss", "restricted_loss_train")


def _clipped_log_ratio(step: float, t: int, base: float) -> float:
    return float(np.clip(math.log(max(step, t) / base), -CLOCK_CLIP, CLOCK_CLIP))


def _clock(t: int, start_step: int, start: float, end: float, level: float, rising: bool, base: float) -> float:
    """ln(clock / law), clipped: the clock is the step at which a signal that moved from ``start``
    (at ``start_step``) to ``end`` (at t) reaches ``level`` at the same mean rate; t when it is
    there already, and "much later" when it has not moved towards it."""
    sign = 1.0 if rising else -1.0
    need, moved = sign * (level - start), sign * (end - start)
    if need <= moved:
        return _clipped_log_ratio(t, t, base)
    if moved <= 1e-9:
        return CLOCK_CLIP
    return _clipped_log_ratio(start_step + (t - start_step) * need / moved, t, base)


def _test_loss_clock(obs: Observation, law: NormLaw, level: float, base: float) -> float:
    """ln(clock / law), clipped, for the test loss: its log-linear trend over the last TEST_TREND of
    the steps since the peak, extrapolated to ``level`` (the test loss at the fitting runs' grok)."""
    span = law.end_step - law.peak_step
    tail = obs.log[(obs.log["step"] >= law.end_step - TEST_TREND * span) & (obs.log["step"] <= law.end_step)]
    if len(tail) < 2 or np.ptp(tail["step"].to_numpy(dtype=float)) == 0:
        return CLOCK_CLIP
    log_loss = np.log(np.maximum(tail["test_loss"].to_numpy(dtype=float), _LOSS_FLOOR))  # [rows]
    slope = float(np.polyfit(tail["step"].to_numpy(dtype=float), log_loss, 1)[0])
    if log_loss[-1] <= math.log(level):
        return _clipped_log_ratio(law.end_step, law.end_step, base)
    if slope >= -1e-9:
        return CLOCK_CLIP
    return _clipped_log_ratio(law.end_step + (math.log(level) - log_loss[-1]) / slope, law.end_step, base)


def features(
    obs: Observation, law: NormLaw, rho: float, signals: str, levels: dict[str, float] | None = None
) -> dict[str, float]:
    """The correction's inputs (each a number; the fit standardises them). ``train``: the
    contraction so far over rho, the Gini coefficients at t and their rise since the peak, the
    log change of excluded loss (train pairs), of train loss and of the LLC from the peak to t,
    ln(rate / (lr * weight decay)). ``all`` adds the log change of restricted loss (all pairs)
    and of test loss. With ``levels`` (each signal's median at the fitting runs' grok step) also
    the **clocks**: ln(clock / the law's step) for each signal of LEVELS, the step at which the
    signal reaches its level at its mean rate since the peak (the test loss: at its recent
    log-linear trend)."""
    curve = obs.curve
    start = curve[curve["step"] == law.peak_step].iloc[0]
    end = curve.iloc[-1]
    tail = obs.log[obs.log["step"] >= law.peak_step]
    out = {
        "progress": law.done / rho if rho > 0 else 0.0,
        "gini_embed": float(end["gini_embed"]),
        "gini_unembed": float(end["gini_unembed"]),
        "gini_embed_rise": float(end["gini_embed"] - start["gini_embed"]),
        "gini_unembed_rise": float(end["gini_unembed"] - start["gini_unembed"]),
        "excluded_loss_change": _log_ratio(obs.probe_end["excluded_loss"], obs.probe_start["excluded_loss"]),
        "train_loss_change": _log_ratio(float(tail["train_loss"].iloc[-1]), float(tail["train_loss"].iloc[0])),
        "llc_change": _relative_change(obs.probe_end["llc"], obs.probe_start["llc"]),
        "rate_vs_decay": float(np.log(max(law.rate, 1e-12) / (obs.lr * obs.weight_decay))),
    }
    if signals == "all":
        out["restricted_loss_change"] = _log_ratio(obs.probe_end["restricted_loss"], obs.probe_start["restricted_loss"])
        out["test_loss_change"] = _log_ratio(float(tail["test_loss"].iloc[-1]), float(tail["test_loss"].max()))
    if levels:
        base = law.predict(rho)
        for name, rising in LEVELS:
            if name == "test_loss" or (signals == "train" and name not in TRAIN_ONLY):
                continue
            if name.startswith("gini"):
                begin, now, level = float(start[name]), float(end[name]), levels[name]
            else:  # losses move on a log scale
                begin, now = _floored_log(obs.probe_start[name]), _floored_log(obs.probe_end[name])
                level = _floored_log(levels[name])
            out[f"{name}_clock"] = _clock(law.end_step, law.peak_step, begin, now, level, rising, base)
        if signals == "all":
            out["test_loss_clock"] = _test_loss_clock(obs, law, levels["test_loss"], base)
    return out


@dataclass
class Model:
    """One signal set's fitted correction: log(actual / law) = intercept + coef . (x - mean) / scale,
    and its 80% interval in log steps: ``q_low`` / ``q_high``, or for a forecast whose contraction
    so far (``progress``) is below a band's bound, that band's own (``bands``: [[bound, low, high]],
    ascending; a forecast made early in the contraction is less sure than one made late)."""

    names: list[str]
    mean: list[float]
    scale: list[float]
    coef: list[float]
    intercept: float
    q_low: float
    q_high: float
    bands: list[list[float]] = field(default_factory=list)

    def correction(self, x: dict[str, float]) -> float:
        if not self.names:
            return float(self.intercept)
        z = (np.array([x[n] for n in self.names]) - np.array(self.mean)) / np.array(self.scale)
        return float(self.intercept + z @ np.array(self.coef))

    def interval(self, progress: float) -> tuple[float, float]:
        """The interval's (low, high) offsets in log steps for a forecast at this ``progress``."""
        for bound, low, high in self.bands:
            if progress < bound:
                return low, high
        return self.q_low, self.q_high


@dataclass
class Constants:
    """Everything the forecaster fitted: ``rho`` (ln of N_peak / N at the grok step, the median
    over the fitting runs), ``min_rate`` (a slower contraction counts as none), one Model per
    signal set, and ``levels``: each clock's signal at the grok step (the median over the fitting
    runs; see :func:`features`)."""

    rho: float
    min_rate: float
    models: dict[str, Model]
    levels: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Constants:
        models = {k: Model(**v) for k, v in data["models"].items()}
        return cls(data["rho"], data["min_rate"], models, dict(data.get("levels", {})))


@dataclass
class Forecast:
    """A forecast at ``at_step``. ``grok_step`` None when ``will_grok`` is False; ``low``/``high``
    the 80% interval; ``horizon`` the step up to which a "no" is claimed; ``signals`` name -> value
    at at_step; ``reason`` one sentence; ``observed``: the grok was already in the log (``all``)."""

    at_step: int
    will_grok: bool
    grok_step: int | None
    low: int | None
    high: int | None
    horizon: int
    signals: dict[str, float]
    signal_set: str
    reason: str
    observed: bool = False

    def to_dict(self) -> dict:
        return asdict(self)

    def sentence(self) -> str:
        if self.will_grok:
            if self.observed:
                return (
                    f"At step {self.at_step:,} the run has grokked: test accuracy >= 95% since step {self.grok_step:,}."
                )
            return (
                f"At step {self.at_step:,} the forecast ({self.signal_set} signals) says it groks at about step "
                f"{self.grok_step:,} (80% interval {self.low:,}-{self.high:,})."
            )
        return f"At step {self.at_step:,} the forecast ({self.signal_set} signals) says it will not grok by step {self.horizon:,}: {self.reason}"


def forecast(obs: Observation, signals: str, constants: Constants) -> Forecast:
    """The forecast at ``obs.at_step`` with the signal set ``signals`` ("train" or "all")."""
    if signals not in SIGNALS:
        raise GrokvizError(f"signals {signals!r}: choose one of {', '.join(SIGNALS)}")
    law = norm_law(obs)
    values = {"sum_sq_weights": float(obs.curve["sum_sq_weights"].iloc[-1]), "contraction": law.done}
    values["contraction_rate"] = law.rate
    values.update({k: float(obs.curve[k].iloc[-1]) for k in ("gini_embed", "gini_unembed")})
    values.update({"excluded_loss": obs.probe_end["excluded_loss"], "llc": obs.probe_end["llc"]})
    values["train_loss"] = float(obs.log["train_loss"].iloc[-1])
    if signals == "all":
        values["restricted_loss"] = obs.probe_end["restricted_loss"]
        values["test_loss"] = float(obs.log["test_loss"].iloc[-1])
        seen = grok_step(obs.log)
        # Grokked already, and holding for the last 5% of the steps so far: no forecast needed.
        if seen is not None and seen <= 0.95 * obs.at_step:
            return Forecast(obs.at_step, True, seen, seen, seen, obs.horizon, values, signals, "seen", observed=True)

    def no(reason: str) -> Forecast:
        return Forecast(obs.at_step, False, None, None, None, obs.horizon, values, signals, reason)

    if obs.weight_decay <= 0:
        return no("without weight decay the weights do not contract (the norm law's delay is infinite).")
    if law.rate < constants.min_rate:
        return no(
            f"the weights contract at {law.rate:.2e} per step, slower than the {constants.min_rate:.1e} it needs."
        )
    x = features(obs, law, constants.rho, signals, constants.levels)
    values.update({f"feature.{k}": v for k, v in x.items()})
    model = constants.models[signals]
    base = law.predict(constants.rho)
    q_low, q_high = model.interval(x["progress"])
    centre = max(base * math.exp(model.correction(x)), obs.at_step)
    low = max(base * math.exp(model.correction(x) + q_low), obs.at_step)
    high = max(base * math.exp(model.correction(x) + q_high), low)
    if centre > obs.horizon and law.done >= constants.rho and signals == "train":
        # Past the horizon, yet contracted past the norm at which the fitting runs grokked (the
        # correction was fitted on forecasts made before the grok): the grok is behind, at about
        # the first checkpoint that got there. With "all" the log says whether it grokked (above),
        # and a slow run contracts past rho without grokking: then the "no" below.
        curve = obs.curve[obs.curve["step"] >= law.peak_step]
        peak_norm = float(curve["sum_sq_weights"].iloc[0])
        contraction = np.log(peak_norm / curve["sum_sq_weights"].to_numpy(dtype=float))
        reached = int(curve["step"].to_numpy()[np.argmax(contraction >= constants.rho)])
        low, high = round(reached * math.exp(model.q_low)), round(reached * math.exp(model.q_high))
        reason = f"the weights contracted past the norm of grokking at step {reached:,}"
        return Forecast(obs.at_step, True, reached, low, max(high, reached), obs.horizon, values, signals, reason)
    if centre > obs.horizon:
        return no(f"at this contraction it would take until about step {round(centre):,}.")
    return Forecast(obs.at_step, True, round(centre), round(low), round(high), obs.horizon, values, signals, "")


def law_alone(obs: Observation, rho: float) -> float:
    """The published law alone, for the baseline: peak + rho / (c * lr * weight decay), c = 1.41."""
    law = norm_law(obs)
    if obs.weight_decay <= 0:
        return math.inf
    return law.peak_step + rho / (PUBLISHED_C * obs.lr * obs.weight_decay)


def fitted_constants() -> Constants:
    """The constants scripts/eval_forecast.py fitted (docs/forecast.md)."""
    return Constants.from_dict(FITTED)
