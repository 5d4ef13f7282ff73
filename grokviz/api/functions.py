"""``gv.open_run``, ``gv.train``, ``gv.analyze``, ``gv.ablate``, ``gv.probe``, ``gv.forecast``: the
library's calls for a notebook, each a thin wrapper over what the commands and the app run.

A run is given as a :class:`~grokviz.storage.runs.Run` or its folder's path; ``step=None`` means
the run's last checkpoint. Errors a user can cause raise :class:`~grokviz.errors.GrokvizError`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from grokviz.errors import GrokvizError

if TYPE_CHECKING:
    import pandas as pd

    from grokviz.analysis.ablation import AblationResult
    from grokviz.analysis.neurons import ProbeResult
    from grokviz.core.stored import StoredConfig
    from grokviz.storage.runs import Run
    from grokviz.storage.sweeps import Sweep


def open_run(path: str | os.PathLike) -> Run:
    """The run folder at ``path``, opened for reading: ``.config``, ``.steps()`` (the checkpoints
    that load), ``.load(step)`` (the weights, TransformerLens names), ``.log()`` (log.csv as a
    DataFrame), ``.problems`` (files skipped, and why)."""
    from grokviz.storage.runs import open_run as _open_run

    return _open_run(path)


def open_sweep(path: str | os.PathLike) -> Sweep:
    """The sweep folder at ``path`` (written by ``grokviz ensemble``): ``.axes`` and ``.members``
    (each with its run folder and swept values); ``grokviz.storage.sweeps.outcome_table`` classifies them."""
    from grokviz.storage.sweeps import open_sweep as _open_sweep

    return _open_sweep(path)


def as_run(run: Run | str | os.PathLike) -> Run:
    """A :class:`Run` as it is, or the run folder at a path opened."""
    from grokviz.storage.runs import Run

    return run if isinstance(run, Run) else open_run(run)


def checkpoint_step(run: Run, step: int | None) -> int:
    """``step``, checked against the run's checkpoints; None: the last one."""
    from grokviz.storage.runs import shown_steps

    steps = run.steps()
    if not steps:
        raise GrokvizError(f"{run.path}: the run has no checkpoints yet")
    if step is None:
        return steps[-1]
    if step not in steps:
        raise GrokvizError(f"{run.path}: no checkpoint for step={step}; saved steps are {shown_steps(steps)}")
    return step


def train(
    config: StoredConfig,
    out: str | os.PathLike,
    *,
    tracker: Any = None,
    progress: bool = True,
    resume: bool = False,
    device: str = "auto",
    threads: int | None = None,
) -> Run:
    """Train ``config`` (a ``gv.Config``, ``gv.DigitsConfig`` or ``gv.GroupsConfig``) into the new
    run folder ``out`` with the family's own trainer (the one ``grokviz train``, ``train-digits`` or
    ``train-group`` runs: the same files) and return the finished run, opened.

    ``tracker``: ``"tensorboard"``, ``"wandb"``, ``"mlflow"`` or an object with ``log(values,
    step)`` and ``close()`` (docs/trackers.md). ``progress`` draws a progress bar; ``resume``
    continues ``out`` from its resume state; ``device`` and ``threads`` as the commands' flags.
    The adder trains on the CPU unless ``device`` says otherwise (its tiny model is launch-bound on a GPU)."""
    from grokviz.core.families import family_of
    from grokviz.core.stored import StoredConfig

    if not isinstance(config, StoredConfig):
        raise GrokvizError(f"config={config!r} must be a grokviz config (gv.Config, gv.DigitsConfig, gv.GroupsConfig)")
    family = family_of(config)
    options: dict[str, Any] = {"tracker": tracker, "progress": progress, "resume": resume, "threads": threads}
    if device != "auto" or family.name != "digits":
        options["device"] = device
    return family.load(family.trainer_path)(config, out, **options)


