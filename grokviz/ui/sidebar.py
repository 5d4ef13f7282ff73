"""The sidebar of the run explorer: which run (the shared picker, ``grokviz.ui.run_picker``, with the
explorer's texts and keys in :data:`EXPLORER`), which step (with Play and live watching), which (a, b).

Returns a :class:`Choice`; every widget whose value makes the view is bound to the URL, except the
typed folder (a link must not point the server at folders outside its runs root).
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from grokviz.core.config import Config
from grokviz.storage.lock import holder
from grokviz.storage.runs import Run
from grokviz.ui import catalog, run_picker
from grokviz.ui.views import config, stepping
from grokviz.ui.widgets import clamp_state

PLAY_SECONDS = 1.0  # one saved step per second while playing
LIVE_SECONDS = 4.0  # how often a run that is still training is checked for new checkpoints


@dataclass(frozen=True)
class Choice:
    """What the sidebar chose: the runs on offer, the run, its loadable steps, the step and (a, b)."""

    runs: catalog.RunChoices
    run: Run
    steps: list[int]
    signature: tuple
    step: int
    a: int
    b: int


EXPLORER = run_picker.Picker(
    family=Config.family,
    what="the run explorer",
    title="grokviz",
    caption="Grokking in small transformers on modular arithmetic (Nanda et al. 2023; Power et al. 2022).",
    empty_text=(
        "No runs found in {root}.\n\nTrain one with `{train} --out checkpoints/NAME` "
        "(the reference recipe: about 15 minutes on a 2-core CPU), start `grokviz app` inside a clone of grokviz to open "
        "its bundled runs, or set `GROKVIZ_RUNS` to a folder of runs."
    ),
    default_run=catalog.DEFAULT_RUN,
    # Runs of every family are listed (a typed folder may hold any); one of another is refused with
    # a link to its page.
    offer_others=True,
)


def render() -> Choice | None:
    """Draw the sidebar; None (after saying why) when there is nothing to show yet."""
    main_area = st.container()  # the page itself, for a message when there is nothing to show
    with st.sidebar:
        picked = run_picker.pick_run(EXPLORER, main_area)
        if picked is None:
            return None
        choices, run = picked
        cfg = run.config
        depth = f"{cfg.n_layers} layers, " if cfg.n_layers > 1 else ""
        st.caption(f"Model: {depth}{cfg.architecture.describe()}")
        with st.expander("Config", icon=":material/settings:"):
            st.dataframe(config.config_table(cfg), hide_index=True, width="stretch")
            st.caption(f"Folder: `{run.path}`  \nWritten by: {run.source}")

        steps = run.steps()  # only checkpoints that load; the others are in run.problems
        skipped = list(run.problems)
        if skipped:
            with st.expander(
                f"{len(skipped)} file(s) of this run skipped", icon=":material/warning:", expanded=len(skipped) <= 3
            ):
                for problem in skipped:
                    st.warning(problem)
        signature = catalog.live_signature(run, steps)
        logged = run.log()
        finished = len(logged) > 0 and int(logged["step"].iloc[-1]) >= cfg.steps
        if not finished and (not steps or steps[-1] < cfg.steps):
            _watch(run, signature)
        if not steps:
            if finished:  # e.g. a bundled sweep member kept as its log alone
                st.info(
                    f"{run.path} has no checkpoints: its log reaches step {cfg.steps:,}, but no weights were kept "
                    "(a bundled sweep keeps some members' logs only). Its curves are on the Sweeps page."
                )
            else:
                st.info(f"{run.path} has no checkpoints yet; this page updates when the first one lands.")
            return None
        step = _step_slider(steps)
        a, b = _input_pair(cfg.p)
    return Choice(choices, run, steps, signature, step, a, b)


def _watch(run: Run, signature: tuple) -> None:
    """A run that has not reached its last step: say whether a trainer is writing it (and who, from
    its lock, whatever started it), check for new checkpoints and rerun when they land."""

    @st.fragment(run_every=LIVE_SECONDS)
    def watch_run(seen=signature) -> None:
        now = catalog.live_signature(run)
        # Only the timed calls compare: the first call is inside the full run, which has just read
        # the run, and a run that logs many rows a second would otherwise rerun it without end.
        armed = st.session_state.get("_watch_armed", False)
        st.session_state["_watch_armed"] = True
        if armed and now != seen:
            old_steps, new_steps = seen[0], now[0]
            if new_steps and (not old_steps or st.session_state.get("step") in (None, old_steps[-1])):
                st.session_state["step"] = new_steps[-1]  # follow the newest checkpoint
            st.rerun()
        last = f"step {now[0][-1]:,}" if now[0] else "none yet"
        writer = holder(run.path)
        if writer:
            st.caption(f":green[●] training: {len(now[0])} checkpoints, last {last} of {run.config.steps:,}")
            st.caption(f"Written by {writer}")
        else:
            st.caption(
                f":gray[●] not training: {len(now[0])} checkpoints, last {last} of {run.config.steps:,}; "
                "resume it on the New run page or with `--resume`"
            )

    st.session_state["_watch_armed"] = False  # a full run: its fragment's first call only draws
    watch_run()


def _step_slider(steps: list[int]) -> int:
    """The step slider over the saved checkpoints, and Play, which moves it one step a second."""

    def toggle_play() -> None:
        playing = not st.session_state.get("playing", False)
        st.session_state["playing"] = playing
        if playing and st.session_state.get("step") == steps[-1]:
            st.session_state["step"] = steps[0]  # play from the start

    step = st.select_slider(
        "Step",
        options=steps,
        value=steps[-1],
        key="step",
        bind="query-params",
        help="The saved checkpoints of this run (dense where things happen).",
    )
    playing = st.session_state.get("playing", False)
    st.button(
        "Pause" if playing else "Play",
        icon=":material/pause:" if playing else ":material/play_arrow:",
        on_click=toggle_play,
        help=f"Step through the saved checkpoints, one every {PLAY_SECONDS:g} s.",
    )
    if playing:

        @st.fragment(run_every=PLAY_SECONDS)
        def advance() -> None:
            # The first call is the one inside the full run: arm the timer. Each timed call moves on.
            if not st.session_state.get("_play_armed"):
                st.session_state["_play_armed"] = True
                return
            st.session_state["_play_armed"] = False
            following = stepping.next_step(steps, st.session_state.get("step", steps[-1]))
            if following is None:
                st.session_state["playing"] = False
            else:
                st.session_state["step"] = following
            st.rerun()

        st.session_state["_play_armed"] = False
        advance()
    return step


def _input_pair(p: int) -> tuple[int, int]:
    st.subheader("Input (a, b)")
    clamp_state("a", 0, p - 1)
    clamp_state("b", 0, p - 1)
    col_a, col_b = st.columns(2)
    # The defaults (5, 17) kept inside Z_p: at p = 13 a default of 17 made Streamlit raise.
    a = int(col_a.number_input("a", 0, p - 1, min(5, p - 1), key="a", bind="query-params"))
    b = int(col_b.number_input("b", 0, p - 1, min(17, p - 1), key="b", bind="query-params"))
    return a, b
