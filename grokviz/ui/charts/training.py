"""Charts over training: curves from the log and progress measures, spectra over checkpoints, an
ablation applied at every checkpoint. Each is drawn once per run and gets the step rule added."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

import altair as alt
import numpy as np
import pandas as pd

from grokviz.ui.charts.base import (
    FIT_WIDTH,
    HEATMAP_SCHEME,
    KEY_COLOR,
    LOG_LABELS,
    OTHER_COLOR,
    SERIES_PALETTE,
    SPLIT_COLORS,
    decades,
    step_rule,
    title_params,
    with_context,
)


def curves(
    frame: pd.DataFrame,
    *,
    title: str,
    y_title: str,
    subtitle: str | None = None,
    log_y: bool = False,
    step: int | None = None,
    phases: pd.DataFrame | None = None,
    colors: Mapping[str, str] | None = None,
    y_format: str | None = None,
    height: int = 220,
    points: bool = False,
    narrow: bool = False,
) -> alt.LayerChart:
    """Lines of ``value`` over ``step``, one per ``series`` (a long frame: step, series, value).

    ``log_y`` drops non-positive values (they have no place on a log axis) rather than failing.
    ``colors`` fixes series colours by name; otherwise a fixed palette in order of appearance.
    ``narrow`` (a third of the page): legend in two columns, no phase legend (the wide charts have it).
    """
    frame = frame[["step", "series", "value"]].copy()
    frame = frame[np.isfinite(frame["value"].astype(float))]
    if log_y:
        frame = frame[frame["value"] > 0]
    names = list(dict.fromkeys(frame["series"]))
    if colors is None:
        colors = {name: SERIES_PALETTE[i % len(SERIES_PALETTE)] for i, name in enumerate(names)}
    domain = [n for n in names if n in colors] + [n for n in names if n not in colors]
    palette = [colors.get(n, SERIES_PALETTE[i % len(SERIES_PALETTE)]) for i, n in enumerate(domain)]
    y = alt.Y("value:Q", title=y_title)
    if log_y:
        y = y.scale(type="log").axis(labelExpr=LOG_LABELS, values=decades(frame["value"]))
    if y_format:
        y = y.axis(format=y_format)
    mark = alt.Chart(frame).mark_line(point=alt.OverlayMarkDef(size=18) if points else False, strokeWidth=1.8)
    lines = mark.encode(
        x=alt.X("step:Q", title="training step", axis=alt.Axis(format="~s"), scale=alt.Scale(nice=False)),
        y=y,
        color=alt.Color(
            "series:N",
            scale=alt.Scale(domain=domain, range=palette),
            legend=alt.Legend(title=None, orient="top", columns=2 if narrow else max(len(domain), 1)),
        ),
        tooltip=[alt.Tooltip("step:Q", format=","), "series:N", alt.Tooltip("value:Q", format=".4g")],
    )
    return with_context(lines, step, phases, phase_legend=not narrow).properties(
        title=title_params(title, subtitle), height=height, autosize=FIT_WIDTH
    )


def llc_chart(
    frame: pd.DataFrame, *, step: int | None = None, phases: pd.DataFrame | None = None, height: int = 220
) -> alt.LayerChart:
    """The local learning coefficient per checkpoint (frame columns step, llc), the phases shaded."""
    data = pd.DataFrame({"step": frame["step"], "series": "LLC (training pairs)", "value": frame["llc"]})
    return curves(
        data,
        title="Local learning coefficient",
        subtitle="SGLD estimate per checkpoint, one fixed sampler setting (docs/forecast.md)",
        y_title="LLC",
        step=step,
        phases=phases,
        points=True,
        colors={"LLC (training pairs)": "#9467bd"},
        height=height,
    )


# --- Fourier ---------------------------------------------------------------------------------


def spectrum_chart(
    spectrum: pd.DataFrame, *, title: str, subtitle: str | None = None, height: int = 200
) -> alt.LayerChart:
    """Bars of ``norm`` per ``frequency`` (columns frequency, norm, key: bool), key ones orange and labelled."""
    frame = spectrum.copy()
    frame["kind"] = np.where(frame["key"], "key frequency", "other")
    n_freq = int(frame["frequency"].max()) if len(frame) else 1
    bars = (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X(
                "frequency:Q",
                title="frequency k",
                scale=alt.Scale(domain=[0.5, n_freq + 0.5], nice=False),
                axis=alt.Axis(values=[1] + list(range(5, n_freq + 1, 5))),
            ),
            y=alt.Y("norm:Q", title="norm"),
            color=alt.Color(
                "kind:N",
                scale=alt.Scale(domain=["key frequency", "other"], range=[KEY_COLOR, OTHER_COLOR]),
                legend=alt.Legend(title=None, orient="top"),
            ),
            tooltip=["frequency:Q", alt.Tooltip("norm:Q", format=".3g"), "kind:N"],
        )
    )
    labels = (
        alt.Chart(frame[frame["key"]])
        .mark_text(dy=-7, fontSize=11, color=KEY_COLOR, fontWeight="bold")
        .encode(x="frequency:Q", y="norm:Q", text="frequency:Q")
    )
    return alt.layer(bars, labels).properties(title=title_params(title, subtitle), height=height, autosize=FIT_WIDTH)


def with_spectrum(template: Mapping, spectrum: pd.DataFrame, title: str) -> dict:
    """A :func:`spectrum_chart` spec (as :func:`~grokviz.ui.charts.base.static_spec` makes it, for any
    spectrum of the same frequencies and key frequencies) with ``spectrum``'s bars and labels and
    ``title``. The step slider swaps the data this way instead of building and validating two
    Altair charts on every move (about 40 ms each on a 2-core CPU)."""
    rows = spectrum.assign(kind=np.where(spectrum["key"], "key frequency", "other"))
    records = json.loads(rows.to_json(orient="records", double_precision=15))  # as static_spec stores them
    bars, labels = (layer["data"]["name"] for layer in template["layer"])
    out = dict(template)
    out["datasets"] = {bars: records, labels: [r for r in records if r["key"]]}
    out["title"] = {**template["title"], "text": title}
    return out


def spectrum_heatmap(
    frame: pd.DataFrame,
    *,
    title: str,
    subtitle: str | None = None,
    key_frequencies: Iterable[int] = (),
    step: int | None = None,
    height: int = 280,
) -> alt.LayerChart:
    """Frequency x step heatmap: columns step, start, end (the span a checkpoint stands for), frequency, share.

    The y axis labels only the key frequencies (in orange, with an orange tick at the right
    edge), so a reader can follow their rows from the plateau to the end of training.
    """
    keys = sorted(int(k) for k in key_frequencies)
    frame = frame.copy()
    frame["low"] = frame["frequency"] - 0.5
    frame["high"] = frame["frequency"] + 0.5
    n_freq = int(frame["frequency"].max()) if len(frame) else 1
    x_end = float(frame["end"].max()) if len(frame) else 1.0
    y_axis = alt.Axis(
        values=keys or list(range(5, n_freq + 1, 5)),
        labelColor=KEY_COLOR if keys else None,
        labelFontWeight="bold" if keys else "normal",
        grid=False,
        labelOverlap="greedy",
    )
    cells = (
        alt.Chart(frame)
        .mark_rect(strokeWidth=0.6)
        .encode(
            x=alt.X(
                "start:Q",
                title="training step",
                axis=alt.Axis(format="~s"),
                scale=alt.Scale(domain=[float(frame["start"].min()) if len(frame) else 0.0, x_end], nice=False),
            ),
            x2="end:Q",
            y=alt.Y(
                "low:Q",
                title="frequency k" + (" (key ones labelled)" if keys else ""),
                scale=alt.Scale(domain=[0.5, n_freq + 0.5], nice=False),
                axis=y_axis,
            ),
            y2="high:Q",
            color=alt.Color(
                "share:Q",
                title="share of norm²",
                scale=alt.Scale(scheme=HEATMAP_SCHEME),
                legend=alt.Legend(format=".0%"),
            ),
            # Stroke in the fill colour: no hairline gaps between neighbouring checkpoints.
            stroke=alt.Stroke("share:Q", scale=alt.Scale(scheme=HEATMAP_SCHEME), legend=None),
            tooltip=[alt.Tooltip("step:Q", format=","), "frequency:Q", alt.Tooltip("share:Q", format=".1%")],
        )
    )
    layers = [cells]
    if keys:
        ticks = pd.DataFrame({"frequency": keys, "x": x_end})
        layers.append(
            alt.Chart(ticks)
            .mark_tick(orient="horizontal", color=KEY_COLOR, thickness=3, size=10)
            .encode(x="x:Q", y="frequency:Q", tooltip=["frequency:Q"])
        )
    if step is not None:
        layers.append(step_rule(step).mark_rule(color="white", strokeDash=[5, 3], size=1.5))
    return alt.layer(*layers).properties(title=title_params(title, subtitle), height=height, autosize=FIT_WIDTH)


# --- ablation ----------------------------------------------------------------------------------


def ablation_timeline(
    frame: pd.DataFrame, metric: str, *, step: int | None = None, phases: pd.DataFrame | None = None, height: int = 220
) -> alt.LayerChart:
    """``metric`` ("accuracy" or "loss", log scale) over training, before (solid) and after (dashed) one ablation.

    frame columns: step, split (train/test), when (before/after), accuracy, loss.
    """
    log_y = metric == "loss"
    data = frame[np.isfinite(frame[metric].astype(float))]
    if log_y:
        data = data[data[metric] > 0]
    y = alt.Y(f"{metric}:Q", title="loss (log scale)" if log_y else "accuracy")
    y = (
        y.scale(type="log").axis(labelExpr=LOG_LABELS, values=decades(data[metric]))
        if log_y
        else y.scale(domain=[0, 1]).axis(format=".0%")
    )
    lines = (
        alt.Chart(data)
        .mark_line(strokeWidth=1.8)
        .encode(
            x=alt.X("step:Q", title="training step", axis=alt.Axis(format="~s"), scale=alt.Scale(nice=False)),
            y=y,
            color=alt.Color(
                "split:N",
                scale=alt.Scale(domain=["train", "test"], range=[SPLIT_COLORS["train"], SPLIT_COLORS["test"]]),
                legend=alt.Legend(title=None, orient="top"),
            ),
            strokeDash=alt.StrokeDash(
                "when:N",
                scale=alt.Scale(domain=["before", "after"], range=[[1, 0], [5, 3]]),
                legend=alt.Legend(title=None, orient="top"),
            ),
            tooltip=[alt.Tooltip("step:Q", format=","), "split:N", "when:N", alt.Tooltip(f"{metric}:Q", format=".4g")],
        )
    )
    title = "Loss before and after" if log_y else "Accuracy before and after"
    return with_context(lines, step, phases).properties(title=title_params(title), height=height, autosize=FIT_WIDTH)


# --- neurons -----------------------------------------------------------------------------------
