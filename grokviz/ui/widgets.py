"""Small Streamlit helpers every page uses: an error box, a number input's state kept in range, the
layer choice of a run with more than one block."""

from __future__ import annotations

import streamlit as st


def show_error(exc: Exception) -> None:
    st.error(str(exc), icon=":material/error:")


def clamp_state(key: str, low: int, high: int) -> None:
    """Keep a bound number input's stored value in range when the run (and so p or d_mlp) changes."""
    value = st.session_state.get(key)
    if value is not None and not low <= int(value) <= high:
        st.session_state[key] = min(max(int(value), low), high)


def layer_choice(n_layers: int, what: str = "neurons") -> int:
    """The block whose ``what`` a tab shows: a radio (in the URL, shared by the tabs; default the last
    block, the one writing to the logits) where the run has more than one layer; 0 without asking otherwise."""
    if n_layers <= 1:
        return 0
    # Imported here: analysis.layers loads torch, which the explorer's first charts must not wait for.
    from grokviz.analysis.layers import layer_label

    clamp_state("layer", 0, n_layers - 1)
    return int(
        st.radio(
            "Layer",
            list(range(n_layers)),
            index=n_layers - 1,
            format_func=str,  # the URL holds the shown label: ?layer=0
            captions=[
                layer_label(layer, n_layers).removeprefix(f"layer {layer}").strip(" ()") for layer in range(n_layers)
            ],
            horizontal=True,
            key="layer",
            bind="query-params",
            help=f"Which of the model's {n_layers} blocks' {what} to show (the '=' position's). "
            "Key frequencies are those of every block's neurons.",
        )
    )
