"""grokviz explorer: `streamlit run app.py`.

UI only: layout, widgets, caching and messages. Analysis lives in grokviz.fourier / neurons /
ablation / progress / timeline, data shaping in grokviz.views, charts in grokviz.charts.

State that makes a view (run, step, (a, b), frequencies, mode, site, neuron, tab) is bound to
the URL's query parameters, so a copied link reopens the same view. Runs are read from
checkpoints/ beside this file (or the folder in $GROKVIZ_RUNS) and from one more folder given
in the sidebar.
"""

from __future__ import annotations

import os
from pathlib import Path

import streamlit as st

st.set_page_config(page_title="grokviz", page_icon=":material/ssid_chart:", layout="wide")

import torch  # noqa: E402

from grokviz import ablation, charts, fourier, neurons, sweeps, views  # noqa: E402
from grokviz.errors import GrokvizError  # noqa: E402
from grokviz.analysis.progress import phase_boundaries  # noqa: E402
from grokviz.storage.runs import open_run  # noqa: E402
from grokviz.core.config import Config, check_analysable  # noqa: E402
from grokviz.core.tasks import TASKS, dataset_for  # noqa: E402
from grokviz.storage.timeline import timeline  # noqa: E402

# One intra-op thread: on the 2-core machines this targets, a second thread costs more in
# wake-ups than it saves on these small ops, and several sessions share the cores anyway.
torch.set_num_threads(1)
# Trained weights reach denormal floats; flushing them keeps CPU arithmetic at full speed.
torch.set_flush_denormal(True)

APP_DIR = Path(__file__).resolve().parent
RUNS_DIR = Path(os.environ.get("GROKVIZ_RUNS") or APP_DIR / "checkpoints")
DEFAULT_RUN = "add-p113"
TABS = ["Training", "Fourier", "Ablation", "Neurons", "Prediction & attention", "Sweep"]
PLAY_SECONDS = 1.0  # one saved step per second while playing
LIVE_SECONDS = 4.0  # how often a run that is still training is checked for new checkpoints
SITE_HELP = {
    "logits": "project the all-pairs logits off / onto cos(w(a+b)) and sin(w(a+b))",
    "embedding": "project W_E's token rows off / onto the frequencies' cos and sin, then run the model",
    "neurons": "project each neuron's activations over (a, b) off / onto the frequencies' 3x3 blocks",
}
MODE_LABELS = {"remove": "remove", "keep": "keep only"}  # also the URL's values


# --- cached loaders (keys: run path + step + file mtime, so a rewritten file reloads) ----------


@st.cache_resource(max_entries=64, show_spinner=False)
def load_params(run_path: str, step: int, mtime: float):
    return open_run(run_path).load(step)


@st.cache_resource(max_entries=8, show_spinner=False)
def load_dataset(config_json: str):
    """The run's own train/test split (an imported reference run keeps the reference split)."""
    return dataset_for(Config.from_json(config_json))


def log_key_of(run) -> tuple[int, float]:
    """(size, mtime) of the run's log: part of cache keys, as the log grows while a run trains."""
    log_file = run.path / "log.csv"
    return (log_file.stat().st_size if log_file.is_file() else 0, views.file_mtime(log_file))


@st.cache_data(max_entries=8, show_spinner=False)
def load_log(run_path: str, size: int, mtime: float):
    """The training log and the problems met reading it (rows skipped, with their line numbers)."""
    run = open_run(run_path)
    frame = run.log()
    return frame, list(run.problems)


@st.cache_data(max_entries=8, show_spinner=False)
def load_phases(run_path: str, size: int, mtime: float, _timeline, has_timeline: bool):
    """Phase boundaries from the log, and from the progress measures once they are computed
    (the end of cleanup also waits for the weight norm to settle)."""
    return phase_boundaries(load_log(run_path, size, mtime)[0], _timeline)


# Tensors are cached as resources (shared, never copied): they are read-only here, and copying
# a [p^2, p] or [p, p, d_mlp] tensor on every rerun would cost more than computing a chart.
@st.cache_resource(max_entries=64, show_spinner=False)  # 5.8 MB each at p = 113
def logits_base(run_path: str, step: int, mtime: float):
    """The all-pairs logits of a checkpoint, with their metrics memoised (no activations kept)."""
    return views.logits_baseline(ablation.all_pairs_logits(load_params(run_path, step, mtime)))


