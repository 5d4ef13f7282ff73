"""Data shaping for the Compare page: 2-6 runs' curves on one set of axes, aligned by step or by
their phase boundaries, a milestone table, and the config fields in which the runs differ.

Pure: pandas, numpy and ``progress.Phases`` in, small frames out; no Streamlit, no file I/O.

**Phase alignment.** Each run's phase ends (0, end of memorisation, of circuit formation, of
cleanup; ``grokviz.analysis.progress.phase_boundaries``) are its anchors. A run is drawn against a
reference run by moving its anchors onto the reference's and stretching linearly in between;
after the last anchor both runs have, it keeps its own step count (slope 1), so a run that has
not grokked is aligned by what it did reach and never stretched onto phases it never had.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np
import pandas as pd

from grokviz.storage.sweeps import THRESHOLD
from grokviz.ui.views.curves import MAX_CURVE_POINTS, long_curves

MIN_RUNS, MAX_RUNS = 2, 6
# The bundled pair the page opens on when both are there (baseline first: speed-ups are against it).
DEFAULT_PAIR = ("add-p113", "add-p113-grokfast")
ALIGN_STEP, ALIGN_PHASES = "step", "phase boundaries"
# Stricter than the Sweeps page's 99%: the measure of a Grokfast speed-up is 99.9%.
FULL_ACCURACY = 0.999
PHASE_ENDS = (
    ("memorisation_end", "memorisation"),
    ("circuit_formation_end", "circuit formation"),
    ("cleanup_end", "cleanup"),
)
# With up to 6 runs x 2 series on one chart, fewer points per curve keep the browser quick.
CURVE_POINTS = MAX_CURVE_POINTS // 2


@dataclass(frozen=True)
class RunData:
    """What the page has loaded for one run (any part may be missing: None)."""

    label: str  # as the run picker shows it (``sweep/member`` for sweep members)
    config: dict  # ``Config.to_dict()``
    log: pd.DataFrame | None  # the training log
    timeline: pd.DataFrame | None  # progress measures per checkpoint (``storage.timeline``)
    phases: object  # ``progress.Phases``
    key_counts: Mapping[int, int] | None  # key frequency -> clustered neurons at the last checkpoint
    last_step: int | None  # the last saved checkpoint
    source: tuple = ()  # what it was loaded from (path, live signature): part of the charts' cache keys


# --- choosing runs ------------------------------------------------------------------------------


def default_selection(labels: Mapping[str, str], preferred: Sequence[str] = DEFAULT_PAIR) -> list[str]:
    """Keys of the preferred bundled pair (by label, in that order) when every one is on offer, else []."""
    by_label = {label: key for key, label in labels.items()}
    if all(name in by_label for name in preferred):
        return [by_label[name] for name in preferred]
    return []


# --- alignment ----------------------------------------------------------------------------------


def phase_anchors(phases) -> list[int]:
    """[0, memorisation end, circuit formation end, cleanup end], cut at the first one not reached."""
    anchors = [0]
    for attribute, _ in PHASE_ENDS:
        end = getattr(phases, attribute, None)
        if end is None:
            break
        anchors.append(int(end))
    return anchors


def matched_anchors(anchors: Sequence[int], reference: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """The anchors both runs reached, as (run steps, reference steps), strictly increasing in both.

    A phase of zero length (two ends on one logged step) cannot be stretched: its later end is dropped.
    """
    run_points, ref_points = [], []
    for own, ref in zip(anchors, reference):
        if run_points and (own <= run_points[-1] or ref <= ref_points[-1]):
            continue
        run_points.append(float(own))
        ref_points.append(float(ref))
    return np.asarray(run_points), np.asarray(ref_points)


def align_steps(steps, anchors: Sequence[int], reference: Sequence[int]) -> np.ndarray:
    """Steps of one run -> the reference run's step axis (piecewise linear between matched anchors,
    slope 1 after the last; the module docstring says why)."""
    steps = np.asarray(steps, dtype=float)
    own, ref = matched_anchors(anchors, reference)
    if len(own) == 0:
        return steps.copy()
    inside = np.interp(steps, own, ref)
    beyond = ref[-1] + (steps - own[-1])
    # Before the first anchor (only when it is not step 0): keep the offset too.
    before = ref[0] + (steps - own[0])
    return np.where(steps > own[-1], beyond, np.where(steps < own[0], before, inside))


def reference_run(runs: Sequence[RunData]) -> int:
    """Index of the run to align onto by default: the first with the most phase ends found."""
    counts = [len(phase_anchors(run.phases)) for run in runs]
    return int(np.argmax(counts)) if counts else 0


def x_mapper(runs: Sequence[RunData], align: str, reference: int | None) -> dict[str, Callable]:
    """label -> function(steps) -> x: identity by step; onto ``runs[reference]``'s anchors by phase."""
    if align != ALIGN_PHASES or reference is None:
        return {run.label: _identity for run in runs}
    target = phase_anchors(runs[reference].phases)
    return {run.label: partial(align_steps, anchors=phase_anchors(run.phases), reference=target) for run in runs}


