"""The run explorer (the app's default page): the sidebar's choice becomes a :class:`View`, the headline shows where the run
stands at the chosen step, and one tab of ``grokviz.ui.tabs`` draws the rest.

The tab lives in the URL (``?tab=Fourier``) like the run, step and (a, b), so a link reopens the view.

Fast start: in a fresh app process, before this script imports torch (about 2.5 s of a 2-core CPU),
it draws the Training tab's loss and accuracy charts of the run the URL names from its log alone
(:func:`first_charts`); the full page replaces them when it is drawn.
"""

# The imports below the first charts come after them on purpose (they import torch).
# ruff: noqa: E402

from __future__ import annotations

import sys

import streamlit as st

from grokviz.ui import catalog
from grokviz.ui.main import configure_torch

# An empty chart one pixel high, drawn where each first chart goes before pandas and altair are
# imported: the browser then loads its chart renderer (a script of 0.8 MB it fetches for the first
# chart of a page) while this process imports them, and the real chart appears about 0.4 s sooner.
EMPTY_CHART = {"mark": "line", "height": 1, "data": {"values": []}}


def first_charts():
    """In a process that has not imported torch yet: the log's charts of the run the URL names (the
    Training tab's, without phases or a step rule), in a placeholder the full page empties. None
    (nothing drawn) once torch is imported, on another tab, or for a run that has no readable log."""
    if "torch" in sys.modules or st.query_params.get("tab", "Training") != "Training":
        return None
    log_file = catalog.log_preview(st.query_params.get("run"))
    if log_file is None:
        return None
    placeholder = st.empty()
    with placeholder.container():
        st.header(log_file.parent.name)
        st.caption("Loading the run (the first start of the app imports PyTorch) ...")
        slots = [column.empty() for column in st.columns(2)]
        for slot in slots:
            slot.vega_lite_chart(EMPTY_CHART)
    import pandas as pd

    from grokviz.ui.tabs import training

    try:
        log = pd.read_csv(log_file)
    except (OSError, ValueError):  # pandas' parser errors are ValueErrors; the full page says what is wrong
        log = None
    wanted = {"step", *training.LOG_CHARTS["Loss"][0], *training.LOG_CHARTS["Accuracy"][0]}
    if log is None or not wanted <= set(log.columns):
        placeholder.empty()
        return None
    for slot, title in zip(slots, training.LOG_CHARTS):
        slot.vega_lite_chart(training.log_chart(log, title, None).to_dict(), width="stretch")
    return placeholder


if __name__ == "__main__":
    _first = first_charts()
    configure_torch()

from grokviz.analysis.progress import phase_boundaries
from grokviz.core.config import check_analysable
from grokviz.core.tasks import TASKS
from grokviz.errors import GrokvizError
from grokviz.ui import loaders, sidebar
from grokviz.ui.state import View
from grokviz.ui.tabs import ablation, circles, fourier, neurons, prediction, training
from grokviz.ui.views.config import fourier_note
from grokviz.ui.views.grids import correct_answer, pair_split
from grokviz.ui.views.headline import headline_row, log_row_at, metrics_row
from grokviz.ui.views.phases import phase_at, phase_table, phases_found
from grokviz.ui.views.stepping import previous_step
from grokviz.ui.widgets import show_error

# Tab label -> the tab module that draws it (each has ``render(view)``).
TABS = {
    "Training": training,
    "Fourier": fourier,
    "Ablation": ablation,
    "Neurons": neurons,
    "Prediction & attention": prediction,
    "Circles": circles,
}


def render(first=None) -> None:
    """The page; ``first``: the placeholder of :func:`first_charts`, emptied once the page is drawn."""
    try:
        draw()
    finally:
        if first is not None:
            first.empty()


def draw() -> None:
    choice = sidebar.render()
    if choice is None:
        return
    view = build_view(choice)
    if view is None:
        return
    with st.sidebar:
        split = pair_split(view.dataset, view.a, view.b)
        answer = "." if view.correct_c is None else f"; the correct answer is c = {view.correct_c}."
        st.caption(f"({view.a}, {view.b}) is a {split}" + answer)
    headline(view)
    tabs = st.tabs(list(TABS), key="tab", bind="query-params")
    for tab, page in zip(tabs, TABS.values()):
        with tab:
            if tab.open:  # tabs are lazy: only the one shown is computed
                page.render(view)