@st.cache_resource(max_entries=6, show_spinner=False)
def activations(run_path: str, step: int, mtime: float):
    return neurons.neuron_activations(load_params(run_path, step, mtime))


@st.cache_resource(max_entries=3, show_spinner=False)
def ablation_baseline(run_path: str, step: int, mtime: float):
    return ablation.baseline(load_params(run_path, step, mtime))


@st.cache_data(max_entries=8, show_spinner=False)
def key_frequency_counts(run_path: str, step: int, mtime: float) -> dict[int, int]:
    """Frequency -> number of clustered neurons at one checkpoint (the app uses the last one)."""
    return neurons.key_frequencies(neurons.neuron_stats(activations(run_path, step, mtime)))


@st.cache_data(max_entries=16, show_spinner=False)
def neuron_table(run_path: str, step: int, mtime: float):
    """Per-neuron frequency table of one checkpoint (neuron, frequency, best_fve, clustered, dead)."""
    return neurons.neuron_stats(activations(run_path, step, mtime)).table()


@st.cache_data(max_entries=16, show_spinner=False)
def spectra_over_run(run_path: str, steps: tuple[int, ...], mtimes: tuple[float, ...]):
    """step -> (W_E spectrum, W_L spectrum) for every saved step, as numpy arrays."""
    embed, unembed = {}, {}
    for step, mtime in zip(steps, mtimes):
        params = load_params(run_path, step, mtime)
        embed[step] = fourier.embed_spectrum(params).numpy()
        unembed[step] = fourier.unembed_spectrum(params).numpy()
    return views.spectrum_history(embed), views.spectrum_history(unembed)


@st.cache_data(max_entries=8, show_spinner=False)
def sweep_outcomes(sweep_path: str, signature: tuple):
    """A sweep's outcome table (reads every member's log); ``signature`` changes as logs grow."""
    return sweeps.outcome_table(sweeps.open_sweep(sweep_path))


@st.cache_data(max_entries=64, show_spinner=False)
def static_chart(key: tuple, _build) -> dict:
    """A chart over the whole run, as a spec: built once per ``key``; the app adds the step rule."""
    return charts.static_spec(_build())


@st.cache_resource(show_spinner=False)
def memo_store() -> dict:
    """Results that are computed with a progress bar (which a cached function cannot draw)."""
    return {}


def remembered(kind: str, key: tuple, compute, label: str):
    """Look up ``(kind, key)`` in the memo store, else compute it with a progress bar and keep it.

    Only the latest few entries per kind are kept (a run still training changes its key often).
    """
    store = memo_store()
    full_key = (kind, key)
    if full_key not in store:
        bar = st.progress(0.0, text=label)

        def report(done: int, total: int) -> None:
            bar.progress(done / total if total else 1.0, text=f"{label} ({done}/{total})")

        value = compute(report)
        bar.empty()
        older = [k for k in store if k[0] == kind]
        for stale in older[:-4]:
            store.pop(stale, None)
        store[full_key] = value
    return store[full_key]


def show_error(exc: Exception) -> None:
    st.error(str(exc), icon=":material/error:")


def clamp_state(key: str, low: int, high: int) -> None:
    """Keep a bound number input's stored value in range when the run (and so p or d_mlp) changes."""
    value = st.session_state.get(key)
    if value is not None and not low <= int(value) <= high:
        st.session_state[key] = min(max(int(value), low), high)


# --- sidebar: run, step, input -----------------------------------------------------------------

