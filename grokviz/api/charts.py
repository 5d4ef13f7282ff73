"""``gv.charts``: the app's charts of a run, as Altair charts a notebook renders.

Each function takes a run (or its folder) and draws with the app's own pieces: the data is shaped
by ``grokviz.ui.views`` and drawn by ``grokviz.ui.charts`` (the app's cached loaders wrap the same
analysis calls made here uncached). ``step=None`` is the run's last checkpoint. A chart's width is
fixed (``width``) because a notebook has no container for the app's fit-to-column layout.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from grokviz.api.functions import Ablation, as_run, checkpoint_step, modular_run
from grokviz.errors import GrokvizError

if TYPE_CHECKING:
    import altair as alt
    import pandas as pd

    from grokviz.storage.runs import Run

WIDTH = 560  # px: about half a notebook's width at the default font size


def _allow_grids() -> None:
    """Lift Altair's 5,000-row limit (process-wide, as the app's renderer has none): an (a, b) grid
    has p² cells, 12,769 at p = 113. Called by the charts that draw one."""
    import altair as alt

    alt.data_transformers.disable_max_rows()


def _row(*charts: alt.TopLevelMixin) -> alt.HConcatChart:
    """Charts side by side: Vega-Lite takes ``autosize`` only at the top, so each chart's is moved there."""
    import altair as alt

    from grokviz.ui.charts import FIXED

    parts = []
    for chart in charts:
        part = chart.copy()
        part.autosize = alt.Undefined
        parts.append(part)
    return alt.hconcat(*parts).properties(autosize=FIXED)


def phases(run: Run | str | os.PathLike, timeline: pd.DataFrame | None = None):
    """The run's phase boundaries (memorisation, circuit formation, cleanup) by the app's rule,
    read off its log (and ``timeline``, the progress measures, when given): a ``Phases``."""
    from grokviz.analysis.progress import phase_boundaries

    opened = as_run(run)
    log = opened.log()
    return phase_boundaries(log if len(log) else None, timeline)


def _bands(run: Run, timeline: pd.DataFrame | None) -> pd.DataFrame:
    """The phases as the bands the app shades (phase, start, end)."""
    from grokviz.ui.views.phases import phase_table

    log = run.log()
    last = max([*run.steps(), int(log["step"].max()) if len(log) else 0])
    return phase_table(phases(run, timeline), last)


def training_curves(
    run: Run | str | os.PathLike, metric: str = "loss", *, timeline: pd.DataFrame | None = None, width: int = WIDTH
) -> alt.LayerChart:
    """Train and test ``metric`` (``"loss"``, log scale, or ``"accuracy"``) from the run's log, the
    phases shaded: the explorer's Training tab. ``timeline`` (``gv.charts.timeline(run)``) lets the
    end of cleanup also wait for the weight norm, as the app does once it has computed it."""
    from grokviz.ui import charts
    from grokviz.ui.views import curves

    if metric not in ("loss", "accuracy"):
        raise GrokvizError(f"metric={metric!r} must be 'loss' or 'accuracy'")
    opened = as_run(run)
    if opened.family == "digits":
        raise GrokvizError(f"{opened.path}: is a 10-digit adder run; draw it with gv.charts.digit_heatmap")
    log = opened.log()
    if not len(log):
        raise GrokvizError(f"{opened.path}: the run has no training log to draw")
    columns = {f"train_{metric}": "train", f"test_{metric}": "test"}
    chart = charts.curves(
        curves.long_curves(log, columns),
        title=metric.capitalize(),
        subtitle="from the training log",
        y_title="loss (log scale)" if metric == "loss" else "accuracy",
        log_y=metric == "loss",
        y_format=None if metric == "loss" else ".0%",
        phases=_bands(opened, timeline),
        colors=charts.SPLIT_COLORS,
    )
    return chart.properties(width=width)


def timeline(run: Run | str | os.PathLike, key_freqs: list[int] | None = None) -> pd.DataFrame:
    """The paper's progress measures at every checkpoint (``grokviz analyze --timeline``'s rows:
    restricted and excluded loss for the key frequencies of the last checkpoint, Gini of the
    spectra, sums of squared weights), with a progress bar; cached beside the run."""
    from grokviz.training.trackers import timeline_with_bar

    return timeline_with_bar(modular_run(run, "the progress measures"), key_freqs)


def progress_measures(
    run: Run | str | os.PathLike, frame: pd.DataFrame | None = None, *, width: int = 330
) -> alt.HConcatChart:
    """The Training tab's three panels of progress measures (restricted and excluded loss, Gini of
    the spectra, sum of squared weights) with the phases shaded; ``frame``: ``timeline(run)``."""

    from grokviz.ui import charts
    from grokviz.ui.views import curves

    opened = modular_run(run, "the progress measures")
    frame = timeline(opened) if frame is None else frame
    bands = _bands(opened, frame)
    panels = [
        charts.curves(
            curves.long_curves(frame, series),
            title=title,
            y_title=y_title,
            log_y=log_y,
            phases=bands,
            points=True,
            narrow=True,
            colors=charts.MEASURE_COLORS,
        ).properties(width=width)
        for title, (series, log_y, y_title, _explanation) in curves.PROGRESS_PANELS.items()
    ]
    return _row(*panels)