def _identity(steps) -> np.ndarray:
    return np.asarray(steps, dtype=float)


# --- curves -------------------------------------------------------------------------------------


def run_curves(
    runs: Sequence[RunData],
    source: str,
    columns: Mapping[str, str],
    mappers: Mapping[str, object],
    max_points: int = CURVE_POINTS,
) -> pd.DataFrame:
    """Long frame (run, series, step, x, value): ``columns`` (column -> series name) of every run's
    ``source`` frame ("log" or "timeline"), each curve downsampled on its own rows with a value."""
    parts = []
    for run in runs:
        frame = getattr(run, source)
        if frame is None or not len(frame):
            continue
        curves = long_curves(frame, columns, max_points)  # (step, series, value), each curve downsampled
        if not len(curves):
            continue
        steps = curves["step"].to_numpy()
        parts.append(
            pd.DataFrame(
                {
                    "run": run.label,
                    "series": curves["series"].to_numpy(),
                    "step": steps.astype("int64"),
                    "x": mappers[run.label](steps),  # elementwise: identity or piecewise linear
                    "value": curves["value"].to_numpy(),
                }
            )
        )
    if not parts:
        return pd.DataFrame(
            {
                "run": pd.Series(dtype=str),
                "series": pd.Series(dtype=str),
                "step": pd.Series(dtype="int64"),
                "x": pd.Series(dtype=float),
                "value": pd.Series(dtype=float),
            }
        )
    return pd.concat(parts, ignore_index=True)


def boundary_marks(runs: Sequence[RunData], mappers: Mapping[str, object]) -> pd.DataFrame:
    """One row per phase end found (run, phase, step, x): the charts draw them as rules in the run's colour."""
    rows = []
    for run in runs:
        for attribute, name in PHASE_ENDS:
            end = getattr(run.phases, attribute, None)
            if end is None:
                continue
            x = float(mappers[run.label]([end])[0])
            rows.append({"run": run.label, "phase": f"{name} ends", "step": int(end), "x": x})
    return pd.DataFrame(rows, columns=["run", "phase", "step", "x"])


# --- the tables ---------------------------------------------------------------------------------


def first_step(log: pd.DataFrame | None, column: str, threshold: float) -> int | None:
    """The first logged step where ``column`` >= ``threshold`` (None: never, or no log)."""
    if log is None or column not in log or not len(log):
        return None
    ordered = log.sort_values("step")
    hits = ordered["step"][ordered[column] >= threshold]
    return int(hits.iloc[0]) if len(hits) else None


def key_text(counts: Mapping[int, int] | None) -> str:
    """'1 (96), 8 (144), 21 (138)': each key frequency with its clustered neurons."""
    if counts is None:
        return "n/a"
    return ", ".join(f"{k} ({n})" for k, n in sorted(counts.items())) or "none"


MILESTONE_COLUMNS = {
    "memorised": f"memorised at (train ≥ {THRESHOLD:.0%})",
    "grokked": f"grokked at (test ≥ {THRESHOLD:.0%})",
    "full": f"test ≥ {FULL_ACCURACY:.1%} at",
    "memorisation": "memorisation ends",
    "circuit formation": "circuit formation ends",
    "cleanup": "cleanup ends",
    "final_test_accuracy": "final test accuracy",
    "final_test_loss": "final test loss",
    "key": "key frequencies (neurons), last checkpoint",
    "last": "last checkpoint",
}


