"""The Groups page: watch the 1-layer transformer learn composition a∘b in a finite group (a groups run).

Chughtai, Chan & Nanda (2023, *A Toy Model of Universality*) read such a model in the words of the
group's irreducible representations, as the run explorer reads a modular one in frequencies. This
script owns the frame of the page: the run picker (``grokviz.ui.run_picker``, offering groups runs
only; a run of another family is refused in words with a link to its page) and the step slider in
the sidebar; a headline of the step's accuracy and loss; the refusal of a group too large to
analyse; and the tabs, each a module of ``grokviz.ui.groups_tabs`` drawn from one
:class:`~grokviz.ui.groups_tabs.state.GroupView`: the training curves with the character FVE and the
restricted / excluded loss per checkpoint, the spectra of W_E and W_U per irrep, irrep ablations (at
this step and over the run), the neurons' irreps with the probe of one pair (a, b), and the tokens
drawn in an irrep's plane. Its data shaping is ``grokviz.ui.views.groups`` (and ``groups_circles``),
its charts ``grokviz.ui.charts.groups``, its cached loaders ``grokviz.ui.groups_loaders``.
"""

from __future__ import annotations

import streamlit as st

from grokviz.analysis.irreps import irreps
from grokviz.core.groups_config import GroupsConfig
from grokviz.errors import GrokvizError
from grokviz.ui import catalog, run_picker
from grokviz.ui import groups_loaders as gl
from grokviz.ui.groups_tabs import ablation, circles, neurons, prediction, training
from grokviz.ui.groups_tabs import irreps as irreps_tab
from grokviz.ui.groups_tabs.state import GroupView
from grokviz.ui.views import groups as views
from grokviz.ui.widgets import show_error

# Tab label -> the tab module that draws it (each has ``render(view)``).
TABS = {
    "Training": training,
    "Irreps": irreps_tab,
    "Ablation": ablation,
    "Neurons": neurons,
    "Prediction & attention": prediction,
    "Circles": circles,
}
MAX_ORDER = 257  # as the explorer's p: the all-pairs logits grow as order³, the activations as order² · d_mlp

GROUPS = run_picker.Picker(
    family=GroupsConfig.family,
    what="the Groups page",
    title="grokviz: groups",
    caption=(
        "Composition a∘b in a finite group (S_n, A_n, D_n, Z_n), read in irreducible representations where the "
        'explorer reads frequencies: Chughtai, Chan & Nanda (2023), "A Toy Model of Universality".'
    ),
    key_prefix="group_",
    run_label="Group run",
    empty_header="No group runs",
    folder_help="Group runs are read from {root} and from this folder.",
    empty_text=(
        "No finite-group runs in {root}. Train one with `{train} --group S5 --out checkpoints/NAME` "
        "(or a small group first: `--group D4 --steps 3000`), or open a clone of grokviz, which bundles "
        "checkpoints/s5."
    ),
    default_run="s5",
)


def pick_run():
    """(run, steps, step) from the sidebar, or None after a message on the page."""
    return run_picker.pick_run_and_step(
        GROUPS, "group_step", "The saved checkpoints of this run (dense where things happen)."
    )


def render() -> None:
    picked = pick_run()
    if picked is None:
        return
    run, steps, step = picked
    group = run.config.finite_group
    all_irreps = irreps(group)
    st.header(f"{run.name}: composition in {group.name} (order {group.order}, {len(all_irreps)} irreps)")
    if group.order > MAX_ORDER:
        st.info(
            f"{group.name} has {group.order} elements: the analysis of all {group.order**2:,} pairs is refused above "
            f"order {MAX_ORDER} (it would not fit in memory). The training log still shows.",
            icon=":material/memory:",
        )
        training.draw_log(run, step)
        return
    try:
        info = gl.checkpoint(str(run.path), step, catalog.checkpoint_mtime(run, step))
    except GrokvizError as exc:
        show_error(exc)
        return
    view = GroupView(run, steps, step, group, info)
    headline(view)
    tabs = st.tabs(list(TABS), key="group_tab", bind="query-params")
    for tab, page in zip(tabs, TABS.values()):
        with tab:
            if tab.open:  # tabs are lazy: only the one shown is computed
                try:
                    page.render(view)
                except (GrokvizError, ValueError) as exc:
                    show_error(exc)


def headline(view: GroupView) -> None:
    """The step's accuracy and loss per split, where the step stands, and what they are measured on."""
    group, steps, step = view.group, view.steps, view.step
    metrics = view.info["metrics"]
    cols = st.columns(5)
    cols[0].metric("Train accuracy", f"{metrics['train_accuracy']:.1%}")
    cols[1].metric("Test accuracy", f"{metrics['test_accuracy']:.1%}")
    cols[2].metric("Train loss", f"{metrics['train_loss']:.3g}")
    cols[3].metric("Test loss", f"{metrics['test_loss']:.3g}")
    cols[4].metric(
        "Step", f"{step:,}", help=f"checkpoint {steps.index(step) + 1} of {len(steps)}; {view.run.config.steps:,} steps"
    )
    data = gl.dataset(view.path)
    listed = [views.irrep_name(irrep.label, irrep.dim) for irrep in irreps(group)]
    if len(listed) > 12:  # D_n and Z_n of large n: dozens of irreps
        listed = [*listed[:12], f"... ({len(listed)} in all)"]
    st.caption(
        f"At this checkpoint, over the run's own split ({len(data.train_idx):,} train and {len(data.test_idx):,} "
        f"test pairs of {group.order**2:,}). Irreps: " + ", ".join(listed) + "."
    )


if __name__ == "__main__":  # run by st.navigation as the Groups page (grokviz.ui.navigation)
    render()