with st.sidebar:
    st.title("grokviz")
    st.caption("Grokking in a 1-layer transformer on modular arithmetic (Nanda et al. 2023).")
    # Deliberately not in the URL: a link must not point the server at folders outside its runs root.
    folder = st.text_input(
        "Another folder of runs", key="folder", placeholder="path/to/runs or path/to/run",
        help=f"Runs are read from {RUNS_DIR} and from this folder (a folder of run folders, or one run folder).",
    )
    choices = views.discover_runs(RUNS_DIR, folder, APP_DIR)
    for problem in choices.problems:
        st.warning(problem, icon=":material/warning:")
    if not choices.runs:
        st.info(f"No runs found in {RUNS_DIR}. Train one with `python -m grokviz.train --out checkpoints/NAME`.")
        st.stop()
    keys = list(choices.runs)
    bundled = [k for k in keys if choices.runs[k].name == DEFAULT_RUN and choices.runs[k].path.parent.resolve() == RUNS_DIR.resolve()]
    default_key = (bundled or keys)[0]
    run_key = st.selectbox("Run", keys, index=keys.index(default_key), format_func=choices.labels.get,
                           key="run", bind="query-params")
    run = choices.runs[run_key]
    cfg = run.config
    run_path = str(run.path)
    with st.expander("Config", icon=":material/settings:"):
        st.dataframe(views.config_table(cfg), hide_index=True, width="stretch")
        st.caption(f"Folder: `{run.path}`  \nWritten by: {run.source}")

    steps = run.steps()  # only checkpoints that load; the others are in run.problems
    skipped = list(run.problems)
    if skipped:
        with st.expander(f"{len(skipped)} file(s) of this run skipped", icon=":material/warning:", expanded=len(skipped) <= 3):
            for problem in skipped:
                st.warning(problem)
    signature = views.live_signature(run, steps)
    training = not steps or steps[-1] < cfg.steps

    if training:
        # A run still being trained: check for new checkpoints and rerun when they land.
        @st.fragment(run_every=LIVE_SECONDS)
        def watch_run(seen=signature) -> None:
            now = views.live_signature(run)
            if now != seen:
                old_steps, new_steps = seen[0], now[0]
                if new_steps and (not old_steps or st.session_state.get("step") in (None, old_steps[-1])):
                    st.session_state["step"] = new_steps[-1]  # follow the newest checkpoint
                st.rerun()
            last = f"step {now[0][-1]:,}" if now[0] else "none yet"
            st.caption(f":green[●] training: {len(now[0])} checkpoints, last {last} of {cfg.steps:,}")

        watch_run()

    if not steps:
        st.info(f"{run.path} has no checkpoints yet; this page updates when the first one lands.")
        st.stop()

    def toggle_play() -> None:
        playing = not st.session_state.get("playing", False)
        st.session_state["playing"] = playing
        if playing and st.session_state.get("step") == steps[-1]:
            st.session_state["step"] = steps[0]  # play from the start

    step = st.select_slider(
        "Step", options=steps, value=steps[-1], key="step", bind="query-params",
        help="The saved checkpoints of this run (dense where things happen).",
    )
    playing = st.session_state.get("playing", False)
    st.button("Pause" if playing else "Play", icon=":material/pause:" if playing else ":material/play_arrow:",
              on_click=toggle_play, help=f"Step through the saved checkpoints, one every {PLAY_SECONDS:g} s.")
    if playing:
        @st.fragment(run_every=PLAY_SECONDS)
        def advance() -> None:
            # The first call is the one inside the full run: arm the timer. Each timed call moves on.
            if not st.session_state.get("_play_armed"):
                st.session_state["_play_armed"] = True
                return
            st.session_state["_play_armed"] = False
            following = views.next_step(steps, st.session_state.get("step", steps[-1]))
            if following is None:
                st.session_state["playing"] = False
            else:
                st.session_state["step"] = following
            st.rerun()

        st.session_state["_play_armed"] = False
        advance()

    st.subheader("Input (a, b)")
    p = cfg.p
    clamp_state("a", 0, p - 1)
    clamp_state("b", 0, p - 1)
    col_a, col_b = st.columns(2)
    a = int(col_a.number_input("a", 0, p - 1, 5, key="a", bind="query-params"))
    b = int(col_b.number_input("b", 0, p - 1, 17, key="b", bind="query-params"))

dataset = load_dataset(cfg.to_json())
task = TASKS[cfg.task]
note = views.fourier_note(cfg)
mtime = views.checkpoint_mtime(run, step)
in_task = views.pair_split(dataset, a, b)
correct_c = views.correct_answer(cfg, a, b)
with st.sidebar:
    st.caption(f"({a}, {b}) is a {in_task}" + ("." if correct_c is None else f"; the correct answer is c = {correct_c}."))

# --- headline ---------------------------------------------------------------------------------

st.header(f"{run.name}: {task.formula} with p = {p}")
try:  # live analysis holds p^2 x d_mlp activations: refuse, in words, where they cannot fit
    check_analysable(cfg, str(run.path))
    too_big = None