def _spectrum_function(matrix: str):
    """The analysis function of ``matrix``'s spectrum: W_E's, or W_L's (the neuron-to-logit map)."""
    from grokviz.analysis import fourier

    functions = {"W_E": fourier.embed_spectrum, "W_L": fourier.unembed_spectrum}
    if matrix not in functions:
        raise GrokvizError(f"matrix={matrix!r} must be 'W_E' or 'W_L'")
    return functions[matrix]


def spectrum(
    run: Run | str | os.PathLike, step: int | None = None, matrix: str = "W_E", *, width: int = WIDTH
) -> alt.LayerChart:
    """The norm of each Fourier frequency of ``matrix`` (``"W_E"``, the embedding, or ``"W_L"``,
    the neuron-to-logit map of the last block's neurons) at one checkpoint, key frequencies in
    orange: the Fourier tab."""
    from grokviz.analysis.group import group_for
    from grokviz.storage.timeline import default_key_frequencies
    from grokviz.ui import charts
    from grokviz.ui.views import spectra

    spectrum_of = _spectrum_function(matrix)
    opened = modular_run(run, "gv.charts.spectrum")
    at = checkpoint_step(opened, step)
    group = group_for(opened.config.task, opened.config.p)
    norms = spectrum_of(opened.load(at), group)  # [n_frequencies]
    over = f", over log x (Z_{group.order})" if group.discrete_log else ""
    return charts.spectrum_chart(
        spectra.spectrum_frame(norms, default_key_frequencies(opened)),
        title=f"{matrix} at step {at:,}",
        subtitle=f"norm of each frequency (cos and sin together){over}",
    ).properties(width=width)


def spectrum_over_training(
    run: Run | str | os.PathLike, matrix: str = "W_E", *, width: int = 2 * WIDTH
) -> alt.LayerChart:
    """Each checkpoint's share of ``matrix``'s squared norm per frequency, as a heatmap over
    training, the key frequencies labelled: the Fourier tab's lower charts."""
    from grokviz.analysis.group import group_for
    from grokviz.storage.timeline import default_key_frequencies
    from grokviz.ui import charts
    from grokviz.ui.views import spectra

    spectrum_of = _spectrum_function(matrix)
    opened = modular_run(run, "gv.charts.spectrum_over_training")
    group = group_for(opened.config.task, opened.config.p)
    history = {step: spectrum_of(opened.load(step), group).numpy() for step in opened.steps()}
    return charts.spectrum_heatmap(
        spectra.spectrum_history(history),
        title=f"{matrix} spectrum over training",
        subtitle="each column is one checkpoint; colour is the frequency's share of its squared norm",
        key_frequencies=default_key_frequencies(opened),
    ).properties(width=width)


def ablation_grid(ablation: Ablation, *, size: int = 340) -> alt.Chart:
    """Which (a, b) ``gv.ablate(...)`` leaves answered correctly, train and test pairs apart: the
    Ablation tab's grid."""
    from grokviz.ui import charts
    from grokviz.ui.views import grids

    _allow_grids()
    result, dataset = ablation.result, ablation.dataset
    mode = "keep only" if result.mode == "keep" else "remove"
    return charts.correctness_grid(
        grids.grid_status(result.correct_after, dataset.is_train_grid(), grids.valid_grid(dataset, ablation.group)),
        title=f"{mode} {{{', '.join(map(str, result.frequencies))}}} at the {result.site}, step {ablation.step:,}",
        subtitle=f"before the ablation {result.before['all'].accuracy:.1%} of all pairs were right",
        size=size,
    )


