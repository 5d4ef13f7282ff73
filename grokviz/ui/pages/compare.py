"""The Compare page: 2-6 runs (sweep members included) on one set of axes per measure, aligned by
step or by their phase boundaries, with a milestone table and the config fields in which they differ.

Everything that makes the view is bound to the URL (``?compare=a&compare=b&align=...``), so a link
reopens it. Shaping lives in ``grokviz.ui.views.compare``, the charts in ``grokviz.ui.charts.compare``.
"""

from __future__ import annotations

import streamlit as st

from grokviz.core.config import check_analysable
from grokviz.errors import GrokvizError
from grokviz.storage.runs import Run
from grokviz.storage.timeline import timeline
from grokviz.ui import catalog, loaders
from grokviz.ui.charts import compare as compare_charts
from grokviz.ui.views import compare as cv
from grokviz.ui.views.phases import phase_table

OLDER_TIMELINES = 4  # timelines kept for runs not compared now (the explorer keeps as many)

# Charts of the progress measures: title -> (timeline column -> series, log y, y title).
PROGRESS_CHARTS = {
    "Restricted loss": ({"restricted_loss": "restricted (all pairs)"}, True, "loss (log scale)"),
    "Excluded loss": ({"excluded_loss": "excluded (train pairs)"}, True, "loss (log scale)"),
    "Gini of the Fourier spectra": (
        {"gini_embed": "W_E", "gini_unembed": "W_L"},
        False,
        "Gini coefficient",
    ),
    "Sum of squared weights": ({"sum_sq_weights": "all parameters"}, False, "sum of squared weights"),
}


def run_timeline(run: Run, signature: tuple, label: str, compared: set[tuple]):
    """The run's progress measures, shared with the explorer (same memo key), with a progress bar
    while computed. Kept for every compared run: the explorer's policy (the latest few) would make
    six runs evict each other on every rerun."""
    store = loaders.memo_store()
    key = ("timeline", (str(run.path), signature))
    if key not in store:
        text = f"Computing progress measures of {label} (cached beside the run afterwards)"
        bar = st.progress(0.0, text=text)

        def report(done: int, total: int) -> None:
            bar.progress(done / total if total else 1.0, text=f"{text}: {done}/{total} checkpoints")

        value = timeline(run, progress=report)
        bar.empty()
        others = [k for k in store if k[0] == "timeline" and k[1] not in compared]
        for stale in others[:-OLDER_TIMELINES]:
            store.pop(stale, None)
        store[key] = value
    return store[key]


def load_run(run: Run, label: str, compared: set[tuple], notes: list[str]) -> cv.RunData:
    """Log, progress measures, phases and key frequencies of one run; what cannot be read becomes a note."""
    run_path = str(run.path)
    steps = run.steps()
    signature = catalog.live_signature(run, steps)
    log_key = catalog.log_signature(run)
    try:
        log, problems = loaders.load_log(run_path, *log_key)
        notes.extend(problems)
    except GrokvizError as exc:
        notes.append(str(exc))
        log = None
    progress, key_counts = None, None
    try:
        check_analysable(run.config, run_path)
        if steps:
            progress = run_timeline(run, signature, label, compared)
            key_counts = loaders.key_frequency_counts(run_path, steps[-1], catalog.checkpoint_mtime(run, steps[-1]))
    except GrokvizError as exc:
        notes.append(f"{label}: no progress measures. {exc}")
    phases = loaders.load_phases(run_path, *log_key, progress, progress is not None)
    return cv.RunData(
        label=label,
        config=run.config.to_dict(),
        log=log,
        timeline=progress,
        phases=phases,
        key_counts=key_counts,
        last_step=steps[-1] if steps else None,
        source=(run_path, signature),
    )


def render() -> None:
    root = catalog.runs_root()
    st.header("Compare runs")
    choices = catalog.discover_runs(root, st.session_state.get("folder"), catalog.base_dir())
    keys = list(choices.runs)
    if len(keys) < cv.MIN_RUNS:
        st.info(f"Comparing needs at least {cv.MIN_RUNS} runs; {root} has {len(keys)}.")
        return
    chosen = st.multiselect(
        f"Runs ({cv.MIN_RUNS} to {cv.MAX_RUNS})",
        keys,
        default=cv.default_selection(choices.labels),
        format_func=choices.labels.get,
        max_selections=cv.MAX_RUNS,
        key="compare",
        bind="query-params",
        help="Sweep members are listed as sweep/member. Speed-ups in the table are against the first run.",
        placeholder="Choose runs to compare",
    )
    controls = st.columns([2, 2, 1])
    align = controls[0].radio(
        "Align by",
        [cv.ALIGN_STEP, cv.ALIGN_PHASES],
        horizontal=True,
        key="align",
        bind="query-params",
        help="By phase boundaries: each run's phase ends are moved onto the reference run's, stretching "
        "linearly in between; after its last phase end a run keeps its own step count.",
    )
    log_x = controls[2].toggle("Log step axis", key="log_x", bind="query-params", help="Shows memorisation, early on.")
    if len(chosen) < cv.MIN_RUNS:
        st.info(
            f"Choose {cv.MIN_RUNS} to {cv.MAX_RUNS} runs above. For example a run and its Grokfast twin, "
            "or members of a sweep that differ in weight decay."
        )
        return
    compared = {(str(choices.runs[k].path), catalog.live_signature(choices.runs[k])) for k in chosen}
    notes: list[str] = []
    runs = [load_run(choices.runs[k], choices.labels[k], compared, notes) for k in chosen]
    labels = cv.run_order(runs)
    reference = None
    if align == cv.ALIGN_PHASES:
        best = cv.reference_run(runs)
        ref_label = controls[1].selectbox(
            "Onto the phases of", labels, index=best, key="align_ref", bind="query-params"
        )
        reference = labels.index(ref_label)
    for note in notes:
        st.warning(note, icon=":material/warning:")
    draw(runs, align, reference, log_x)


