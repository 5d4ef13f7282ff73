"""Fitting the forecaster's correction, and measuring its error on runs the fit never saw.

Owns the evaluation helpers of ``scripts/eval_forecast.py`` (docs/forecast.md): the ridge fit
(:func:`fit_model`), residuals with every seed of a configuration left out
(:func:`held_out_residuals`), forward feature selection by those residuals
(:func:`select_features`) and split-conformal intervals (:func:`conformal_interval`).
``grokviz.analysis.forecast`` is the forecaster that uses what they fit. Pure functions.
"""

from __future__ import annotations

import math

import numpy as np

from grokviz.analysis.forecast import Model

RIDGE = 1.0  # on standardised features: few runs, correlated signals
COVERAGE = 0.8  # the interval's nominal coverage
MIN_GAIN = 0.002  # in mean |log error|: a feature must lower it by at least this to be added
EARLY_PROGRESS = 0.4  # below this contraction so far (over rho) a forecast gets its own, wider band


def _standardise(rows: list[dict[str, float]], names: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = np.array([[r[n] for n in names] for r in rows], dtype=float).reshape(len(rows), len(names))
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale == 0] = 1.0
    return (x - mean) / scale, mean, scale  # [rows, features]


def _ridge(z: np.ndarray, y: np.ndarray, ridge: float) -> tuple[float, np.ndarray]:
    intercept = float(y.mean())
    coef = np.linalg.solve(z.T @ z + ridge * np.eye(z.shape[1]), z.T @ (y - intercept))
    return intercept, coef


def held_out_residuals(
    rows: list[dict[str, float]], targets: list[float], names: list[str], groups: list, ridge: float = RIDGE
) -> np.ndarray:
    """Each row's residual under the fit to the rows of the other groups (e.g. every seed of one
    run configuration left out at once): in-sample residuals understate the error on a run the fit
    never saw, and a run's own seeds are too alike to stand for an unseen one."""
    z, _, _ = _standardise(rows, names)
    y = np.array(targets, dtype=float)
    labels = np.array([str(g) for g in groups])
    residuals = np.empty_like(y)
    for label in set(labels):
        out = labels == label
        b0, b = _ridge(z[~out], y[~out], ridge)
        residuals[out] = y[out] - b0 - z[out] @ b
    return residuals


def conformal_interval(residuals: np.ndarray, coverage: float = COVERAGE) -> tuple[float, float]:
    """Split-conformal bounds: the order statistics that cover ``coverage`` of a new residual
    drawn like these (the (n + 1) correction widens them a little for few residuals)."""
    ordered = np.sort(np.asarray(residuals, dtype=float))
    n, tail = len(ordered), (1 - coverage) / 2
    # 1e-9: (1 - 0.8) / 2 is 0.0999... in floating point, and 20 times it must still be 2
    low = max(math.floor((n + 1) * tail + 1e-9), 1)
    high = min(math.ceil((n + 1) * (1 - tail) - 1e-9), n)
    return float(ordered[low - 1]), float(ordered[high - 1])


def fit_model(
    rows: list[dict[str, float]],
    targets: list[float],
    names: list[str],
    groups: list | None = None,
    ridge: float = RIDGE,
    coverage: float = COVERAGE,
) -> Model:
    """Ridge fit of ``targets`` (log(actual / law)) on the features ``names`` of ``rows``.

    The interval is split-conformal on held-out residuals when ``groups`` (one label per row) is
    given (:func:`held_out_residuals`), with a band of its own for the rows whose ``progress`` is
    below EARLY_PROGRESS when there are at least 10 of them; otherwise on in-sample residuals
    widened by sqrt(n / (n - k - 1)).
    """
    z, mean, scale = _standardise(rows, names)
    y = np.array(targets, dtype=float)
    intercept, coef = _ridge(z, y, ridge)
    bands: list[list[float]] = []
    if groups is not None and len(set(groups)) > 2:
        residuals = held_out_residuals(rows, targets, names, groups, ridge)
        early = np.array([r.get("progress", 1.0) < EARLY_PROGRESS for r in rows])
        if early.sum() >= 10 and (~early).sum() >= 10:
            bands = [[EARLY_PROGRESS, *conformal_interval(residuals[early], coverage)]]
            residuals = residuals[~early]
        q_low, q_high = conformal_interval(residuals, coverage)
    else:
        widen = math.sqrt(len(y) / max(len(y) - len(names) - 1, 1))
        q_low, q_high = (q * widen for q in conformal_interval(y - intercept - z @ coef, coverage))
    return Model(
        list(names), mean.tolist(), scale.tolist(), coef.tolist(), intercept, float(q_low), float(q_high), bands
    )


def select_features(
    rows: list[dict[str, float]],
    targets: list[float],
    candidates: list[str],
    groups: list,
    ridges: tuple[float, ...] = (0.3, 1.0, 3.0, 10.0),
    start: tuple[str, ...] = ("progress",),
    min_gain: float = MIN_GAIN,
) -> tuple[list[str], float]:
    """Forward selection by held-out error: from ``start``, add the candidate that lowers the mean
    |held-out residual| most, while one lowers it by at least ``min_gain``; the ridge penalty
    chosen the same way. Few runs and correlated signals: every feature the data cannot pay for
    widens the error on unseen runs."""
    best: tuple[float, list[str], float] | None = None
    for ridge in ridges:
        names = list(start)
        error = float(np.mean(np.abs(held_out_residuals(rows, targets, names, groups, ridge))))
        while True:
            trials = [
                (float(np.mean(np.abs(held_out_residuals(rows, targets, [*names, c], groups, ridge)))), c)
                for c in candidates
                if c not in names
            ]
            if not trials or min(trials)[0] > error - min_gain:
                break
            error, chosen = min(trials)
            names.append(chosen)
        if best is None or error < best[0]:
            best = (error, names, ridge)
    return best[1], best[2]