except GrokvizError as exc:
    too_big = str(exc)
    st.warning(too_big, icon=":material/memory:")
try:
    log, log_problems = load_log(run_path, *log_key_of(run))
    for problem in log_problems:
        st.warning(problem, icon=":material/warning:")
except GrokvizError as exc:
    show_error(exc)
    log = None
# The progress measures, if this session has computed them (the Training tab does, then reruns).
known_timeline = memo_store().get(("timeline", (run_path, signature)))
if log is not None:
    phases = load_phases(run_path, *log_key_of(run), known_timeline, known_timeline is not None)
else:
    phases = phase_boundaries(None, known_timeline)
try:
    params = load_params(run_path, step, mtime)
except GrokvizError as exc:
    show_error(exc)
    st.stop()


def headline_numbers(at_step: int) -> dict | None:
    """Train/test loss and accuracy at a saved step (the log's row; the checkpoint where it lacks them)."""
    def evaluated() -> dict:
        at_mtime = views.checkpoint_mtime(run, at_step)
        return views.metrics_row(logits_base(run_path, at_step, at_mtime).evaluate(dataset)[0])

    if too_big:
        return views.log_row_at(log, at_step)
    try:
        return views.headline_row(views.log_row_at(log, at_step), evaluated)
    except GrokvizError:
        return views.log_row_at(log, at_step)


now = headline_numbers(step)
before = views.previous_step(steps, step)
then = headline_numbers(before) if before is not None else None
columns = st.columns(5)
since = f"Change since the previous saved step ({before:,})." if before is not None else "The first saved step."
phase_help = phases.rule if views.phases_found(phases) else "No phase boundary could be read from this run's curves."
columns[0].metric("Step", f"{step:,}", views.phase_at(phases, step), delta_color="off", delta_arrow="off",
                  help=f"Saved checkpoint {steps.index(step) + 1} of {len(steps)}, and its training phase. {phase_help}")
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
    column.metric(label, fmt.format(now[name]), delta, delta_color="normal" if "accuracy" in name else "inverse", help=since)
if note:
    st.info(note, icon=":material/info:")

tabs = st.tabs(TABS, key="tab", bind="query-params")
last_logged = int(log["step"].max()) if log is not None and len(log) else 0
phase_bands = views.phase_table(phases, max(steps[-1], last_logged))
phase_key = tuple(map(tuple, phase_bands.itertuples(index=False)))


last_mtime = views.checkpoint_mtime(run, steps[-1])
try:
    key_counts = {} if too_big else key_frequency_counts(run_path, steps[-1], last_mtime)
except GrokvizError as exc:
    st.warning(f"No key frequencies: the last checkpoint cannot be read. {exc}", icon=":material/warning:")
    key_counts = {}
key_freqs = sorted(key_counts)
key_text = ", ".join(f"{k} ({n})" for k, n in key_counts.items()) or "none yet"

# --- Training ---------------------------------------------------------------------------------