def draw(runs: list[cv.RunData], align: str, reference: int | None, log_x: bool) -> None:
    labels = cv.run_order(runs)
    mappers = cv.x_mapper(runs, align, reference)
    aligned = reference is not None
    marks = cv.boundary_marks(runs, mappers)
    if aligned:
        ref = runs[reference]
        last = max(int(m([r.last_step or 0])[0]) for r, m in zip(runs, mappers.values()))
        bands = phase_table(ref.phases, last)
        x_title = f"aligned step (steps of {ref.label})"
        missing = [r.label for r in runs if len(cv.phase_anchors(r.phases)) < len(cv.phase_anchors(ref.phases))]
        if len(cv.phase_anchors(ref.phases)) < 2:
            st.info(f"{ref.label} has no phase boundary to align onto: the curves are drawn by step.")
        elif missing:
            st.caption(
                f"{', '.join(missing)}: fewer phase ends than {ref.label}; aligned on those found, "
                "then by their own steps."
            )
    else:
        bands, x_title = None, "training step"
    common = dict(runs=labels, x_title=x_title, log_x=log_x, boundaries=marks, bands=bands, aligned=aligned)
    # Building and validating six Altair charts costs ~0.15 s each: a view seen before is drawn from its spec.
    view_key = (tuple((run.label, run.source) for run in runs), align, reference, log_x)

    def chart(where, title: str, build) -> None:
        where.vega_lite_chart(loaders.static_chart(("compare", title, *view_key), build), width="stretch")

    st.caption("Dotted rules: each run's phase ends, in its colour (hover for the step).")

    left, right = st.columns(2)
    chart(
        left,
        "Loss",
        lambda: compare_charts.compare_curves(
            cv.run_curves(runs, "log", {"test_loss": "test", "train_loss": "train"}, mappers),
            title="Loss",
            subtitle="from each training log; solid: test, dashed: train",
            y_title="loss (log scale)",
            log_y=True,
            **common,
        ),
    )
    chart(
        right,
        "Accuracy",
        lambda: compare_charts.compare_curves(
            cv.run_curves(runs, "log", {"test_accuracy": "test", "train_accuracy": "train"}, mappers),
            title="Accuracy",
            subtitle="from each training log; solid: test, dashed: train",
            y_title="accuracy",
            y_format=".0%",
            **common,
        ),
    )

    st.subheader("Progress measures")
    st.caption(
        "Per saved checkpoint, each run with its own key frequencies (those of its last checkpoint, "
        "in the table below). Definitions: the explorer's Training tab."
    )
    panels = list(PROGRESS_CHARTS.items())
    if not any(run.timeline is not None and len(run.timeline) for run in runs):
        st.info("No progress measures for these runs (the notes above say why).")
        panels = []
    for row in (panels[:2], panels[2:]):
        for column, (title, (series, log_y, y_title)) in zip(st.columns(2), row):
            names = list(series.values())
            dashes = ", ".join(f"{how}: {name}" for how, name in zip(("solid", "dashed"), names))
            chart(
                column,
                title,
                lambda: compare_charts.compare_curves(
                    cv.run_curves(runs, "timeline", series, mappers),
                    title=title,
                    subtitle=dashes if len(names) > 1 else None,
                    y_title=y_title,
                    log_y=log_y,
                    points=True,
                    series=names,
                    **common,
                ),
            )

    st.subheader("Milestones")
    table = cv.milestone_table(runs)
    st.dataframe(cv.milestone_display(table), hide_index=True, width="stretch")
    for sentence in cv.speedups(table):
        st.caption(f"Steps to test accuracy ≥ {cv.FULL_ACCURACY:.1%}: {sentence}")
    st.caption("Phase ends by the explorer's rule (Training tab, 'How the phases are found'); blank: not reached.")

    st.subheader("Where the configs differ")
    differences = cv.config_differences({run.label: run.config for run in runs})
    if len(differences):
        st.dataframe(differences, hide_index=True, width="stretch")
    else:
        st.caption("The runs have the same config.")


if __name__ == "__main__":  # run by st.navigation as the Compare page (grokviz.ui.navigation)
    render()
