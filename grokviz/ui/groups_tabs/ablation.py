"""The Groups page's Ablation tab: remove (or keep only) chosen irreps at the logits, the embedding or
the neurons, and watch accuracy and loss change, at this step and over the whole run. The irreps,
mode and site are in the URL; the default irreps are the key irreps of the last checkpoint."""

from __future__ import annotations

import streamlit as st

from grokviz.analysis.irreps import irreps
from grokviz.ui import groups_loaders as gl
from grokviz.ui.charts.base import SPLIT_COLORS
from grokviz.ui.charts.training import curves
from grokviz.ui.groups_tabs.state import GroupView
from grokviz.ui.tabs.ablation import MODE_LABELS  # the explorer's modes: the same words in the URL
from grokviz.ui.views import groups as views

SITE_HELP = {
    "logits": "per output, project the logits over (a, b) off / onto the functions of a·b in the irreps' span",
    "embedding": "project W_E's token rows off / onto the irreps' functions of the token, then run the model",
    "neurons": "project each neuron's activations over (a, b) off / onto the blocks (ρ, 1), (1, ρ), (ρ, ρ) of its "
    "2-D group Fourier transform, then run the rest of the model on them",
}


def render(view: GroupView) -> None:
    """The non-trivial irreps are on offer; a stored choice of another group's irreps is dropped."""
    group = view.group
    trivial = views.trivial_label(group)
    options = [irrep.label for irrep in irreps(group) if irrep.label != trivial]
    default = [label for label in view.last_key if label in options]
    stored = st.session_state.get("group_irreps")
    if stored is not None and any(label not in options for label in stored):
        st.session_state["group_irreps"] = [label for label in stored if label in options]  # another group's irreps
    controls = st.columns([3, 1.2, 1.2])
    chosen = controls[0].multiselect(
        "Irreps",
        options,
        default=default,
        key="group_irreps",
        bind="query-params",
        help="Default: the key irreps of the last checkpoint.",
    )
    mode = controls[1].radio(
        "Mode", list(MODE_LABELS), format_func=MODE_LABELS.get, key="group_mode", bind="query-params"
    )
    site = controls[2].radio(
        "Site",
        list(SITE_HELP),
        key="group_site",
        bind="query-params",
        help="; ".join(f"{k}: {v}" for k, v in SITE_HELP.items()),
    )
    names = views.names(group)
    st.caption(
        f"Key irreps of the last checkpoint (step {view.steps[-1]:,}): "
        + (", ".join(names[label] for label in default) or "none yet")
        + "."
    )
    if not chosen:
        st.info("Choose at least one irrep to ablate.")
        return
    before = view.info["metrics"]
    after = gl.ablated(view.path, view.step, view.mtime(), tuple(chosen), mode, site)
    what = f"{MODE_LABELS[mode]} {', '.join(names[label] for label in chosen)} at the {site}"
    st.caption(f"Step {view.step:,}: {what} ({SITE_HELP[site]}).")
    for column, card in zip(st.columns(4), views.metric_cards(before, after)):
        column.metric(card["label"], card["value"], card["delta"], delta_color=card["color"])
    if st.checkbox(
        "Over the run: the same ablation at every checkpoint",
        key="group_over_run",
        bind="query-params",
        help="Runs the ablation on every saved checkpoint (cached; the neurons site takes longest).",
    ):
        _over_run(view, tuple(chosen), mode, site, what)


def _over_run(view: GroupView, chosen: tuple[str, ...], mode: str, site: str, what: str) -> None:
    """Test accuracy as trained and after the ablation at every checkpoint (each point cached)."""
    key = tuple(view.last_key)
    history = view.over_run(
        "groups_ablation",
        lambda s, m: (
            gl.progress_point(view.path, s, m, key)["metrics"],
            gl.ablated(view.path, s, m, chosen, mode, site),
        ),
        "Ablating every checkpoint",
        extra=(chosen, mode, site),
    )
    st.altair_chart(
        curves(
            views.ablation_history_frame(history),
            title="Test accuracy over the run",
            subtitle=f"as trained and after the ablation ({what})",
            y_title="test accuracy",
            step=view.step,
            y_format=".0%",
            colors={"as trained": SPLIT_COLORS["test"], "after the ablation": "#9467bd"},
            points=len(view.steps) <= 30,
        ),
        width="stretch",
    )