def neuron(
    run: Run | str | os.PathLike, neuron: int, step: int | None = None, *, layer: int | None = None, size: int = 300
) -> alt.HConcatChart:
    """One MLP neuron of block ``layer`` (None: the last) over all inputs (a, b) and its 2-D Fourier
    spectrum: a frequency-k neuron lights (k, k), (k, const) and (const, k). The Neurons tab's
    heatmaps (over log a, log b for ``mul`` and ``div``); ``gv.probe`` fits it at one input."""

    from grokviz.analysis import fourier, neurons
    from grokviz.analysis.group import group_for
    from grokviz.analysis.layers import resolve_layer
    from grokviz.ui import charts
    from grokviz.ui.views.spectra import frequency_pair_norms

    _allow_grids()
    opened = modular_run(run, "gv.charts.neuron")
    cfg = opened.config
    if not 0 <= neuron < cfg.d_mlp:
        raise GrokvizError(f"neuron={neuron} must be 0..{cfg.d_mlp - 1}")
    at = checkpoint_step(opened, step)
    group = group_for(cfg.task, cfg.p)
    params = opened.load(at)
    acts = group.on_group(neurons.neuron_activations(params, cfg.architecture, layer))  # [n, n, d_mlp]
    axis = "log " if group.discrete_log else ""
    of_layer = f" of layer {resolve_layer(params, layer)}" if cfg.n_layers > 1 else ""
    return _row(
        charts.heatmap(
            acts[:, :, neuron].numpy(),
            title=f"Neuron {neuron}{of_layer} over all inputs",
            subtitle=f"activation for every ({axis}a, {axis}b) at step {at:,}",
            x_title=f"{axis}b",
            y_title=f"{axis}a",
            tick_every=10 if cfg.p > 40 else 5,
            size=size,
        ),
        charts.neuron_spectrum(
            frequency_pair_norms(fourier.fourier_2d(acts[:, :, neuron].double()), centre=True),
            fourier.n_frequencies(group.order),
            neuron,
            "norm of each (frequency of a, frequency of b) block, mean left out",
            size=size,
        ),
    )


def circles(
    run: Run | str | os.PathLike,
    step: int | None = None,
    frequencies: list[int] | None = None,
    side: str = "embedding",
    *,
    a: int | None = None,
    b: int | None = None,
    size: int = 260,
) -> alt.HConcatChart:
    """Every token in the plane of one frequency's cos and sin components of W_E (``side=
    "embedding"``) or W_U (``"unembedding"``), joined in the order x·k mod p: a circle once the
    model represents x as a rotation. ``frequencies``: default the (up to 4) key frequencies with
    the most neurons; ``a``, ``b``: an input to mark, with its answer. The Circles tab."""

    from grokviz.analysis.circle import circle
    from grokviz.analysis.group import group_for
    from grokviz.api.functions import key_frequencies
    from grokviz.ui import charts
    from grokviz.ui.views import circles as circle_views
    from grokviz.ui.views.grids import correct_answer

    opened = modular_run(run, "gv.charts.circles")
    cfg = opened.config
    at = checkpoint_step(opened, step)
    if frequencies is None:
        counts = key_frequencies(opened)
        frequencies = sorted(sorted(counts, key=lambda k: -counts[k])[:4]) or [1]
    group = group_for(cfg.task, cfg.p)
    params = opened.load(at)
    answer = correct_answer(cfg, a, b) if a is not None and b is not None else None
    marks = {"a": a, "b": b, "answer": answer}
    drawn_charts = []
    for k in frequencies:
        drawn = circle(params, int(k), side, group)
        points, marked = circle_views.circle_frames(drawn, marks)
        drawn_charts.append(
            charts.circle_chart(
                points,
                marked,
                title=f"k = {k}, step {at:,}",
                subtitle=f"{drawn.plane_share:.0%} of the {side}'s variance in this plane",
                size=size,
            )
        )
    return _row(*drawn_charts)


def digit_heatmap(run: Run | str | os.PathLike, step: int | None = None, *, width: int = 2 * WIDTH) -> alt.LayerChart:
    """The 10-digit adder's validation accuracy at each answer digit over training (rows: place
    value, least significant first), a rule at ``step`` (default the last): the Adder page."""
    from grokviz.core.families import require_family
    from grokviz.ui.charts import digits as digit_charts
    from grokviz.ui.views import digits as digit_views

    opened = as_run(run)
    require_family(opened.config, "digits", str(opened.path), "gv.charts.digit_heatmap")
    log = opened.log()
    at = checkpoint_step(opened, step)
    return digit_charts.digit_heatmap(digit_views.digit_heatmap_frame(log), at).properties(width=width)


def digit_curves(run: Run | str | os.PathLike, metric: str = "exact", *, width: int = WIDTH) -> alt.LayerChart:
    """The adder's exact match (``metric="exact"``) or loss (``"loss"``, log scale) over training,
    validation set and training batch: the Adder page's curves."""
    from grokviz.core.families import require_family
    from grokviz.ui.charts import digits as digit_charts
    from grokviz.ui.views import digits as digit_views

    if metric not in ("exact", "loss"):
        raise GrokvizError(f"metric={metric!r} must be 'exact' or 'loss'")
    opened = as_run(run)
    require_family(opened.config, "digits", str(opened.path), "gv.charts.digit_curves")
    log = opened.log()
    frame = digit_views.curve_frame(log, {f"val_{metric}": "validation", f"train_{metric}": "training batch"})
    title, y_title = ("Exact match", "exact match") if metric == "exact" else ("Loss per answer token", "loss")
    step = checkpoint_step(opened, None)
    return digit_charts.curves(frame, step, title, y_title, log_y=metric == "loss").properties(width=width)