@dataclass(frozen=True)
class Analysis:
    """One checkpoint summarised, as ``grokviz analyze`` does: ``summary`` holds every measure
    (``key_frequencies``, ``test_accuracy``, ``fve``, ... for a modular run; the adder's and a
    group run's own otherwise; docs/cli.md lists them), ``text`` the command's human-readable summary."""

    run: Run | None
    step: int
    summary: dict
    text: str

    def to_dict(self) -> dict:
        """The object ``grokviz analyze --json`` prints (NaN and infinities as None)."""
        from grokviz.commands.analyze import clean

        return clean(self.summary)

    def __getitem__(self, key: str) -> Any:
        return self.summary[key]

    def __repr__(self) -> str:
        return self.text


def analyze(
    run: Run | str | os.PathLike,
    step: int | None = None,
    *,
    key_freqs: list[int] | None = None,
    threshold: float = 0.85,
    timeline: bool = False,
) -> Analysis:
    """Summarise one checkpoint of ``run`` (a run, a run folder or one checkpoint file; ``step``
    default the last) exactly as ``grokviz analyze`` does: ``.to_dict()`` equals ``--json``'s
    object. ``key_freqs``, ``threshold`` and ``timeline`` are the command's ``--key-freqs``,
    ``--threshold`` and ``--timeline`` (the progress measures of every checkpoint, cached beside the run)."""
    import torch

    from grokviz.commands.analyze import summarise_target
    from grokviz.storage.runs import Run

    # As the command: denormal weights after long weight decay slow CPU arithmetic many-fold.
    torch.set_flush_denormal(True)
    path = run.path if isinstance(run, Run) else Path(run)
    freqs = None if key_freqs is None else ",".join(str(int(k)) for k in key_freqs)
    summary, module, checkpoint = summarise_target(path, step, freqs, threshold, timeline)
    return Analysis(checkpoint.run, checkpoint.step, summary, module.human(str(path), summary))


@dataclass(frozen=True)
class Ablation:
    """An ablation of one checkpoint: ``result`` (loss and accuracy per split before and after,
    the [p, p] correctness grids), and what ``gv.charts.ablation_grid`` needs to draw it."""

    run: Run
    step: int
    result: AblationResult
    dataset: Any  # grokviz.core.tasks.Dataset
    group: Any  # grokviz.analysis.group.Group

    def table(self) -> pd.DataFrame:
        """Loss and accuracy on train, test and all pairs, before and after (the app's table)."""
        from grokviz.ui.views.metrics import metrics_display, metrics_table

        return metrics_display(metrics_table(self.result.before, self.result.after))


def modular_run(run: Run | str | os.PathLike, what: str) -> Run:
    """The run, refused in words unless it is a modular-arithmetic run (the Fourier views need one)."""
    from grokviz.core.families import require_family

    opened = as_run(run)
    require_family(opened.config, "modular", str(opened.path), what)
    return opened


def ablate(
    run: Run | str | os.PathLike,
    step: int | None = None,
    frequencies: list[int] | None = None,
    mode: str = "remove",
    site: str = "logits",
    *,
    layer: int | None = None,
) -> Ablation:
    """Remove (``mode="remove"``) or keep only (``"keep"``) Fourier ``frequencies`` (default: the
    run's key frequencies) at ``site`` (``"logits"``, ``"embedding"``, ``"neurons"``) of one
    checkpoint of a modular run: the app's Ablation tab. ``layer``: whose neurons the neurons site
    projects (None: the last block's; a 1-layer run has block 0 only). Returns an :class:`Ablation`
    (``.result.after["test"].accuracy``, ``.table()``)."""
    from grokviz.analysis.ablation import ablate as _ablate
    from grokviz.analysis.group import group_for
    from grokviz.core.config import dataset_for
    from grokviz.storage.timeline import default_key_frequencies

    opened = modular_run(run, "gv.ablate")
    at = checkpoint_step(opened, step)
    cfg = opened.config
    chosen = default_key_frequencies(opened) if frequencies is None else list(frequencies)
    dataset, group = dataset_for(cfg), group_for(cfg.task, cfg.p)
    result = _ablate(opened.load(at), dataset, chosen, mode, site, group, cfg.architecture, layer=layer)
    return Ablation(opened, at, result, dataset, group)


