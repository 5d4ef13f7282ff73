"""The Groups page's Prediction & attention tab: for one pair (a, b), the logits over every answer
c, each irrep's part of the right answer's logit through its character χ_ρ(a·b·c⁻¹)
(``grokviz.analysis.groups_probe.character_readout``), the key irreps' waves over c, and where the
'=' position attends."""

from __future__ import annotations

import pandas as pd
import streamlit as st
import torch

from grokviz.analysis.attention import attention_pattern
from grokviz.analysis.groups_probe import character_readout
from grokviz.ui import groups_loaders as gl
from grokviz.ui import loaders
from grokviz.ui.charts import groups as charts
from grokviz.ui.groups_tabs.state import GroupView
from grokviz.ui.views import groups as views
from grokviz.ui.widgets import clamp_state


def render(view: GroupView) -> None:
    """(a, b) are the Neurons tab's (one pair, in the URL as group_a, group_b)."""
    group = view.group
    n = group.order
    for name in ("group_a", "group_b"):
        clamp_state(name, 0, n - 1)
    cols = st.columns(4)
    a = int(cols[0].number_input("a (token)", 0, n - 1, min(1, n - 1), key="group_a", bind="query-params"))
    b = int(cols[1].number_input("b (token)", 0, n - 1, min(2, n - 1), key="group_b", bind="query-params"))
    names = group.labels()
    logits, _ = gl.all_pairs(view.path, view.step, view.mtime())
    readout = character_readout(group, logits[a * n + b], a, b)
    right = (
        "right" if readout.answer == readout.label else f"wrong: it answers {readout.answer} = {names[readout.answer]}"
    )
    st.markdown(
        f"**{a}: {names[a]} ∘ {b}: {names[b]} = {readout.label}: {names[readout.label]}** (the model is {right})"
    )
    key = gl.key_irreps(view.path, view.step, view.mtime())
    irrep_names = views.names(group)
    share = pd.DataFrame(
        {
            "irrep": list(readout.contributions),
            "name": [irrep_names[label] for label in readout.contributions],
            "order": range(len(readout.contributions)),
            "value": list(readout.contributions.values()),
            "key": [label in key for label in readout.contributions],
        }
    )
    left, right_col = st.columns(2)
    left.altair_chart(
        charts.irrep_bars(
            share,
            title="Each irrep's part of the right answer's logit",
            subtitle=f"α_ρ χ_ρ(e) = α_ρ d_ρ; the mean logit {readout.mean:.3g} is the rest's baseline",
            y_title="logit",
            y_format="",
        ),
        width="stretch",
    )
    right_col.altair_chart(charts.logit_bars(readout, names), width="stretch")
    if key:
        waves = pd.DataFrame(
            [
                {"c": c, "series": irrep_names[label], "value": float(readout.components[label][c])}
                for label in key
                for c in range(n)
            ]
        )
        st.altair_chart(charts.readout_waves(waves, readout.label), width="stretch")
    st.caption(
        "L(c) = mean + Σ_ρ α_ρ χ_ρ(a·b·c⁻¹) + the rest: each irrep's character of a·b·c⁻¹ peaks at c = a·b, "
        "where it is its dimension, so the irreps the model uses add up at the right answer and cancel elsewhere."
    )
    params = loaders.load_params(view.path, view.step, view.mtime())
    pattern = attention_pattern(params, torch.tensor([a]), torch.tensor([b]), view.run.config.architecture)[0]
    heads = pd.DataFrame(
        [
            {"head": f"head {h}", "key": key_name, "weight": float(pattern[h, k])}
            for h in range(pattern.shape[0])
            for k, key_name in enumerate(("a", "b", "="))
        ]
    )
    st.altair_chart(charts.attention_heads(heads), width="stretch")
