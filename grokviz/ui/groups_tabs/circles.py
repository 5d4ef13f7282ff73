"""The Groups page's Circles tab: the tokens' embeddings drawn in one irrep's plane (a 2-dimensional
irrep: a circle when the model embeds g as ρ(g)), or, for any other irrep, in the top two principal
components of their projection on its span, with why there is no circle in words. The projections
are ``grokviz.ui.views.groups_circles``."""

from __future__ import annotations

import streamlit as st

from grokviz.analysis.irreps import irreps
from grokviz.ui import groups_loaders as gl
from grokviz.ui import loaders
from grokviz.ui.charts import groups as charts
from grokviz.ui.groups_tabs.state import GroupView
from grokviz.ui.views import groups as views
from grokviz.ui.views import groups_circles


def render(view: GroupView) -> None:
    """By default a 2-dimensional key irrep of this step (else any 2-dimensional one, else a key one)."""
    group = view.group
    names = views.names(group)
    trivial = views.trivial_label(group)
    options = [irrep.label for irrep in irreps(group) if irrep.label != trivial]
    two_dim = groups_circles.two_dim_irreps(group)
    key = gl.key_irreps(view.path, view.step, view.mtime())
    preferred = [label for label in key if label in two_dim] or two_dim or key or options
    if st.session_state.get("group_circle") not in (None, *options):
        st.session_state.pop("group_circle")
    cols = st.columns([2, 1])
    label = cols[0].selectbox(
        "Irrep",
        options,
        index=options.index(preferred[0]),
        key="group_circle",
        bind="query-params",
        help="2-dimensional irreps draw a circle; the others a projection (see the caption).",
    )
    show_labels = cols[1].checkbox("Element names on the points", value=group.order <= 30, key="group_circle_labels")
    W_E = loaders.load_params(view.path, view.step, view.mtime())["embed.W_E"].double().numpy()
    st.caption(
        f"2-dimensional irreps of {group.name}: "
        + (", ".join(names[x] for x in two_dim) or "none")
        + f". Key irreps at step {view.step:,}: "
        + (", ".join(names[x] for x in key) or "none yet")
        + "."
    )
    if label in two_dim:
        drawn, chart, caption = _plane(group, W_E, label, names)
    else:
        st.info(groups_circles.no_circle_text(group, label), icon=":material/info:")
        drawn, chart, caption = _projection(group, W_E, label, names)
    st.altair_chart(charts.plane_chart(drawn.frame, labels=show_labels, **chart), width="content")
    st.caption(caption)


def _plane(group, W_E, label: str, names: dict[str, str]) -> tuple[groups_circles.Projection, dict, str]:
    """A 2-dimensional irrep: the tokens in its plane, joined in order of ρ(g)'s angle; (drawn, the
    chart's titles, the caption)."""
    drawn = groups_circles.irrep_plane(group, W_E, label)
    chart = {
        "title": f"The tokens in the plane of {names[label]}",
        "subtitle": f"joined in order of ρ(g)'s angle ({drawn.frame['angle'].round(6).nunique()} distinct angles); "
        f"the plane holds {drawn.share:.1%} of the centred |W_E|²",
        "x_title": "first column, entry 0",
        "y_title": "first column, entry 1",
    }
    caption = (
        "Each token's centred embedding W_E[g] projected onto the plane spanned by W_E's components along the "
        "two functions of ρ's first column, g ↦ ρ(g)₀₀ and g ↦ ρ(g)₁₀ (first axis along the first). A model "
        "that embeds g as the rotation ρ(g) puts g at the angle of ρ(g)'s first column, so the points go round a "
        "circle in that order."
        + (
            " A token whose ρ(g) is a reflection (det −1) has its second column flipped, which moves it off the "
            "rotations' circle when the model's vectors for the two columns are not orthogonal: each kind is "
            "joined on its own."
            if drawn.frame["ring"].nunique() > 1
            else ""
        )
    )
    return drawn, chart, caption


def _projection(group, W_E, label: str, names: dict[str, str]) -> tuple[groups_circles.Projection, dict, str]:
    """Any other irrep: the tokens on the top two principal components of its span, unjoined, coloured by
    conjugacy class while there are few; (drawn, the chart's titles and options, the caption)."""
    drawn = groups_circles.irrep_pca(group, W_E, label)
    n_classes = drawn.frame["group_class"].nunique()
    chart = {
        "title": f"The tokens in {names[label]}'s span: top two principal components",
        "subtitle": f"PC1 {drawn.explained[0]:.0%}, PC2 {drawn.explained[1]:.0%} of the projection; "
        f"ρ's span holds {drawn.share:.1%} of the centred |W_E|²",
        "x_title": "PC1",
        "y_title": "PC2",
        "join": False,
        "color_classes": n_classes <= 12,
    }
    irrep_dim = next(irrep.dim for irrep in irreps(group) if irrep.label == label)
    caption = (
        f"The documented projection: W_E[:{group.order}] (each column a function of the token) projected onto the "
        f"span of ρ's {irrep_dim**2} functions g ↦ ρ(g)ᵢⱼ, and each token's row of that drawn on its top two "
        "principal components. Points coloured by conjugacy class (characters are constant on them)."
        if n_classes <= 12
        else f"The documented projection: W_E[:{group.order}] projected onto the span of ρ's {irrep_dim**2} "
        "functions g ↦ ρ(g)ᵢⱼ, each token's row drawn on its top two principal components."
    )
    return drawn, chart, caption
