"""The forecast of a run folder: what the run shows up to one step, read from its files.

``forecast_run(run, at_step, signals)`` reads the config, the log rows and the checkpoints at
steps <= at_step (never a later one: the per-checkpoint measures come from the timeline cache,
whose columns used here do not depend on later checkpoints, and the key frequencies of the
restricted and excluded losses are those of the last checkpoint <= at_step), and hands them to
``grokviz.analysis.forecast``. ``forecast_history`` is the forecast at each saved step.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pandas as pd

from grokviz.analysis.forecast import Constants, Forecast, Observation, fitted_constants, forecast, norm_law
from grokviz.analysis.fourier import embed_spectrum
from grokviz.analysis.group import group_for
from grokviz.analysis.llc import checkpoint_llc
from grokviz.analysis.progress import progress_measures
from grokviz.core.families import wrong_family_message
from grokviz.errors import GrokvizError
from grokviz.storage.runs import Run
from grokviz.storage.timeline import default_key_frequencies, timeline

TOP_FREQUENCIES = 3  # before any neuron clusters: the embedding's strongest frequencies stand in
_PROBES: dict[tuple, dict[str, float]] = {}  # (file, size, mtime[, key freqs...]) -> LLC [losses]


def _key_frequencies(run: Run, step: int) -> list[int]:
    """Key frequencies at ``step`` (clustered neurons), else the embedding's strongest ones."""
    keys = default_key_frequencies(run, step)
    if keys:
        return keys
    group = group_for(run.config.task, run.config.p)
    spectrum = embed_spectrum(run.load(step), group)  # [K]: frequency k at index k - 1
    return sorted(int(i) + 1 for i in spectrum.argsort(descending=True)[:TOP_FREQUENCIES])


def _probe(
    run: Run, step: int, key_freqs: list[int], llc_known: dict[int, float], llc: bool = True
) -> dict[str, float]:
    path = run.checkpoint_path(step).resolve()
    stat = path.stat()
    file_key = (str(path), stat.st_size, stat.st_mtime_ns)
    if len(_PROBES) > 4096:
        _PROBES.clear()
    if file_key + tuple(key_freqs) not in _PROBES:
        params, dataset = run.load(step), run.config.dataset()
        group = group_for(run.config.task, run.config.p)
        measures = progress_measures(params, dataset, key_freqs, group, run.config.architecture)
        _PROBES[file_key + tuple(key_freqs)] = {
            "restricted_loss": measures["restricted_loss"],
            "restricted_loss_train": measures["restricted_loss_train"],
            "excluded_loss": measures["excluded_loss"],
        }
    if not llc and file_key not in _PROBES and step not in llc_known:
        return {**_PROBES[file_key + tuple(key_freqs)], "llc": math.nan}
    if file_key not in _PROBES:  # the LLC does not depend on the key frequencies: once per file
        value = llc_known.get(step)
        if value is None:
            value = checkpoint_llc(run.load(step), run.config.dataset(), run.config.architecture)
        _PROBES[file_key] = {"llc": value}
    return {**_PROBES[file_key + tuple(key_freqs)], **_PROBES[file_key]}


def _require_modular(run: Run) -> None:
    if run.family != "modular":
        # The norm law and the constants were fitted on modular-arithmetic runs; the adder's and a
        # group's curves have not been calibrated, so a number would be a guess in a forecast's clothes.
        message = wrong_family_message(run.family, "modular", str(run.path), "the forecast")
        raise GrokvizError(f"{message}: its constants were fitted on those only")
    why = outside_the_fit(run.config)
    if why is not None:
        raise GrokvizError(f"{run.path}: {why}, so a forecast step would be a guess (docs/forecast.md)")


def outside_the_fit(cfg) -> str | None:
    """Why the forecast's constants do not cover a modular run of ``cfg``, or None where they do:
    every fitting run had one layer and the full batch."""
    if cfg.n_layers == 1 and cfg.batch_size is None:
        return None
    what = f"{cfg.n_layers} layers" if cfg.n_layers > 1 else f"minibatches of {cfg.batch_size}"
    return f"the forecast's constants were fitted on 1-layer, full-batch runs; this run has {what}"


def observe(run: Run, at_step: int | None = None, frame: pd.DataFrame | None = None, llc: bool = True) -> Observation:
    """What a forecast at ``at_step`` (default: the last logged or saved step) may read.

    ``frame``: the run's timeline if already computed (its rows after at_step are not read).
    ``llc=False``: the probes' LLC is NaN unless already known (scripts/eval_forecast.py's fitting
    forecasts at many steps, whose correction does not use it: about 3 s per checkpoint saved)."""
    _require_modular(run)
    steps = run.steps()
    log = run.log()
    last = max([*steps, *log["step"].tolist()], default=0)
    at = last if at_step is None else int(at_step)
    if at < 0:
        raise GrokvizError(f"--at {at}: a step is at least 0")
    saved = [s for s in steps if s <= at]
    if not saved:
        raise GrokvizError(f"too early at step {at}: {run.path} has no checkpoint at or before it")
    frame = timeline(run) if frame is None else frame
    curve = frame[frame["step"] <= at].sort_values("step").reset_index(drop=True)
    columns = ["step", "sum_sq_weights", "gini_embed", "gini_unembed"]
    obs = Observation(
        at_step=at,
        lr=run.config.lr,
        weight_decay=run.config.weight_decay,
        horizon=run.config.steps,
        log=log[log["step"] <= at].reset_index(drop=True),
        curve=curve[columns],
    )
    if obs.log.empty:
        raise GrokvizError(f"too early at step {at}: {run.path} has no log rows at or before it")
    law = norm_law(obs)  # raises "too early" before the probes cost anything
    keys = _key_frequencies(run, law.end_step)
    llc_known = {}
    if "llc" in curve:
        llc_known = {int(s): float(v) for s, v in zip(curve["step"], curve["llc"]) if v == v}
    obs.probe_start = _probe(run, law.peak_step, keys, llc_known, llc)
    obs.probe_end = _probe(run, law.end_step, keys, llc_known, llc)
    return obs


def forecast_run(
    run: Run, at_step: int | None = None, signals: str = "train", constants: Constants | None = None
) -> Forecast:
    """Will ``run`` grok, and when, from what it shows at ``at_step`` (default: its last step)."""
    return forecast(observe(run, at_step), signals, constants or fitted_constants())


def forecast_history(
    run: Run,
    signals: str = "train",
    max_points: int = 12,
    progress: Callable[[int, int], None] | None = None,
    frame: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The forecast at up to ``max_points`` saved steps spread over the run (steps where it is too
    early are left out). Columns: at_step, will_grok, grok_step, low, high."""
    _require_modular(run)
    frame = timeline(run) if frame is None else frame
    steps = run.steps()
    if len(steps) > max_points:
        picks = sorted({steps[round(i * (len(steps) - 1) / (max_points - 1))] for i in range(max_points)})
    else:
        picks = steps
    rows = []
    for done, step in enumerate(picks, 1):
        try:
            made = forecast(observe(run, step, frame), signals, fitted_constants())
        except GrokvizError:
            made = None
        if made is not None:
            rows.append({k: made.to_dict()[k] for k in ("at_step", "will_grok", "grok_step", "low", "high")})
        if progress is not None:
            progress(done, len(picks))
    return pd.DataFrame(rows, columns=["at_step", "will_grok", "grok_step", "low", "high"])
