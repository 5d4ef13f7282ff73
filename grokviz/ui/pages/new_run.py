"""The New run page (``/new``): the jobs list (every run being written under the runs folder, with
Stop, Resume and Extend), then a form over every field of a family's config, its presets, the
memory and time estimates, and "Start training".

The app never trains in its own process: "Start training" launches the family's train command as a
process of its own (``grokviz.storage.jobs``), which outlives this page, the session and the app.
The form's shaping and its one validation path are ``grokviz.ui.views.new_run``.
"""

from __future__ import annotations

import time

import streamlit as st

from grokviz.errors import GrokvizError
from grokviz.storage import jobs
from grokviz.storage.runs import RUN_FILE
from grokviz.ui import catalog, navigation
from grokviz.ui.views import new_run
from grokviz.ui.widgets import show_error

REFRESH_SECONDS = 2.0  # how often the jobs list is read again
RUN_JSON_WAIT_S = 30.0  # how long "Start training" waits for the new run to appear before linking it
OPEN_GROUPS = ("Task", "Schedule")  # the form's groups shown open: what a run is, and how long it trains


def render() -> None:
    st.title("New run")
    root = catalog.runs_root()
    if jobs.read_only():
        st.info(
            f"This app is read-only ({jobs.READ_ONLY_ENV} is set): it starts and stops no training. "
            "Train from a terminal with `grokviz train --out checkpoints/NAME`.",
            icon=":material/lock:",
        )
        return
    st.caption(
        f"Trainings run as processes of their own, writing into {root}: they go on when this page is closed "
        "or the app restarts. The explorer follows a run while it trains."
    )
    jobs_list(root)
    continue_a_run(root)
    st.divider()
    form(root)


def jobs_list(root) -> None:
    @st.fragment(run_every=REFRESH_SECONDS)
    def listing() -> None:
        st.subheader("Jobs")
        try:
            found = jobs.list_jobs(root)
        except OSError as exc:
            show_error(exc)
            return
        if not found:
            st.caption("No run is being written under the runs folder.")
        for status in found:
            job_row(root, status)

    listing()


STATE_ICONS = {
    "running": ":green[●]",
    "starting": ":orange[●]",
    "ending": ":orange[●]",
    "finished": ":blue[●]",
    "stopped": ":gray[●]",
    "failed": ":red[●]",
}


def job_row(root, status: jobs.JobStatus) -> None:
    with st.container(border=True, key=f"job_{status.name}"):
        left, right = st.columns([3, 2])
        unit = f"{status.members} members, member-step" if status.members else "step"
        progress = f"{unit} {status.step:,}" if status.step is not None else "no log yet"
        if status.total is not None:
            progress += f" of {status.total:,}"
        speed = ""
        if status.steps_per_second:
            speed = f", {status.steps_per_second:.0f} steps/s"
            if status.seconds_left is not None:
                speed += f", {new_run.duration_text(status.seconds_left)} left"
        left.markdown(f"{STATE_ICONS.get(status.state, '')} **{status.name}**: {status.state}, {progress}{speed}")
        if status.total and status.step is not None:
            left.progress(min(1.0, status.step / status.total))
        if status.holder:
            left.caption(f"Written by {status.holder}")
        if status.error:
            left.error(status.error, icon=":material/error:")
        family = jobs.run_family(status.run)
        if family is not None and status.run.parent.resolve() == root.resolve():
            navigation.link_to_run(left, family, status.name, f"Open {status.name}")
        actions(root, status, right)


def continue_a_run(root) -> None:
    """Resume or extend any run of the runs folder that no one is writing (one trained in a terminal,
    a bundled one), with the same buttons as a job's."""
    names = jobs.idle_runs(root)
    if not names:
        return
    with st.expander("Resume or extend another run", icon=":material/update:"):
        name = st.selectbox("Run", names, key="continue_run", help=f"The runs in {root} that no one is writing")
        status = jobs.job_status(name, root / name, None)
        if status.active:  # started since the list was read
            st.caption(f"{name} is being written: see the jobs above.")
            return
        st.caption(f"{name}: {status.state}, step {status.step or 0:,} of {status.total or 0:,}")
        actions(root, status, st, where="other")


