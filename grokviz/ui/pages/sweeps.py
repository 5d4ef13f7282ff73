"""The Sweeps page: every member of a sweep on one grid, coloured by outcome (never fit, memorised only,
grokked, with the step), and any member opened as the current run. It ignores the step and (a, b).
"""

from __future__ import annotations

import streamlit as st

from grokviz.storage import sweeps
from grokviz.ui import catalog, charts, loaders, navigation
from grokviz.ui.charts import cliff as cliff_charts
from grokviz.ui.views import cliff as cliff_views
from grokviz.ui.views import sweeps as sweep_views

FIRST_TAB = "Training"  # where an opened member is shown
LIVE_SECONDS = 4.0  # how often a sweep still being trained is checked for new log rows


def open_member(key: str, family: str = "modular") -> None:
    """Button callback (runs before the rerun, so it may set the run picker): open a sweep member
    on its family's page (the explorer, on its Training tab; the Adder page), at its last checkpoint."""
    name = navigation.page_name(family)
    spec = navigation.PAGES[name]
    st.session_state[spec.run_param] = key
    st.session_state.pop("step" if name == "explore" else f"{spec.run_param.removesuffix('run')}step", None)
    if name == "explore":
        st.session_state["tab"] = FIRST_TAB
    st.session_state["_open_explorer"] = name


CLIFF_KEY = "sweep_cliff"  # the cliff chart's selection
OPENED_KEY = "_sweep_cliff_opened"  # the member the last click opened


def _follow(sweep: sweeps.Sweep, seen: tuple) -> None:
    """A sweep still being trained: check its members' logs and rerun the page when one changes."""

    @st.fragment(run_every=LIVE_SECONDS)
    def watch_sweep() -> None:
        if tuple(catalog.file_mtime(m.path / "log.csv") for m in sweep.members) != seen:
            st.rerun()
        st.caption(":green[●] training: this page follows the sweep as its members' logs land")

    watch_sweep()


