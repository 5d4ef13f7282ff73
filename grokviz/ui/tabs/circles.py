"""The Circles tab: for each chosen frequency k, every token's embedding (and unembedding) in the plane
of W_E's (W_U's) cos-k and sin-k components, joined in the order of x·k mod p (k·log x mod p-1 for
mul and div), with the input (a, b) and its answer marked. Scrub the step slider to watch it form."""

from __future__ import annotations

import streamlit as st

from grokviz.analysis import fourier
from grokviz.analysis.circle import circle
from grokviz.ui import charts
from grokviz.ui.state import View
from grokviz.ui.views import circles, frequencies

MAX_CIRCLES = 4  # per side; more do not fit a row


def render(view: View) -> None:
    """Key frequencies by default (those of the last checkpoint)."""
    group = view.group
    n_freq = fourier.n_frequencies(view.p)
    # The key frequencies with the most clustered neurons, in ascending order.
    biggest = sorted(view.key_counts, key=lambda k: -view.key_counts[k])[:MAX_CIRCLES]
    default = sorted(biggest) or [1]
    stored = st.session_state.get("circle_freqs")
    if stored is not None and list(stored) != frequencies.ints_in_range(stored, 1, n_freq)[:MAX_CIRCLES]:
        st.session_state["circle_freqs"] = frequencies.ints_in_range(stored, 1, n_freq)[:MAX_CIRCLES]
    chosen = st.multiselect(
        "Frequencies",
        list(range(1, n_freq + 1)),
        default=default,
        key="circle_freqs",
        max_selections=MAX_CIRCLES,
        help=f"Default: the (up to {MAX_CIRCLES}) key frequencies of the last checkpoint with the most neurons.",
    )
    if group.discrete_log:
        order = f"k·log x mod {group.order} (log to base {group.generator}); the token 0 has no log and is left out"
    else:
        order = f"x·k mod {view.p}"
    st.caption(
        f"Step {view.step:,}. Each point is a token, placed by projecting its embedding (centred) on the plane of "
        f"W_E's cos-k and sin-k Fourier components, and joined in the order of {order}: a model that represents x "
        "as a rotation puts them on a circle. Marked: a, b and the answer. Key frequencies of the last checkpoint: "
        f"{view.key_text}."
    )
    if not chosen:
        st.info("Choose at least one frequency.")
        return
    answer = view.correct_c
    marks = {"a": view.a, "b": view.b, "answer": answer}
    for side, name, what in (
        ("embedding", "W_E", "token x's row of W_E"),
        ("unembedding", "W_U", "output c's column of W_U"),
    ):
        st.markdown(f"**{side.capitalize()} ({name})**: {what}")
        columns = st.columns(len(chosen))
        for column, k in zip(columns, chosen):
            drawn = circle(view.params, k, side, group)
            points, marked = circles.circle_frames(drawn, marks)
            column.altair_chart(
                charts.circle_chart(
                    points,
                    marked,
                    title=f"k = {k}",
                    subtitle=f"{drawn.plane_share:.0%} of {name}'s variance in this plane",
                    size=200 if len(chosen) > 2 else 300,
                ),
                width="content",
            )