with tabs[0]:
    if tabs[0].open:
        if log is None or not len(log):
            st.info("This run has no training log; the progress measures below come from the checkpoints.")
        else:
            log_key = (run_path, signature, phase_key)
            left, right = st.columns(2)
            loss_spec = static_chart(("loss",) + log_key, lambda: charts.curves(
                views.long_curves(log, {"train_loss": "train", "test_loss": "test"}),
                title="Loss", subtitle="cross-entropy from the training log", y_title="loss (log scale)", log_y=True,
                phases=phase_bands, colors=charts.SPLIT_COLORS))
            left.vega_lite_chart(charts.add_step_rule(loss_spec, step), width="stretch")
            accuracy_spec = static_chart(("accuracy",) + log_key, lambda: charts.curves(
                views.long_curves(log, {"train_accuracy": "train", "test_accuracy": "test"}),
                title="Accuracy", subtitle="from the training log", y_title="accuracy", y_format=".0%",
                phases=phase_bands, colors=charts.SPLIT_COLORS))
            if log["train_accuracy"].notna().any():
                right.vega_lite_chart(charts.add_step_rule(accuracy_spec, step), width="stretch")
            else:
                right.info("This run's training log has no accuracies.")
        with st.expander("How the phases are found"):
            st.write(phases.rule)
        st.subheader("Progress measures")
        st.caption(f"Per saved checkpoint, for the key frequencies of the last checkpoint: {key_text} "
                   "(frequency (clustered neurons)).")
        try:
            if too_big:
                st.info(too_big)
                progress_frame = None
            else:
                progress_frame = remembered(
                    "timeline", (run_path, signature),
                    lambda report: timeline(run, progress=report), "Computing progress measures for every checkpoint")
                if known_timeline is None:
                    st.rerun()  # once: the phases (and the bands on every chart) use the weight norm too
        except GrokvizError as exc:
            show_error(exc)
            progress_frame = None
        if progress_frame is not None and len(progress_frame):
            panels = list(views.PROGRESS_PANELS.items())
            row = st.columns(len(panels))
            for column, (title, (series, log_y, y_title, explanation)) in zip(row, panels):
                spec = static_chart(("progress", title, run_path, signature, phase_key), lambda: charts.curves(
                    views.long_curves(progress_frame, series), title=title, y_title=y_title,
                    log_y=log_y, phases=phase_bands, points=True, narrow=True, colors=charts.MEASURE_COLORS))
                column.vega_lite_chart(charts.add_step_rule(spec, step), width="stretch")
                column.caption(explanation)

# --- Fourier ----------------------------------------------------------------------------------

with tabs[1]:
    if tabs[1].open:
        st.caption(f"Key frequencies (orange) are those of the clustered neurons at the last checkpoint "
                   f"(step {steps[-1]:,}): {key_text}.")
        left, right = st.columns(2)
        left.altair_chart(charts.spectrum_chart(
            views.spectrum_frame(fourier.embed_spectrum(params), key_freqs),
            title=f"Embedding W_E at step {step:,}", subtitle="norm of each frequency of B @ W_E (cos and sin together)"),
            width="stretch")
        right.altair_chart(charts.spectrum_chart(
            views.spectrum_frame(fourier.unembed_spectrum(params), key_freqs),
            title=f"Neuron-to-logit map W_L = W_out W_U at step {step:,}",
            subtitle="norm of each frequency of W_L over the output c"), width="stretch")
        mtimes = tuple(views.checkpoint_mtime(run, s) for s in steps)
        try:
            embed_history, unembed_history = spectra_over_run(run_path, tuple(steps), mtimes)
        except GrokvizError as exc:
            show_error(exc)
        else:
            subtitle = ("Each column is one saved checkpoint; colour is the frequency's share of that "
                        "checkpoint's squared norm. Key frequencies light up during the plateau.")
            for name, history in (("W_E", embed_history), ("W_L", unembed_history)):
                spec = static_chart(("spectrum", name, run_path, signature, tuple(key_freqs)), lambda: charts.spectrum_heatmap(
                    history, title=f"{name} spectrum over training", subtitle=subtitle, key_frequencies=key_freqs))
                st.vega_lite_chart(charts.add_step_rule(spec, step, color="white"), width="stretch")

# --- Ablation ---------------------------------------------------------------------------------

