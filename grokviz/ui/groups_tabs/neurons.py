"""The Groups page's Neurons tab: clustered neurons per irrep and each neuron's FVE at a chosen
threshold, and the probe of one pair (a, b): the top clustered neurons' activations against their
fits by their irreps (``grokviz.analysis.groups_probe``), and one neuron over every pair."""

from __future__ import annotations

import streamlit as st

from grokviz.analysis import groups as analysis
from grokviz.analysis import groups_probe
from grokviz.ui import groups_loaders as gl
from grokviz.ui.charts import groups as charts
from grokviz.ui.groups_tabs.state import DEFAULT_THRESHOLD, GroupView
from grokviz.ui.views import groups as views
from grokviz.ui.widgets import clamp_state

ALL_CLUSTERED = "all irreps"  # the probe's choice of every clustered neuron


def render(view: GroupView) -> None:
    """The threshold, (a, b), whose neurons, how many and the scattered neuron are in the URL."""
    group = view.group
    neurons = gl.neurons(view.path, view.step, view.mtime())
    d_mlp = len(neurons.fve)
    threshold = st.columns(3)[0].slider(
        "Clustered at FVE ≥",
        0.5,
        0.99,
        DEFAULT_THRESHOLD,
        0.01,
        key="group_threshold",
        bind="query-params",
        help="A neuron is clustered on its irrep when that irrep's blocks explain at least this much of its variance.",
    )
    key = gl.key_irreps(view.path, view.step, view.mtime(), threshold)
    counts = analysis.neuron_counts(neurons, threshold)
    clustered = int(neurons.clustered(threshold).sum())
    left, right = st.columns(2)
    left.altair_chart(
        charts.irrep_bars(
            views.counts_frame(group, counts, key),
            value="neurons",
            title="Clustered neurons per irrep",
            subtitle=f"{clustered} of {d_mlp} neurons have FVE ≥ {threshold:.2f}; {int(neurons.dead.sum())} dead",
            y_title="neurons",
            y_format="",
        ),
        width="stretch",
    )
    right.altair_chart(
        charts.fve_histogram(
            views.fve_frame(neurons, group),
            threshold,
            title="Each neuron's FVE by its best irrep",
            subtitle="the share of its variance over (a, b) in the blocks (ρ, 1), (1, ρ), (ρ, ρ); living neurons",
        ),
        width="stretch",
    )
    _probe(view, neurons, threshold, counts)


def _probe(view: GroupView, neurons, threshold: float, counts: dict[str, int]) -> None:
    """One pair (a, b): the top clustered neurons there, and one of them over every pair."""
    group = view.group
    n = group.order
    d_mlp = len(neurons.fve)
    st.subheader("Probe one pair (a, b)")
    element_names = group.labels()
    for name in ("group_a", "group_b"):
        clamp_state(name, 0, n - 1)
    cols = st.columns([1, 1, 1, 1])
    a = int(cols[0].number_input("a (token)", 0, n - 1, min(1, n - 1), key="group_a", bind="query-params"))
    b = int(cols[1].number_input("b (token)", 0, n - 1, min(2, n - 1), key="group_b", bind="query-params"))
    # Whose neurons: by default the irrep with the most clustered neurons (S5's sign irrep has the
    # highest FVEs, four values each, and would fill the table otherwise).
    held = list(counts)
    probe_options = [ALL_CLUSTERED, *sorted(held, key=lambda label: -counts[label])]
    if st.session_state.get("group_probe_irrep") not in (None, *probe_options):
        st.session_state.pop("group_probe_irrep")  # an irrep with no clustered neuron at this step or threshold
    of_irrep = cols[2].selectbox(
        "Neurons of",
        probe_options,
        index=1 if held else 0,
        key="group_probe_irrep",
        bind="query-params",
        help="The clustered neurons of one irrep, or of all.",
    )
    clamp_state("group_top", 1, max(d_mlp, 1))
    top = int(
        cols[3].number_input(
            "Neurons shown (top by FVE)", 1, max(d_mlp, 1), min(10, d_mlp), key="group_top", bind="query-params"
        )
    )
    cols[0].caption(f"a = {element_names[a]}")
    cols[1].caption(f"b = {element_names[b]}")
    logits, acts = gl.all_pairs(view.path, view.step, view.mtime())
    answer = int(logits[a * n + b].argmax())
    right_answer = group.compose(a, b)
    split = views.pair_split(gl.dataset(view.path).train_idx, group, a, b)
    verdict = "right" if answer == right_answer else f"wrong: it answers {answer}: {element_names[answer]}"
    st.markdown(f"**{views.pair_text(group, a, b)}**  (a {split} pair; the model is {verdict})")
    chosen = views.top_clustered(neurons, threshold, top, None if of_irrep == ALL_CLUSTERED else of_irrep)
    if not chosen:
        st.info(
            f"No neuron has FVE ≥ {threshold:.2f} at step {view.step:,}: lower the threshold, or pick a later step."
        )
        return
    fit = groups_probe.neuron_fit(group, acts, chosen, a, b)
    table = views.probe_table(fit, neurons, group)
    st.altair_chart(
        charts.probe_bars(
            table,
            title=f"The top {len(chosen)} clustered neurons at ({a}, {b})",
            subtitle="each neuron's activation and its fit by its irrep: mean + ρ_ij(a), ρ_kl(b), ρ_ij(a)·ρ_kl(b) terms",
        ),
        width="stretch",
    )
    st.dataframe(
        table,
        hide_index=True,
        column_config={
            "FVE": st.column_config.NumberColumn(format="%.3f"),
            "activation": st.column_config.NumberColumn(format="%.4f"),
            "fit by its irrep": st.column_config.NumberColumn(format="%.4f"),
            "residual": st.column_config.NumberColumn(format="%.4f"),
        },
    )
    _scatter(view, neurons, acts, chosen, a, b)


def _scatter(view: GroupView, neurons, acts, chosen: dict[int, str], a: int, b: int) -> None:
    """One of the probed neurons over every pair, against its fit; its R² over all pairs is its FVE."""
    group = view.group
    n = group.order
    options = list(chosen)
    if st.session_state.get("group_neuron") not in (None, *options):
        st.session_state.pop("group_neuron")  # a neuron of another step or threshold
    neuron = st.selectbox(
        "Neuron to scatter",
        options,
        format_func=lambda i: f"{i}: {views.names(group)[chosen[i]]}, FVE {neurons.fve[i]:.3f}",
        key="group_neuron",
        bind="query-params",
    )
    label = chosen[neuron]
    fitted = groups_probe.irrep_fit(group, acts[:, neuron], label)[:, 0]
    actual = acts[:, neuron].double().numpy()
    r2 = groups_probe.r_squared(actual, fitted)
    st.altair_chart(
        charts.fit_scatter(
            views.scatter_frame(group, actual, fitted, a, b),
            title=f"Neuron {neuron}: activation against its fit by {views.names(group)[label]}",
            subtitle=f"every pair (up to 3,000 drawn); R² = {r2:.3f} over all {n * n:,} pairs; ({a}, {b}) ringed",
        ),
        width="content",
    )
    st.caption(
        "The fit keeps the neuron's mean and the blocks (ρ, 1), (1, ρ), (ρ, ρ) of its 2-D group Fourier transform: "
        "the least-squares fit by the functions ρ_ij(a), ρ_kl(b) and ρ_ij(a)·ρ_kl(b). Its R² over all pairs is the "
        "neuron's FVE."
    )