def actions(root, status: jobs.JobStatus, container, where: str = "job") -> None:
    """Stop a running job; resume, extend or forget one that ended (``where`` keeps the widget keys
    of the jobs list and of "Resume or extend another run" apart)."""
    key = f"{where}_{status.name}"
    if status.active:
        if container.button("Stop", key=f"stop_{key}", icon=":material/stop:", help="Stops at the next step and saves"):
            _act(lambda: jobs.stop(status), f"Asked {status.name} to stop; it saves its last step first.")
        return
    if status.state == "finished" and status.total is not None:
        why = jobs.not_extendable(status.run)
        extendable = why is None
        steps = container.number_input(
            "Extend to N steps",
            min_value=(status.step or 0) + 1,
            value=max(status.total * 2, (status.step or 0) + 1),
            step=1000,
            key=f"extend_steps_{key}",
            disabled=not extendable,
            help=why or "Continue this run to N steps (--resume --steps N): the same run as one trained for N steps.",
        )
        if container.button("Extend", key=f"extend_{key}", icon=":material/update:", disabled=not extendable):
            _act(lambda: jobs.resume(root, status.run, int(steps)), f"Extending {status.name} to {int(steps):,} steps.")
    elif status.state in ("stopped", "failed") and status.step is not None:
        if container.button("Resume", key=f"resume_{key}", icon=":material/play_arrow:", help="--resume"):
            _act(lambda: jobs.resume(root, status.run), f"Resuming {status.name}.")
    if status.job is not None and container.button(
        "Forget", key=f"forget_{key}", icon=":material/close:", help="Remove from this list (the run is kept)"
    ):
        _act(lambda: jobs.forget(root, status), f"{status.name} removed from the list.")


def _act(action, done: str) -> None:
    try:
        action()
    except GrokvizError as exc:
        show_error(exc)
        return
    st.toast(done)
    st.rerun()


def form(root) -> None:
    st.subheader("Start a run")
    names = list(new_run.PRESETS)
    preset_name = st.selectbox(
        "Preset", names, key="new_preset", on_change=_apply_preset, help="Fills in every field below"
    )
    preset = new_run.PRESETS[preset_name]
    _apply_preset(only_missing=True)  # a first visit, or back from another page (which drops widget values)
    st.caption(preset.about)
    family = preset.family
    name = st.text_input("Run name", key="new_name", help=f"A new folder in {root}: {jobs.NAME_RULE}")
    values = {}
    for title, group in new_run.form_fields(family).items():
        with st.expander(title, expanded=title in OPEN_GROUPS):
            columns = st.columns(3)
            for index, field_ in enumerate(group):
                values[field_.name] = _widget(columns[index % 3], family, field_)
    cfg, problems = new_run.build_config(family, values)
    for problem in problems:
        st.error(problem, icon=":material/error:")
    if cfg is not None:
        seconds = new_run.seconds_estimate(cfg)
        st.markdown(
            f"**Time**: {new_run.duration_text(seconds)} on this machine (a 2-core CPU, one thread), "
            f"for {cfg.steps:,} steps.  \n**Memory**: {new_run.memory_text(cfg)}."
        )
        try:
            note = new_run.memory_check(cfg)
        except GrokvizError as exc:  # what the trainer would say before allocating anything
            show_error(exc)
            cfg = None
        else:
            if note:
                st.warning(note, icon=":material/memory:")
    try:
        limit = jobs.max_jobs()
    except GrokvizError as exc:
        show_error(exc)
        return
    if st.button("Start training", type="primary", icon=":material/rocket_launch:", disabled=cfg is None):
        try:
            job = jobs.start(root, name.strip(), cfg)
        except GrokvizError as exc:
            show_error(exc)
            return
        st.session_state["new_started"] = job.name
        _wait_for_run(root / job.name)
        st.rerun()
    started = st.session_state.get("new_started")
    if started:
        st.success(f"Started {started}. It trains on while you explore.", icon=":material/rocket_launch:")
        navigation.link_to_run(st, family, started, f"Follow {started} live")
    st.caption(f"At most {limit} training(s) started from this app at once ({jobs.MAX_JOBS_ENV}).")


def _widget(column, family: str, field_: new_run.FormField):
    key = f"new_{family}_{field_.name}"
    if field_.kind == "bool":
        return column.checkbox(field_.flag, key=key, help=field_.help)
    if field_.choices:
        return column.selectbox(field_.flag, field_.choices, key=key, help=field_.help)
    placeholder = "unset" if field_.optional else None
    return column.text_input(field_.flag, key=key, help=field_.help, placeholder=placeholder)


def _apply_preset(only_missing: bool = False) -> None:
    """Fill every widget of the preset's family with the preset's values and offer its run name
    (``only_missing``: only the widgets that have no value yet)."""
    preset = new_run.PRESETS[st.session_state.get("new_preset", next(iter(new_run.PRESETS)))]
    values = {f"new_{preset.family}_{name}": value for name, value in new_run.initial_values(preset).items()}
    for key, value in {**values, "new_name": preset.name}.items():
        if not (only_missing and key in st.session_state):
            st.session_state[key] = value


def _wait_for_run(run) -> None:
    """Wait (with a progress bar) until the trainer has written run.json, so the link opens the run."""
    bar = st.progress(0.0, text="Starting the trainer (importing PyTorch)")
    start = time.monotonic()
    while time.monotonic() - start < RUN_JSON_WAIT_S and not (run / RUN_FILE).is_file():
        time.sleep(0.25)
        bar.progress(min(1.0, (time.monotonic() - start) / RUN_JSON_WAIT_S), text="Starting the trainer")
    bar.empty()


if __name__ == "__main__":  # run by st.navigation (grokviz.ui.navigation)
    render()