with tabs[2]:
    if tabs[2].open and too_big:
        st.info(too_big)
    elif tabs[2].open:
        n_freq = fourier.n_frequencies(p)
        all_freqs = list(range(1, n_freq + 1))
        stored_freqs = st.session_state.get("freqs")
        if stored_freqs is not None and list(stored_freqs) != views.ints_in_range(stored_freqs, 1, n_freq):
            st.session_state["freqs"] = views.ints_in_range(stored_freqs, 1, n_freq)
        controls = st.columns([3, 1.2, 1.2])
        chosen = controls[0].multiselect(
            "Frequencies", all_freqs, default=key_freqs, key="freqs", bind="query-params",
            help="Default: the key frequencies of the last checkpoint (the numbers of their clustered neurons are below).")
        mode = controls[1].radio("Mode", list(MODE_LABELS), format_func=MODE_LABELS.get, key="mode", bind="query-params")
        site = controls[2].radio("Site", list(SITE_HELP), key="site", bind="query-params",
                                 help="; ".join(f"{k}: {v}" for k, v in SITE_HELP.items()))
        st.caption(f"Key frequencies of the last checkpoint (step {steps[-1]:,}), with their clustered neurons: "
                   + (", ".join(views.frequency_label(k, key_counts) for k in key_counts) or "none yet") + ".")
        if not chosen:
            st.info("Choose at least one frequency to ablate.")
        else:
            def compute_ablation(at_step: int, cached: bool = True):
                at_mtime = views.checkpoint_mtime(run, at_step)
                at_params = load_params(run_path, at_step, at_mtime)
                if site == "neurons":
                    # The neurons site needs the activations: the full baseline (cached for the shown step only).
                    base = ablation_baseline(run_path, at_step, at_mtime) if cached else ablation.baseline(at_params)
                else:
                    base = logits_base(run_path, at_step, at_mtime)
                return ablation.ablate_baseline(base, at_params, dataset, chosen, mode, site)

            try:
                result = compute_ablation(step)
            except (GrokvizError, ValueError) as exc:
                show_error(exc)
                result = None
            if result is not None:
                what = f"{MODE_LABELS[mode]} frequencies {{{', '.join(map(str, chosen))}}} at the {site}"
                st.caption(f"Step {step:,}: {what} ({SITE_HELP[site]}).")
                cols = st.columns(4)
                for column, split in zip(cols, ("train", "test")):
                    b_, a_ = result.before[split], result.after[split]
                    column.metric(f"{split.capitalize()} accuracy after", f"{a_.accuracy:.1%}",
                                  f"{a_.accuracy - b_.accuracy:+.1%} (was {b_.accuracy:.1%})")
                for column, split in zip(cols[2:], ("train", "test")):
                    b_, a_ = result.before[split], result.after[split]
                    column.metric(f"{split.capitalize()} loss after", f"{a_.loss:.3g}", f"was {b_.loss:.3g}",
                                  delta_color="off")
                left, right = st.columns([1, 1.3])
                with left:
                    st.altair_chart(charts.correctness_grid(
                        views.grid_status(result.correct_after, dataset.is_train_grid(), views.valid_grid(dataset)),
                        title="Which (a, b) are still answered correctly",
                        subtitle=f"after the ablation; before it {result.before['all'].accuracy:.1%} of all pairs were"),
                        width="content")
                with right:
                    st.dataframe(views.metrics_display(views.metrics_table(result.before, result.after)), width="stretch")
                    st.markdown("**The same ablation at every checkpoint**")
                    memo_key = (run_path, signature, tuple(chosen), mode, site)
                    stored = memo_store().get(("ablation-timeline", memo_key))
                    slot = st.empty()
                    if stored is None and slot.button("Apply to every checkpoint", icon=":material/timeline:",
                                                      help="Runs the ablation on all saved checkpoints (a few seconds per 10)."):
                        slot.empty()  # the charts take the button's place
                        try:
                            stored = remembered("ablation-timeline", memo_key, lambda report: views.ablation_over_run(
                                steps, lambda s: compute_ablation(s, cached=False), report), "Ablating every checkpoint")
                        except GrokvizError as exc:
                            show_error(exc)
                    if stored is not None:
                        for metric in ("accuracy", "loss"):
                            spec = static_chart(("ablation", metric, memo_key, phase_key), lambda: charts.ablation_timeline(
                                stored, metric, phases=phase_bands))
                            st.vega_lite_chart(charts.add_step_rule(spec, step), width="stretch")
                        st.caption(f"Solid: before; dashed: after ({what}).")

# --- Neurons ----------------------------------------------------------------------------------

