"""The run picker of the pages that open one run of a family (the run explorer, the Adder page): the
page's title and caption, the typed folder, the runs found, and a selectbox bound to the URL.

A page says what it shows and opens in a :class:`Picker`; a run of another family is refused with
``grokviz.core.families.wrong_family_message`` and a link to the page of that run's family
(``grokviz.ui.navigation.page_for``), so no page names another family. The typed folder is
deliberately not in the URL: a link must not point the server at folders outside its runs root.
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from grokviz.core.families import FAMILIES, wrong_family_message
from grokviz.storage.runs import Run
from grokviz.ui import catalog, navigation


@dataclass(frozen=True)
class Picker:
    """What one page's picker shows and offers. Texts with ``{root}`` name the runs folder, and the
    empty-state text's ``{train}`` the command that trains the family."""

    family: str  # the family the page opens (a key of grokviz.core.families.FAMILIES)
    what: str  # the page in words, for a refusal: "the run explorer needs a modular-arithmetic run"
    title: str
    caption: str
    empty_text: str  # what to do when the page has no run to open
    key_prefix: str = ""  # of the widget keys "<prefix>folder" and "<prefix>run": in URLs and tests
    run_label: str = "Run"
    empty_header: str = "No runs yet"
    folder_label: str = "Another folder of runs"
    folder_help: str = "Runs are read from {root} and from this folder (a folder of run folders, or one run folder)."
    default_run: str | None = None  # the name of a run in the runs root to open first (else the first)
    # True: runs of every family are listed and the chosen one is refused if it is of another (the
    # explorer). False: only the family's runs are listed, and a typed folder or a URL naming a run
    # of another family is refused above the page, which goes on with its own runs (the Adder page).
    offer_others: bool = False

    @property
    def folder_key(self) -> str:
        return f"{self.key_prefix}folder"

    @property
    def run_key(self) -> str:
        return f"{self.key_prefix}run"


def pick_run(picker: Picker, main_area) -> tuple[catalog.RunChoices, Run] | None:
    """Draw the picker (call it inside ``st.sidebar``); messages go to ``main_area``, the page.

    Returns the runs found and the chosen run; None, after saying why, when there is none to show.
    """
    root = catalog.runs_root()
    st.title(picker.title)
    st.caption(picker.caption)
    folder = st.text_input(
        picker.folder_label,
        key=picker.folder_key,
        placeholder="path/to/runs or path/to/run",
        help=picker.folder_help.format(root=root),
    )
    choices = catalog.discover_runs(root, folder, catalog.base_dir())
    for problem in choices.problems:
        st.warning(problem, icon=":material/warning:")
    if picker.offer_others:
        offered = choices.runs
    else:
        offered = {k: r for k, r in choices.runs.items() if r.family == picker.family}
        for run in _refused(picker, choices, offered, folder):
            _refuse(picker, run, main_area)
    if not offered:
        main_area.header(picker.empty_header)
        main_area.info(
            picker.empty_text.format(root=root, train=FAMILIES[picker.family].train_command),
            icon=":material/folder_open:",
        )
        return None
    keys = list(offered)
    bundled = [
        k for k in keys if offered[k].name == picker.default_run and offered[k].path.parent.resolve() == root.resolve()
    ]
    default_key = (bundled or keys)[0]
    key = st.selectbox(
        picker.run_label,
        keys,
        index=keys.index(default_key),
        format_func=choices.labels.get,
        key=picker.run_key,
        bind="query-params",
    )
    run = offered[key]
    if run.family != picker.family:
        _refuse(picker, run, main_area)
        return None
    return choices, run


def _refused(picker: Picker, choices: catalog.RunChoices, offered: dict[str, Run], folder: str | None) -> list[Run]:
    """Runs of another family that the typed folder names, or the URL does (its run is then dropped
    from the URL, so the selectbox opens one of the page's own runs)."""
    typed = folder.strip() if folder else ""
    refused = [
        r
        for r in choices.runs.values()
        if r.family != picker.family
        and typed
        and catalog.run_key(r.path, catalog.base_dir()).endswith(typed.rstrip("/"))
    ]
    wanted = st.query_params.get(picker.run_key)
    named = [k for k in choices.runs if wanted in (k, choices.labels.get(k))] if wanted else []
    if named and named[0] not in offered:
        refused.append(choices.runs[named[0]])
        st.query_params.pop(picker.run_key, None)
    return refused


def _refuse(picker: Picker, run: Run, main_area) -> None:
    """Say what ``run`` is and what the page needs, with a link to the page of the run's family."""
    main_area.error(
        wrong_family_message(run.family, picker.family, str(run.path), picker.what, where=False),
        icon=":material/error:",
    )
    navigation.link_to_family_page(main_area, run.family)


def pick_run_and_step(picker: Picker, step_key: str, step_help: str | None = None):
    """The sidebar of a page that shows one checkpoint of a run (the Adder and Groups pages): the
    run picker, the files skipped, a step slider over the saved checkpoints (bound to the URL as
    ``step_key``) and the run's config. Returns (run, steps, step), or None after saying why on the
    page (no run to show, or none of its checkpoints written yet)."""
    main_area = st.container()  # the page itself: a refused run or the empty state is said there
    with st.sidebar:
        picked = pick_run(picker, main_area)
        if picked is None:
            return None
        run = picked[1]
        steps = run.steps()
        if run.problems:
            with st.expander(f"{len(run.problems)} file(s) of this run skipped", icon=":material/warning:"):
                for problem in run.problems:
                    st.warning(problem)
        if not steps:
            main_area.info(f"{run.path} has no checkpoints yet.", icon=":material/hourglass_empty:")
            return None
        step = st.select_slider(
            "Step", options=steps, value=steps[-1], key=step_key, bind="query-params", help=step_help
        )
        with st.expander("Config", icon=":material/settings:"):
            settings = run.config.to_dict()
            st.dataframe({"setting": list(settings), "value": [str(v) for v in settings.values()]}, hide_index=True)
    return run, steps, step
