"""The Groups page's Irreps tab: the key irreps in words, the spectra of W_E and W_U and the character
FVE of the logits per irrep at this step, and the embedding spectrum over the run as a heatmap."""

from __future__ import annotations

import streamlit as st

from grokviz.analysis import groups as analysis
from grokviz.ui import groups_loaders as gl
from grokviz.ui.charts import groups as charts
from grokviz.ui.groups_tabs.state import DEFAULT_THRESHOLD, GroupView
from grokviz.ui.views import groups as views

# The three bar charts of this step: (the checkpoint's numbers, title, subtitle, y-axis title).
BARS = (
    (
        "embedding_spectrum",
        "Embedding W_E per irrep",
        "share of |W_E[:n]|² in its functions of the token",
        "share of |W_E|²",
    ),
    (
        "unembedding_spectrum",
        "Unembedding W_U per irrep",
        "share of |W_U|² in its functions of the answer c",
        "share of |W_U|²",
    ),
    ("character_fve", "Character FVE of the logits per irrep", "the logits' variance along χ_ρ(a·b·c⁻¹)", "FVE"),
)


def render(view: GroupView) -> None:
    """Key irreps of this step (orange in every chart)."""
    group, info = view.group, view.info
    key = gl.key_irreps(view.path, view.step, view.mtime())
    neurons = gl.neurons(view.path, view.step, view.mtime())
    counts = analysis.neuron_counts(neurons, DEFAULT_THRESHOLD)
    st.markdown(
        f"**Step {view.step:,}.** "
        + views.key_irreps_text(group, key, counts, info["character_fve"], info["embedding_spectrum"])
    )
    for column, (field, title, subtitle, y_title) in zip(st.columns(3), BARS):
        column.altair_chart(
            charts.irrep_bars(
                views.per_irrep_frame(group, info[field], key), title=title, subtitle=subtitle, y_title=y_title
            ),
            width="stretch",
        )
    history = view.over_run(
        "groups_spectra", lambda s, m: gl.spectra_point(view.path, s, m)[0], "Reading W_E at every checkpoint"
    )
    st.altair_chart(
        charts.irrep_heatmap(
            views.spectrum_history(group, history),
            title="Embedding spectrum over training",
            subtitle="share of |W_E[:n]|² per irrep at every checkpoint; key irreps of this step in orange",
            step=view.step,
            key=key,
        ),
        width="stretch",
    )
    st.caption(
        "Nothing is centred: the trivial irrep holds the mean embedding. A d-dimensional irrep spans d² functions, "
        "so a random embedding already puts more of its norm in the larger irreps."
    )