with tabs[3]:
    if tabs[3].open and too_big:
        st.info(too_big)
    elif tabs[3].open:
        d_mlp = cfg.d_mlp
        try:  # neurons are grouped by their frequency at the last checkpoint: stable while scrubbing
            group_step, final_table = steps[-1], neuron_table(run_path, steps[-1], last_mtime)
        except GrokvizError:
            group_step, final_table = step, neuron_table(run_path, step, mtime)
        clamp_state("neuron", 0, d_mlp - 1)
        neuron = int(st.number_input("Neuron", 0, d_mlp - 1, views.default_neuron(final_table), key="neuron",
                                     bind="query-params", help="Default: the best-fitting neuron of the largest cluster."))
        acts = activations(run_path, step, mtime)  # [p, p, d_mlp]
        groups = views.neuron_groups(acts[a, b], torch.tensor(final_table["frequency"].values),
                                     torch.tensor(final_table["clustered"].values), torch.tensor(final_table["dead"].values),
                                     key_freqs)
        st.altair_chart(charts.neuron_strip(
            groups, selected=neuron, title=f"All {d_mlp} neurons at input ({a}, {b}), step {step:,}",
            subtitle=f"grouped by each neuron's frequency at step {group_step:,}; "
                     f"clustered = FVE >= 0.85; the red ring is neuron {neuron}"), width="stretch")
        try:
            result = neurons.probe(acts, neuron, a, b)
        except ValueError as exc:
            show_error(exc)
            result = None
        left, middle = st.columns(2)
        with left:
            st.altair_chart(charts.heatmap(
                acts[:, :, neuron].numpy(), title=f"Neuron {neuron} over all inputs",
                subtitle=f"activation for every (a, b) at step {step:,}; the red square is ({a}, {b})",
                marker=(a, b), tick_every=10 if p > 40 else 5), width="content")
        with middle:
            block_norms = views.frequency_blocks(fourier.fourier_2d(acts[:, :, neuron].double()), centre=True)
            labels = ["const"] + [str(k) for k in range(1, fourier.n_frequencies(p) + 1)]
            st.altair_chart(charts.heatmap(
                block_norms, title=f"Neuron {neuron}: 2-D Fourier spectrum",
                subtitle=["norm of each (frequency of a, frequency of b) block, mean left out;",
                          "a frequency-k neuron lights (k, k), (k, const) and (const, k)"],
                x_title="frequency in b", y_title="frequency in a", color_title="norm", x_labels=labels, y_labels=labels,
                tick_every=5), width="content")
        if result is not None:
            st.subheader(f"Probe: neuron {neuron} at ({a}, {b}) with the terms of frequency k = {result.frequency}")
            if note:
                st.caption("The probe's terms come from the addition circuit; see the note above.")
            cols = st.columns(4)
            cols[0].metric("Activation", f"{result.activation:.4g}")
            cols[1].metric("Fit (sum of contributions)", f"{result.fit:.4g}")
            cols[2].metric("Residual", f"{result.residual:.4g}")
            cols[3].metric(f"FVE of k = {result.frequency}", f"{result.fve:.1%}")
            st.dataframe(views.probe_table(result.terms), hide_index=True, width="stretch", column_config={
                "value": st.column_config.NumberColumn("value at (a, b)", format="%.4f"),
                "coefficient": st.column_config.NumberColumn(format="%.4g"),
                "contribution": st.column_config.NumberColumn(format="%.4g"),
                "correlation": st.column_config.TextColumn("correlation over all inputs"),
            })
            st.caption(f"w = 2π·{result.frequency}/{p}. value: the term at (a, b); coefficient: least-squares fit "
                       "over all inputs; contribution = coefficient × value; correlation: Pearson correlation of the "
                       "neuron with the term over all inputs. The model uses cos(w(a+b)) = cos(wa)cos(wb) − sin(wa)sin(wb) "
                       "and sin(w(a+b)) = sin(wa)cos(wb) + cos(wa)sin(wb).")

# --- Prediction & attention -------------------------------------------------------------------

with tabs[4]:
    if tabs[4].open:
        shown_freqs = key_freqs or [1]
        prediction = ablation.predict(params, a, b, shown_freqs, correct_c)
        verdict = "correct" if prediction.answer == prediction.label else "wrong"
        st.caption(f"Input ({a}, {b}), step {step:,}: the model answers {prediction.answer}, "
                   f"the correct answer is {prediction.label} ({verdict}).")
        st.altair_chart(charts.logits_chart(
            prediction.logits.numpy(), answer=prediction.answer, label=prediction.label,
            title=f"Logits for ({a}, {b})", subtitle="one bar per output c; the highest bar is the model's answer"),
            width="stretch")
        left, right = st.columns(2)
        with left:
            st.altair_chart(charts.contributions_chart(
                prediction.contributions, title="Each key frequency's contribution to the correct logit",
                subtitle=f"its wave over c, evaluated at c = {prediction.label}"), width="stretch")
        with right:
            st.altair_chart(charts.waves_chart(
                views.waves_frame(prediction.frequencies, prediction.components), label=prediction.label,
                title="Key-frequency waves over the outputs",
                subtitle="once grokked, they peak together at the correct answer and cancel elsewhere"), width="stretch")
        if note:
            st.caption("Key frequencies and their waves describe the addition circuit; see the note above.")
        st.altair_chart(charts.attention_chart(
            views.attention_at(params, a, b), a=a, b=b, title=f"Attention from the '=' position for ({a}, {b})",
            subtitle="one bar per head: how much it reads from a, from b and from '='"), width="stretch")

