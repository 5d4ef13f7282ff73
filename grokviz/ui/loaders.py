"""Every cached loader of the app, in one place (keys: run path + step + file mtime, so a rewritten
file reloads; a growing log is keyed on its size and mtime).

The run itself is opened (run.json read and validated) once per version of its run.json
(:func:`opened_run`, keyed on the file's mtime); every other loader reads the run through it, so a
cache miss costs only the file it is about.

Tensors are cached as resources (shared, never copied): they are read-only in the app, and copying
a [p^2, p] or [p, p, d_mlp] tensor on every rerun would cost more than computing a chart.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from grokviz.analysis import baseline, fourier, neurons
from grokviz.analysis.group import group_for
from grokviz.analysis.progress import phase_boundaries
from grokviz.core.config import Config, dataset_for
from grokviz.core.fast_path import forward_all_pairs
from grokviz.storage import sweeps
from grokviz.storage.runs import RUN_FILE, Run, open_run
from grokviz.ui import catalog, charts
from grokviz.ui.views import metrics, spectra


@st.cache_resource(max_entries=32, show_spinner=False)
def _open(run_path: str, run_file_mtime: float) -> Run:
    return open_run(run_path)


def opened_run(run_path: str) -> Run:
    """The run at ``run_path``, opened once per version of its run.json (each call only stats it,
    so a run whose run.json is rewritten, e.g. by ``--resume --steps``, is opened again).

    Shared by every session: only :meth:`Run.load` is called on it, whose one state, the list of
    checkpoint files, it rescans itself when asked for a step it has not seen."""
    return _open(run_path, catalog.file_mtime(Path(run_path) / RUN_FILE))


@st.cache_resource(max_entries=64, show_spinner=False)
def load_params(run_path: str, step: int, mtime: float):
    return opened_run(run_path).load(step)


def group_of(run_path: str):
    """The group of the run's Fourier analyses (discrete-log for mul and div; ``group_for`` is memoised)."""
    cfg = opened_run(run_path).config
    return group_for(cfg.task, cfg.p)


def arch_of(run_path: str):
    """The architecture of the run's checkpoints (every forward here passes it)."""
    return opened_run(run_path).config.architecture


@st.cache_resource(max_entries=8, show_spinner=False)
def load_dataset(config_json: str):
    """The run's own train/test split (an imported reference run keeps the reference split)."""
    return dataset_for(Config.from_json(config_json))


@st.cache_data(max_entries=8, show_spinner=False)
def load_log(run_path: str, size: int, mtime: float):
    """The training log and the problems met reading it (rows skipped, with their line numbers)."""
    opened = opened_run(run_path)
    # A reader of its own (no file I/O): Run.log keeps its problems on the object, and the shared
    # run's problems would also hold the checkpoint files its last scan skipped.
    run = Run(path=opened.path, config=opened.config, source=opened.source)
    frame = run.log()
    return frame, list(run.problems)


@st.cache_data(max_entries=8, show_spinner=False)
def load_phases(run_path: str, size: int, mtime: float, _timeline, has_timeline: bool):
    """Phase boundaries from the log, and from the progress measures once they are computed
    (the end of cleanup also waits for the weight norm to settle)."""
    return phase_boundaries(load_log(run_path, size, mtime)[0], _timeline)


@st.cache_resource(max_entries=64, show_spinner=False)  # 5.8 MB each at p = 113
def logits_base(run_path: str, step: int, mtime: float):
    """The all-pairs logits of a checkpoint, with their metrics memoised (no activations kept)."""
    arch = arch_of(run_path)
    logits = forward_all_pairs(load_params(run_path, step, mtime), arch=arch)
    return metrics.logits_baseline(logits, group_of(run_path), arch)


@st.cache_resource(max_entries=6, show_spinner=False)
def activations(run_path: str, step: int, mtime: float, layer: int = 0):
    """[p, p, d_mlp] the '=' position's neurons of block ``layer`` (0: a 1-layer run's only one)."""
    return neurons.neuron_activations(load_params(run_path, step, mtime), arch_of(run_path), layer)


@st.cache_resource(max_entries=3, show_spinner=False)
def ablation_baseline(run_path: str, step: int, mtime: float, layer: int | None = None):
    """The neurons site's baseline: block ``layer``'s activations (None: the last block's)."""
    return baseline.baseline(load_params(run_path, step, mtime), group_of(run_path), arch_of(run_path), layer)


@st.cache_data(max_entries=8, show_spinner=False)
def key_frequency_counts(run_path: str, step: int, mtime: float) -> dict[int, int]:
    """Frequency -> number of clustered neurons at one checkpoint (the app uses the last one), in
    every block (each block's counts added; one block: its own)."""
    group = group_of(run_path)  # discrete-log: log order, 0 left out
    if opened_run(run_path).config.n_layers == 1:  # the Neurons tab's cached activations serve it
        every = [activations(run_path, step, mtime)]
    else:  # every block's from one forward
        every = neurons.layer_activations(load_params(run_path, step, mtime), arch_of(run_path))
    return neurons.blocks_key_frequencies(every, group)


@st.cache_data(max_entries=16, show_spinner=False)
def neuron_table(run_path: str, step: int, mtime: float, layer: int = 0):
    """Per-neuron frequency table of block ``layer`` at one checkpoint (neuron, frequency, best_fve, clustered, dead)."""
    return neurons.neuron_stats(group_of(run_path).on_group(activations(run_path, step, mtime, layer))).table()


@st.cache_data(max_entries=16, show_spinner=False)
def spectra_over_run(run_path: str, steps: tuple[int, ...], mtimes: tuple[float, ...]):
    """step -> (W_E spectrum, W_L spectrum) for every saved step, as numpy arrays."""
    embed, unembed = {}, {}
    for step, mtime in zip(steps, mtimes):
        params = load_params(run_path, step, mtime)
        embed[step] = fourier.embed_spectrum(params, group_of(run_path)).numpy()
        unembed[step] = fourier.unembed_spectrum(params, group_of(run_path)).numpy()
    return spectra.spectrum_history(embed), spectra.spectrum_history(unembed)


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


# --- the Adder page (digits runs) ------------------------------------------------------------


@st.cache_resource(show_spinner=False)
def verification_pairs(subset: int | None = None):
    """The verification set (``subset``: its first that many pairs, for over-the-run views)."""
    from grokviz.core import digits_tasks

    pairs = digits_tasks.verification_set()
    if subset is None:
        return pairs
    return digits_tasks.PairSet(f"verification[:{subset}]", pairs.a[:subset], pairs.b[:subset])


@st.cache_resource(max_entries=64, show_spinner=False)
def digits_scores(run_path: str, step: int, mtime: float, ablation=None, subset: int | None = None):
    """Scores of one checkpoint on the verification set, optionally ablated (``ablation`` is hashable)."""
    from grokviz.analysis import digits

    return digits.score(load_params(run_path, step, mtime), verification_pairs(subset), ablation)


@st.cache_resource(max_entries=64, show_spinner=False)
def digits_probe(run_path: str, step: int, mtime: float, site: str, subset: int = 4000):
    from grokviz.analysis import digits

    return digits.carry_probe(load_params(run_path, step, mtime), verification_pairs(subset), site)
