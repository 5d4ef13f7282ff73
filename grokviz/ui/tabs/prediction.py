"""The Prediction & attention tab: the logits at (a, b), each key frequency's share of the correct
logit, the waves that peak together at the answer, and where the '=' position attends (in every
layer of a deeper model)."""

from __future__ import annotations

import streamlit as st

from grokviz.analysis import ablation
from grokviz.ui import charts
from grokviz.ui.state import View
from grokviz.ui.views.prediction import attention_at, waves_frame


def render(view: View) -> None:
    """One input explained at the current step."""
    shown_freqs = view.key_freqs or [1]
    group = view.group
    prediction = ablation.predict(view.params, view.a, view.b, shown_freqs, view.correct_c, group, view.arch)
    label_column = group.element(prediction.label)  # where the label sits on the waves' axis
    verdict = "correct" if prediction.answer == prediction.label else "wrong"
    st.caption(
        f"Input ({view.a}, {view.b}), step {view.step:,}: the model answers {prediction.answer}, "
        f"the correct answer is {prediction.label} ({verdict})."
    )
    st.altair_chart(
        charts.logits_chart(
            prediction.logits.numpy(),
            answer=prediction.answer,
            label=prediction.label,
            title=f"Logits for ({view.a}, {view.b})",
            subtitle="one bar per output c; the highest bar is the model's answer",
        ),
        width="stretch",
    )
    left, right = st.columns(2)
    with left:
        st.altair_chart(
            charts.contributions_chart(
                prediction.contributions,
                title="Each key frequency's contribution to the correct logit",
                subtitle=f"its wave over c, evaluated at c = {prediction.label}"
                + (f" (log c = {label_column})" if group.discrete_log and label_column is not None else ""),
            ),
            width="stretch",
        )
    with right:
        st.altair_chart(
            charts.waves_chart(
                waves_frame(prediction.frequencies, prediction.components),
                label=prediction.label if label_column is None else label_column,
                title="Key-frequency waves over the outputs" + (" in log order" if group.discrete_log else ""),
                subtitle="once grokked, they peak together at the correct answer and cancel elsewhere"
                + (f"; the axis is log_{group.generator} c (c = 0 left out)" if group.discrete_log else ""),
                x_title="log c" if group.discrete_log else "output c",
            ),
            width="stretch",
        )
    if view.note and not group.discrete_log:
        st.caption("Key frequencies and their waves describe the addition circuit; see the note above.")
    if group.discrete_log and label_column is None:
        st.caption("The answer is 0 (an operand is 0): it has no log, so no frequency contributes to it.")
    # Every block's pattern, first to last (one chart for a 1-layer model, as always).
    for layer in range(view.n_layers):
        of_layer = f" in layer {layer}" if view.n_layers > 1 else ""
        st.altair_chart(
            charts.attention_chart(
                attention_at(view.params, view.a, view.b, view.arch, layer),
                a=view.a,
                b=view.b,
                title=f"Attention from the '=' position{of_layer} for ({view.a}, {view.b})",
                subtitle="one bar per head: how much it reads from a, from b and from '='"
                + ("; in later layers these positions hold what earlier layers wrote there" if layer else ""),
            ),
            width="stretch",
        )
