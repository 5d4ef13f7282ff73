"""Small Streamlit helpers every page uses: an error box, a number input's state kept in range."""

from __future__ import annotations

import streamlit as st


def show_error(exc: Exception) -> None:
    st.error(str(exc), icon=":material/error:")


def clamp_state(key: str, low: int, high: int) -> None:
    """Keep a bound number input's stored value in range when the run (and so p or d_mlp) changes."""
    value = st.session_state.get(key)
    if value is not None and not low <= int(value) <= high:
        st.session_state[key] = min(max(int(value), low), high)