def render() -> None:
    """The sweeps under the runs folder, and a member opened as the explorer's run."""
    target = st.session_state.pop("_open_explorer", None)
    if target:
        st.switch_page(navigation.page(target if isinstance(target, str) else "explore"))
    root = catalog.runs_root()
    st.header("Sweeps")
    # The runs the explorer offers: a member opens only if it is one of them.
    runs = catalog.discover_runs(root, st.session_state.get("folder"), catalog.base_dir())
    found, sweep_problems = sweeps.list_sweeps(root)
    for problem in sweep_problems:
        st.warning(problem, icon=":material/warning:")
    if not found:
        st.info(
            f"No sweeps in {root}. Train one with `grokviz ensemble --out checkpoints/NAME "
            "--weight-decay 0.3,1,3 --frac-train 0.2,0.4,0.6`."
        )
    else:
        by_name = {s.name: s for s in found}
        if st.session_state.get("sweep") not in by_name:
            st.session_state.pop("sweep", None)
        sweep = by_name[st.selectbox("Sweep", list(by_name), key="sweep", bind="query-params")]
        logs_signature = tuple(catalog.file_mtime(m.path / "log.csv") for m in sweep.members)
        table = loaders.sweep_outcomes(str(sweep.path), logs_signature)
        table, swept = sweep_views.with_size_axis(table, sweep.swept_axes() or ["seed"])
        x_default = "frac_train" if "frac_train" in swept else swept[0]
        y_choices = [a for a in swept if a != x_default]
        y_default = next((a for a in ("weight_decay", "seed") if a in y_choices), y_choices[0] if y_choices else None)
        controls = st.columns(4)
        x_axis = controls[0].selectbox("Across", swept, index=swept.index(x_default), key="sweep_x")
        y_options = [a for a in swept if a != x_axis]
        y_axis = (
            controls[1].selectbox(
                "Down", y_options, index=y_options.index(y_default) if y_default in y_options else 0, key="sweep_y"
            )
            if y_options
            else None
        )
        fixed = {}
        for column, axis in zip(controls[2:], [a for a in swept if a not in (x_axis, y_axis)]):
            fixed[axis] = column.selectbox(axis, sweep_views.axis_order(table[axis]), key=f"sweep_fix_{axis}")
        grid = sweep_views.sweep_grid(table, x_axis, y_axis, fixed)
        counts = table["outcome"].value_counts()
        measure = "validation exact match" if sweep.family == "digits" else "test accuracy"
        st.caption(
            f"{len(table)} members: "
            + ", ".join(
                f"{counts.get(o, 0)} {o}"
                for o in (*sweeps.OUTCOMES, *sweeps.LIVE_OUTCOMES)
                if o in counts or o in sweeps.OUTCOMES
            )
            + f". Numbers are the first logged step with {measure} >= {sweeps.THRESHOLD:.0%}."
        )
        if table["outcome"].isin(sweeps.LIVE_OUTCOMES).any():
            _follow(sweep, logs_signature)
        st.altair_chart(
            charts.sweep_grid(
                grid,
                x_title=x_axis,
                y_title=y_axis,
                title=f"{sweep.name}: outcome of every member",
                subtitle="grokked: the number is the step test accuracy reached 99%; memorised only: train did, test never; never fit",
                x_order=sweep_views.axis_order(grid["x"]),
                y_order=sweep_views.axis_order(grid["y"]),
                cell=95 if x_axis == sweep_views.SIZE_AXIS else 70,  # room for '762: d6/24'
            ),
            width="content",
        )
        openable = {
            catalog.run_key(sweep.path / name, catalog.base_dir()): name
            for name in grid["member"]
            if catalog.run_key(sweep.path / name, catalog.base_dir()) in runs.runs
        }
        if cliff_views.has_cliff(table):
            _cliff(sweep, table, runs)
        if openable:
            outcome_of = dict(zip(table["member"], zip(table["outcome"], table["grok_step"])))

            def member_label(key: str) -> str:
                name = openable[key]
                outcome, grok_step = outcome_of[name]
                return f"{name}: {outcome}" + (f" at step {int(grok_step):,}" if outcome == "grokked" else "")

            left, right = st.columns([3, 1])
            chosen_member = left.selectbox("Member", list(openable), format_func=member_label, key="sweep_member")
            right.button(
                "Open this member",
                icon=":material/open_in_new:",
                on_click=open_member,
                args=(chosen_member, sweep.family),
                help="Opens it on its page (the explorer's Training tab; an adder on the Adder page).",
            )
        with st.expander("All members"):
            st.dataframe(
                table.drop(columns=["problem"] if table["problem"].isna().all() else []),
                hide_index=True,
                width="stretch",
            )


def _cliff(sweep: sweeps.Sweep, table, runs) -> None:
    """The parameter cliff: every member's final accuracy against its parameter count; a click opens it."""
    adder = sweep.family == "digits"
    accuracy = "final validation exact match" if adder else "final test accuracy"
    points = cliff_views.cliff_points(table)
    st.subheader("Parameter cliff")
    st.caption(
        f"One point per member: its {accuracy} against its parameter count (one column per count, in order),"
        " coloured by outcome; the members of one size stand side by side, ordered by their other settings, then"
        " seed. The numbers above"
        f" a size are the first logged steps with {'exact match' if adder else 'test accuracy'}"
        f" >= {sweeps.THRESHOLD:.0%} (from its first grokked member to its last). Hover a point for the member's settings; click it to open the member."
    )
    keys = {
        name: catalog.run_key(sweep.path / name, catalog.base_dir())
        for name in points["member"]
        if catalog.run_key(sweep.path / name, catalog.base_dir()) in runs.runs
    }
    event = st.altair_chart(
        cliff_charts.cliff_chart(points, title=f"{sweep.name}: final accuracy against size", accuracy_title=accuracy),
        on_select="rerun",
        selection_mode=cliff_charts.SELECTION,
        key=CLIFF_KEY,
        width="content",
    )
    picked = cliff_views.picked_member(event)
    # Open a member once per click: the selection stays set on the reruns that follow.
    if picked is None:
        st.session_state.pop(OPENED_KEY, None)
    elif picked in keys and st.session_state.get(OPENED_KEY) != picked:
        st.session_state[OPENED_KEY] = picked
        open_member(keys[picked], sweep.family)
        st.rerun()


if __name__ == "__main__":  # run by st.navigation as the Sweeps page (grokviz.ui.navigation)
    render()
