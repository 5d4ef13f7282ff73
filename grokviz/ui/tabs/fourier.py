"""The Fourier tab: the spectra of W_E and W_L at the current step, and over every checkpoint."""

from __future__ import annotations

import streamlit as st

from grokviz.analysis import fourier
from grokviz.errors import GrokvizError
from grokviz.ui import charts, loaders
from grokviz.ui.state import View
from grokviz.ui.views import spectra
from grokviz.ui.widgets import show_error


def render(view: View) -> None:
    """Key frequencies (orange) are those of the clustered neurons at the last checkpoint."""
    st.caption(
        f"Key frequencies (orange) are those of the clustered neurons at the last checkpoint "
        f"(step {view.steps[-1]:,}): {view.key_text}."
    )
    group = view.group
    over = f" over log x, Z_{group.order} (token 0 left out)" if group.discrete_log else ""
    left, right = st.columns(2)
    sides = (
        (
            left,
            fourier.embed_spectrum,
            f"Embedding W_E at step {view.step:,}",
            f"norm of each frequency of B @ W_E (cos and sin together){over}",
        ),
        (
            right,
            fourier.unembed_spectrum,
            f"Neuron-to-logit map {spectra.neuron_logit_map_name(view.arch)}"
            + (f" of the last layer ({view.n_layers - 1})" if view.n_layers > 1 else "")
            + f" at step {view.step:,}",
            "norm of each frequency of W_L over the output c" + (" (log c; c = 0 left out)" if over else ""),
        ),
    )
    for column, spectrum_of, title, subtitle in sides:
        frame = spectra.spectrum_frame(spectrum_of(view.params, group), view.key_freqs)
        # One chart per run and side, its data swapped per step (the slider stays fast).
        template = loaders.static_chart(
            ("spectrum-at-step", subtitle, view.run_path, view.signature, tuple(view.key_freqs)),
            lambda: charts.spectrum_chart(frame, title=title, subtitle=subtitle),
        )
        column.vega_lite_chart(charts.with_spectrum(template, frame, title), width="stretch")
    mtimes = tuple(view.mtime(s) for s in view.steps)
    try:
        embed_history, unembed_history = loaders.spectra_over_run(view.run_path, tuple(view.steps), mtimes)
    except GrokvizError as exc:
        show_error(exc)
    else:
        subtitle = (
            "Each column is one saved checkpoint; colour is the frequency's share of that "
            "checkpoint's squared norm. Key frequencies light up during the plateau."
        )
        for name, history in (("W_E", embed_history), ("W_L", unembed_history)):
            spec = loaders.static_chart(
                ("spectrum", name, view.run_path, view.signature, tuple(view.key_freqs)),
                lambda: charts.spectrum_heatmap(
                    history, title=f"{name} spectrum over training", subtitle=subtitle, key_frequencies=view.key_freqs
                ),
            )
            st.vega_lite_chart(charts.add_step_rule(spec, view.step, color="white"), width="stretch")