def build_view(choice: sidebar.Choice) -> View | None:
    """Load what the pages share for the chosen run and step; None (after an error box) if the
    checkpoint cannot be read."""
    run, steps, step = choice.run, choice.steps, choice.step
    cfg, run_path = run.config, str(run.path)
    layers = f", {cfg.n_layers} layers" if cfg.n_layers > 1 else ""
    st.header(f"{run.name}: {TASKS[cfg.task].formula} with p = {cfg.p}{layers}")
    try:  # live analysis holds p^2 x d_mlp activations: refuse, in words, where they cannot fit
        check_analysable(cfg, run_path)
        too_big = None
    except GrokvizError as exc:
        too_big = str(exc)
        st.warning(too_big, icon=":material/memory:")
    log_key = catalog.log_signature(run)
    try:
        log, log_problems = loaders.load_log(run_path, *log_key)
        for problem in log_problems:
            st.warning(problem, icon=":material/warning:")
    except GrokvizError as exc:
        show_error(exc)
        log = None
    # The progress measures, if this session has computed them (the Training tab does, then reruns).
    known_timeline = loaders.memo_store().get(("timeline", catalog.progress_key(run_path, choice.signature)))
    if log is not None:
        phases = loaders.load_phases(run_path, *log_key, known_timeline, known_timeline is not None)
    else:
        phases = phase_boundaries(None, known_timeline)
    mtimes = {s: catalog.checkpoint_mtime(run, s) for s in {step, steps[-1]}}
    try:
        params = loaders.load_params(run_path, step, mtimes[step])
    except GrokvizError as exc:
        show_error(exc)
        return None
    try:
        key_counts = {} if too_big else loaders.key_frequency_counts(run_path, steps[-1], mtimes[steps[-1]])
    except GrokvizError as exc:
        st.warning(f"No key frequencies: the last checkpoint cannot be read. {exc}", icon=":material/warning:")
        key_counts = {}
    last_logged = int(log["step"].max()) if log is not None and len(log) else 0
    return View(
        run=run,
        steps=steps,
        step=step,
        a=choice.a,
        b=choice.b,
        dataset=loaders.load_dataset(cfg.to_json()),
        params=params,
        log=log,
        phases=phases,
        phase_bands=phase_table(phases, max(steps[-1], last_logged)),
        key_counts=key_counts,
        signature=choice.signature,
        correct_c=correct_answer(cfg, choice.a, choice.b),
        too_big=too_big,
        note=fourier_note(cfg),
        mtimes=mtimes,
    )


def headline(view: View) -> None:
    """Step and phase, then train/test accuracy and loss, each with its change since the previous saved step."""
    steps, step = view.steps, view.step
    now = headline_numbers(view, step)
    before = previous_step(steps, step)
    then = headline_numbers(view, before) if before is not None else None
    columns = st.columns(5)
    since = f"Change since the previous saved step ({before:,})." if before is not None else "The first saved step."
    phases = view.phases
    phase_help = phases.rule if phases_found(phases) else "No phase boundary could be read from this run's curves."
    columns[0].metric(
        "Step",
        f"{step:,}",
        phase_at(phases, step),
        delta_color="off",
        delta_arrow="off",
        help=f"Saved checkpoint {steps.index(step) + 1} of {len(steps)}, and its training phase. {phase_help}",
    )
    for column, name, label, fmt in (
        (columns[1], "train_accuracy", "Train accuracy", "{:.1%}"),
        (columns[2], "test_accuracy", "Test accuracy", "{:.1%}"),
        (columns[3], "train_loss", "Train loss", "{:.2g}"),
        (columns[4], "test_loss", "Test loss", "{:.2g}"),
    ):
        if now is None:
            column.metric(label, "n/a")
            continue
        delta = None
        if then is not None:
            change = now[name] - then[name]
            delta = f"{change:+.1%}" if "accuracy" in name else f"{change:+.2g}"
        column.metric(
            label, fmt.format(now[name]), delta, delta_color="normal" if "accuracy" in name else "inverse", help=since
        )
    if view.note:
        st.info(view.note, icon=":material/info:")


def headline_numbers(view: View, at_step: int) -> dict | None:
    """Train/test loss and accuracy at a saved step (the log's row; the checkpoint where it lacks them)."""

    def evaluated() -> dict:
        base = loaders.logits_base(view.run_path, at_step, view.mtime(at_step))
        return metrics_row(base.evaluate(view.dataset)[0])

    if view.too_big:
        return log_row_at(view.log, at_step)
    try:
        return headline_row(log_row_at(view.log, at_step), evaluated)
    except GrokvizError:
        return log_row_at(view.log, at_step)


if __name__ == "__main__":  # run by st.navigation as the default page (grokviz.ui.navigation)
    render(_first)