def key_frequencies(
    run: Run | str | os.PathLike, step: int | None = None, *, layer: int | None = None
) -> dict[int, int]:
    """Key frequency -> number of neurons clustered on it (FVE >= 0.85) at ``step`` (default the
    last), in every block (counts added), or in block ``layer`` alone."""
    from grokviz.analysis import neurons
    from grokviz.analysis.group import group_for

    opened = modular_run(run, "gv.key_frequencies")
    cfg = opened.config
    params = opened.load(checkpoint_step(opened, step))
    group = group_for(cfg.task, cfg.p)
    if layer is not None:
        acts = [neurons.neuron_activations(params, cfg.architecture, layer)]
    else:
        acts = neurons.layer_activations(params, cfg.architecture)
    return neurons.blocks_key_frequencies(acts, group)


def neuron_table(run: Run | str | os.PathLike, step: int | None = None, *, layer: int | None = None) -> pd.DataFrame:
    """One row per MLP neuron of block ``layer`` (None: the last) at ``step``: neuron, frequency,
    best_fve, clustered, dead."""
    from grokviz.analysis import neurons
    from grokviz.analysis.group import group_for

    opened = modular_run(run, "gv.neuron_table")
    cfg = opened.config
    acts = neurons.neuron_activations(opened.load(checkpoint_step(opened, step)), cfg.architecture, layer)
    return neurons.neuron_stats(group_for(cfg.task, cfg.p).on_group(acts)).table()


@dataclass(frozen=True)
class Probe:
    """One neuron at one input explained by the cos·cos / sin·sin terms of its frequency:
    ``result`` (activation, fit, residual, fve, frequency) and ``table()`` (the app's table)."""

    neuron: int
    a: int
    b: int
    step: int
    result: ProbeResult
    discrete_log: bool

    def table(self) -> pd.DataFrame:
        from grokviz.ui.views.neurons import probe_table

        return probe_table(self.result.terms, self.discrete_log)


def probe(
    run: Run | str | os.PathLike,
    neuron: int | None = None,
    a: int = 1,
    b: int = 2,
    step: int | None = None,
    *,
    layer: int | None = None,
) -> Probe:
    """The app's probe: neuron ``neuron`` of block ``layer`` (None: the last; default neuron: the
    best-fitting one of the largest cluster at the last checkpoint) at input (a, b), fitted by the
    nine terms of its frequency over all inputs. For ``mul`` and ``div`` the terms are over
    (log a, log b); a or b = 0 is refused."""
    from grokviz.analysis import neurons
    from grokviz.analysis.group import group_for
    from grokviz.ui.views.neurons import default_neuron

    opened = modular_run(run, "gv.probe")
    cfg = opened.config
    at = checkpoint_step(opened, step)
    for name, value in (("a", a), ("b", b)):
        if not 0 <= value < cfg.p:
            raise GrokvizError(f"{name}={value} must be a token 0..{cfg.p - 1}")
    if neuron is None:
        neuron = default_neuron(neuron_table(opened, layer=layer))
    if not 0 <= neuron < cfg.d_mlp:
        raise GrokvizError(f"neuron={neuron} must be 0..{cfg.d_mlp - 1}")
    group = group_for(cfg.task, cfg.p)
    la, lb = group.element(a), group.element(b)
    if la is None or lb is None:
        raise GrokvizError(f"({a}, {b}) contains 0, which has no discrete log: choose a, b != 0")
    acts = group.on_group(neurons.neuron_activations(opened.load(at), cfg.architecture, layer))
    return Probe(neuron, a, b, at, neurons.probe(acts, neuron, la, lb), group.discrete_log)


def forecast(run: Run | str | os.PathLike, at_step: int | None = None, signals: str = "train") -> Any:
    """When will this run grok? ``grokviz.storage.forecast.forecast_run`` (the app's forecast):
    a Forecast read off the run's log up to ``at_step`` (default: all of it) from the ``signals``
    the forecast issue defines."""
    import importlib.util

    if importlib.util.find_spec("grokviz.storage.forecast") is None:
        raise GrokvizError("gv.forecast needs grokviz.storage.forecast, which this version of grokviz does not have")
    from grokviz.storage.forecast import forecast_run

    return forecast_run(as_run(run), at_step=at_step, signals=signals)
