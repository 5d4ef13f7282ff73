"""The Neurons tab: every MLP neuron at (a, b) grouped by frequency, one neuron over all inputs and
its 2-D spectrum, and the cos·cos / sin·sin probe of that neuron at (a, b). A run with more than
one block gets a layer choice above them (the last block by default)."""

from __future__ import annotations

import streamlit as st
import torch

from grokviz.analysis import fourier, neurons
from grokviz.errors import GrokvizError
from grokviz.ui import charts, loaders
from grokviz.ui.state import View
from grokviz.ui.views.neurons import default_neuron, neuron_groups, probe_table
from grokviz.ui.views.spectra import frequency_pair_norms
from grokviz.ui.widgets import clamp_state, layer_choice, show_error


def render(view: View) -> None:
    """Neurons are grouped by their frequency at the last checkpoint, so groups stay put while scrubbing."""
    if view.too_big:
        st.info(view.too_big)
        return
    d_mlp = view.cfg.d_mlp
    layer = layer_choice(view.n_layers)
    of_layer = f" of layer {layer}" if view.n_layers > 1 else ""
    try:  # neurons are grouped by their frequency at the last checkpoint: stable while scrubbing
        group_step, final_table = (
            view.steps[-1],
            loaders.neuron_table(view.run_path, view.steps[-1], view.mtime(view.steps[-1]), layer),
        )
    except GrokvizError:
        group_step, final_table = view.step, loaders.neuron_table(view.run_path, view.step, view.mtime(), layer)
    clamp_state("neuron", 0, d_mlp - 1)
    neuron = int(
        st.number_input(
            "Neuron",
            0,
            d_mlp - 1,
            default_neuron(final_table),
            key="neuron",
            bind="query-params",
            help="Default: the best-fitting neuron of the largest cluster.",
        )
    )
    acts = loaders.activations(view.run_path, view.step, view.mtime(), layer)  # [p, p, d_mlp]
    groups = neuron_groups(
        acts[view.a, view.b],
        torch.tensor(final_table["frequency"].values),
        torch.tensor(final_table["clustered"].values),
        torch.tensor(final_table["dead"].values),
        view.key_freqs,
    )
    st.altair_chart(
        charts.neuron_strip(
            groups,
            selected=neuron,
            title=f"All {d_mlp} neurons{of_layer} at input ({view.a}, {view.b}), step {view.step:,}",
            subtitle=f"grouped by each neuron's frequency at step {group_step:,}; "
            f"clustered = FVE >= 0.85; the red ring is neuron {neuron}",
        ),
        width="stretch",
    )
    group = view.group
    # Discrete-log basis: the neuron is analysed over (log a, log b); pairs with 0 are left out.
    group_acts = group.on_group(acts)  # [n, n, d_mlp]
    la, lb = group.element(view.a), group.element(view.b)
    result = None
    if la is None or lb is None:
        st.info(f"({view.a}, {view.b}) contains 0, which has no log: the probe leaves it out. Choose a, b ≠ 0.")
    else:
        try:
            result = neurons.probe(group_acts, neuron, la, lb)
        except ValueError as exc:
            show_error(exc)
    marker = (view.a, view.b) if not group.discrete_log else (None if result is None else (la, lb))
    axis = "log " if group.discrete_log else ""
    left, middle = st.columns(2)
    with left:
        st.altair_chart(
            charts.heatmap(
                group_acts[:, :, neuron].numpy(),
                title=f"Neuron {neuron}{of_layer} over all inputs" + (" in log order" if axis else ""),
                subtitle=f"activation for every ({axis}a, {axis}b) at step {view.step:,}"
                + ("" if marker is None else f"; the red square is ({view.a}, {view.b})"),
                x_title=f"{axis}b",
                y_title=f"{axis}a",
                marker=marker,
                tick_every=10 if view.p > 40 else 5,
            ),
            width="content",
        )
    with middle:
        block_norms = frequency_pair_norms(fourier.fourier_2d(group_acts[:, :, neuron].double()), centre=True)
        subtitle = [
            "norm of each (frequency of a, frequency of b) block, mean left out;",
            "a frequency-k neuron lights (k, k), (k, const) and (const, k)",
        ]
        st.altair_chart(
            charts.neuron_spectrum(block_norms, fourier.n_frequencies(group.order), neuron, subtitle),
            width="content",
        )
    if result is not None:
        st.subheader(
            f"Probe: neuron {neuron}{of_layer} at ({view.a}, {view.b}) with the terms of frequency k = {result.frequency}"
        )
        if view.note and not group.discrete_log:
            st.caption("The probe's terms come from the addition circuit; see the note above.")
        cols = st.columns(4)
        cols[0].metric("Activation", f"{result.activation:.4g}")
        cols[1].metric("Fit (sum of contributions)", f"{result.fit:.4g}")
        cols[2].metric("Residual", f"{result.residual:.4g}")
        cols[3].metric(f"FVE of k = {result.frequency}", f"{result.fve:.1%}")
        st.dataframe(
            probe_table(result.terms, group.discrete_log),
            hide_index=True,
            width="stretch",
            column_config={
                "value": st.column_config.NumberColumn("value at (a, b)", format="%.4f"),
                "coefficient": st.column_config.NumberColumn(format="%.4g"),
                "contribution": st.column_config.NumberColumn(format="%.4g"),
                "correlation": st.column_config.TextColumn("correlation over all inputs"),
            },
        )
        if group.discrete_log:
            st.caption(
                f"w = 2π·{result.frequency}/{group.order}, log to base {group.generator}; (a, b) = ({view.a}, {view.b}) "
                f"has (log a, log b) = ({la}, {lb}). value: the term at (a, b); coefficient: least-squares fit over the "
                f"{group.order}² inputs without 0; contribution = coefficient × value; correlation: Pearson correlation "
                "over those inputs. The model can use cos(w(log a + log b)) = cos(w·log a)cos(w·log b) − "
                "sin(w·log a)sin(w·log b), and log(ab) = log a + log b."
            )
        else:
            st.caption(
                f"w = 2π·{result.frequency}/{view.p}. value: the term at (a, b); coefficient: least-squares fit "
                "over all inputs; contribution = coefficient × value; correlation: Pearson correlation of the "
                "neuron with the term over all inputs. The model uses cos(w(a+b)) = cos(wa)cos(wb) − sin(wa)sin(wb) "
                "and sin(w(a+b)) = sin(wa)cos(wb) + cos(wa)sin(wb)."
            )