def milestones(run: RunData) -> dict:
    """One run's row of the milestone table (keys of ``MILESTONE_COLUMNS``; None where not reached)."""
    log = run.log if run.log is not None and len(run.log) else run.timeline
    last = log.sort_values("step").iloc[-1] if log is not None and len(log) else None
    row = {
        "run": run.label,
        "memorised": first_step(log, "train_accuracy", THRESHOLD),
        "grokked": first_step(log, "test_accuracy", THRESHOLD),
        "full": first_step(log, "test_accuracy", FULL_ACCURACY),
    }
    for attribute, name in PHASE_ENDS:
        end = getattr(run.phases, attribute, None)
        row[name] = None if end is None else int(end)
    row["final_test_accuracy"] = None if last is None else float(last.get("test_accuracy", np.nan))
    row["final_test_loss"] = None if last is None else float(last.get("test_loss", np.nan))
    row["key"] = key_text(run.key_counts)
    row["last"] = run.last_step
    return row


def milestone_table(runs: Sequence[RunData]) -> pd.DataFrame:
    """Runs as rows, milestones as columns (nullable integer steps: blank where never reached)."""
    frame = pd.DataFrame([milestones(run) for run in runs], columns=["run", *MILESTONE_COLUMNS])
    steps = ["memorised", "grokked", "full", "memorisation", "circuit formation", "cleanup", "last"]
    frame[steps] = frame[steps].astype("Int64")
    frame[["final_test_accuracy", "final_test_loss"]] = frame[["final_test_accuracy", "final_test_loss"]].astype(float)
    return frame.rename(columns=MILESTONE_COLUMNS)


def _step_text(value) -> str:
    return "" if pd.isna(value) else f"{int(value):,}"


def milestone_display(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`milestone_table` turned for reading: one row per milestone, one column per run, as text
    (steps '8,560', blank where not reached; accuracy '100.0%'; loss '1.7e-07')."""
    accuracy, loss = MILESTONE_COLUMNS["final_test_accuracy"], MILESTONE_COLUMNS["final_test_loss"]
    rows = []
    for column in table.columns[1:]:
        if column == accuracy:
            shown = ["" if pd.isna(v) else f"{v:.1%}" for v in table[column]]
        elif column == loss:
            shown = ["" if pd.isna(v) else f"{v:.2g}" for v in table[column]]
        elif column == MILESTONE_COLUMNS["key"]:
            shown = list(table[column])
        else:
            shown = [_step_text(v) for v in table[column]]
        rows.append({"milestone": column, **dict(zip(table["run"], shown))})
    return pd.DataFrame(rows, columns=["milestone", *table["run"]])


def speedups(table: pd.DataFrame, column: str = MILESTONE_COLUMNS["full"]) -> list[str]:
    """Sentences comparing each run's ``column`` step with the first run's ('8.3x fewer steps')."""
    if len(table) < 2:
        return []
    base_label, base = table["run"].iloc[0], table[column].iloc[0]
    if pd.isna(base) or base <= 0:
        return []
    out = []
    for label, step in zip(table["run"].iloc[1:], table[column].iloc[1:]):
        if pd.isna(step):
            out.append(f"{label} never reached it (so far).")
        elif step <= 0:
            continue
        else:
            ratio = float(base) / float(step)
            how = f"{ratio:.2g}× fewer steps" if ratio >= 1 else f"{1 / ratio:.2g}× more steps"
            out.append(f"{label}: step {int(step):,} against {int(base):,} for {base_label}, {how}.")
    return out


def _flat(config: Mapping, prefix: str = "") -> dict[str, object]:
    """Nested settings (a filter's own fields) become ``outer.inner`` rows."""
    out = {}
    for name, value in config.items():
        if isinstance(value, Mapping):
            out.update(_flat(value, f"{prefix}{name}."))
        else:
            out[f"{prefix}{name}"] = value
    return out


def _shown(value) -> str:
    return "default" if value is None else str(value)


def config_differences(configs: Mapping[str, Mapping]) -> pd.DataFrame:
    """The config fields in which the runs differ: one row per field, one column per run.

    A field that one run's config lacks (written before the field existed) shows as 'n/a'.
    """
    flat = {label: _flat(config) for label, config in configs.items()}
    fields: list[str] = list(dict.fromkeys(name for config in flat.values() for name in config))
    rows = []
    for name in fields:
        shown = [_shown(config[name]) if name in config else "n/a" for config in flat.values()]
        if len(set(shown)) > 1:
            rows.append({"setting": name, **dict(zip(flat, shown))})
    return pd.DataFrame(rows, columns=["setting", *flat])


def run_order(runs: Iterable[RunData]) -> list[str]:
    return [run.label for run in runs]