# --- Sweep ------------------------------------------------------------------------------------


def open_member(key: str) -> None:
    """Button callback (runs before the rerun, so it may set the run picker): open a sweep member."""
    st.session_state["run"] = key
    st.session_state.pop("step", None)  # the member's own last checkpoint
    st.session_state["tab"] = TABS[0]


with tabs[5]:
    if tabs[5].open:
        found, sweep_problems = sweeps.list_sweeps(RUNS_DIR)
        for problem in sweep_problems:
            st.warning(problem, icon=":material/warning:")
        if not found:
            st.info(f"No sweeps in {RUNS_DIR}. Train one with `python -m grokviz.ensemble --out checkpoints/NAME "
                    "--weight-decay 0.3,1,3 --frac-train 0.2,0.4,0.6`.")
        else:
            by_name = {s.name: s for s in found}
            if st.session_state.get("sweep") not in by_name:
                st.session_state.pop("sweep", None)
            sweep = by_name[st.selectbox("Sweep", list(by_name), key="sweep", bind="query-params")]
            logs_signature = tuple(views.file_mtime(m.path / "log.csv") for m in sweep.members)
            table = sweep_outcomes(str(sweep.path), logs_signature)
            swept = sweep.swept_axes() or ["seed"]
            x_default = "frac_train" if "frac_train" in swept else swept[0]
            y_choices = [a for a in swept if a != x_default]
            y_default = "weight_decay" if "weight_decay" in y_choices else (y_choices[0] if y_choices else None)
            controls = st.columns(4)
            x_axis = controls[0].selectbox("Across", swept, index=swept.index(x_default), key="sweep_x")
            y_options = [a for a in swept if a != x_axis]
            y_axis = controls[1].selectbox("Down", y_options, index=y_options.index(y_default) if y_default in y_options else 0,
                                           key="sweep_y") if y_options else None
            fixed = {}
            for column, axis in zip(controls[2:], [a for a in swept if a not in (x_axis, y_axis)]):
                fixed[axis] = column.selectbox(axis, views.axis_order(table[axis]), key=f"sweep_fix_{axis}")
            grid = views.sweep_grid(table, x_axis, y_axis, fixed)
            counts = table["outcome"].value_counts()
            st.caption(f"{len(table)} members: " + ", ".join(f"{counts.get(o, 0)} {o}" for o in sweeps.OUTCOMES)
                       + f". Numbers are the first logged step with test accuracy >= {sweeps.THRESHOLD:.0%}.")
            st.altair_chart(charts.sweep_grid(
                grid, x_title=x_axis, y_title=y_axis, title=f"{sweep.name}: outcome of every member",
                subtitle="grokked: the number is the step test accuracy reached 99%; memorised only: train did, test never; never fit",
                x_order=views.axis_order(grid["x"]), y_order=views.axis_order(grid["y"])), width="content")
            openable = {views.run_key(sweep.path / name, APP_DIR): name for name in grid["member"]
                        if views.run_key(sweep.path / name, APP_DIR) in choices.runs}
            if openable:
                outcome_of = dict(zip(table["member"], zip(table["outcome"], table["grok_step"])))

                def member_label(key: str) -> str:
                    name = openable[key]
                    outcome, grok_step = outcome_of[name]
                    return f"{name}: {outcome}" + (f" at step {int(grok_step):,}" if outcome == "grokked" else "")

                left, right = st.columns([3, 1])
                chosen_member = left.selectbox("Member", list(openable), format_func=member_label, key="sweep_member")
                right.button("Open this member", icon=":material/open_in_new:", on_click=open_member, args=(chosen_member,),
                             help="Makes it the current run (sidebar) and shows its Training tab.")
            with st.expander("All members"):
                st.dataframe(table.drop(columns=["problem"] if table["problem"].isna().all() else []),
                             hide_index=True, width="stretch")
