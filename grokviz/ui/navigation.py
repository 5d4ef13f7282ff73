"""The app's pages, for ``st.navigation``: the run explorer, the Sweeps and Compare pages, the
Adder page (for 10-digit adder runs), the Groups page (for finite-group runs) and the New run page
(starting and stopping trainings; not in a read-only app). Each is a script
of ``grokviz/ui/pages/``; the explorer's tabs are modules of ``grokviz/ui/tabs/`` that it draws.

:data:`PAGES` is keyed by the names that ``grokviz.core.families`` uses for a family's ``page``, so
a page that is shown a run of another family links to that family's page (:func:`page_for`)
instead of naming it. Each page script draws itself in its ``__main__`` block, so
``AppTest.switch_page`` and ``st.switch_page`` reach every page by its path. The explorer is the
default page: a URL without a page path (``/?run=...&step=...``) opens it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import streamlit as st

PAGE_DIR = Path(__file__).resolve().parent / "pages"


@dataclass(frozen=True)
class PageSpec:
    """One page: its script, title and icon in the menu, URL path (None: the default page), and the
    words of a link to it."""

    script: Path
    title: str
    icon: str
    url_path: str | None
    link: str
    run_param: str | None = None  # the URL parameter that opens a run on it (its run picker's key)


PAGES: dict[str, PageSpec] = {
    "explore": PageSpec(
        PAGE_DIR / "explore.py", "Explore a run", ":material/ssid_chart:", None, "Open the run explorer", "run"
    ),
    "sweeps": PageSpec(PAGE_DIR / "sweeps.py", "Sweeps", ":material/grid_view:", "sweeps", "Open the Sweeps page"),
    "compare": PageSpec(
        PAGE_DIR / "compare.py", "Compare runs", ":material/compare_arrows:", "compare", "Open the Compare page"
    ),
    "digits": PageSpec(
        PAGE_DIR / "digits.py", "Adder", ":material/calculate:", "adder", "Open the Adder page", "adder_run"
    ),
    "groups": PageSpec(
        PAGE_DIR / "groups.py", "Groups", ":material/hub:", "groups", "Open the Groups page", "group_run"
    ),
    # Starting, stopping and extending runs; left out of a read-only app (GROKVIZ_READ_ONLY=1).
    "new": PageSpec(PAGE_DIR / "new_run.py", "New run", ":material/rocket_launch:", "new", "Open the New run page"),
}


def page(name: str) -> st.Page:
    """The ``st.Page`` of ``PAGES[name]`` (a fresh one: Streamlit matches pages by their script and URL path)."""
    spec = PAGES[name]
    if spec.url_path is None:
        return st.Page(spec.script, title=spec.title, icon=spec.icon, default=True)
    return st.Page(spec.script, title=spec.title, icon=spec.icon, url_path=spec.url_path)


def page_name(family: str) -> str:
    """The key in :data:`PAGES` of the page that opens runs of ``family``."""
    from grokviz.core.families import FAMILIES  # here: the menu is built before torch is imported

    return FAMILIES[family].page


def page_for(family: str) -> st.Page:
    """The page that opens runs of the family called ``family``."""
    return page(page_name(family))


def link_to_family_page(container, family: str) -> None:
    """A link, in ``container``, to the page that opens runs of ``family``."""
    spec = PAGES[page_name(family)]
    container.page_link(page_for(family), label=spec.link, icon=spec.icon)


def link_to_run(container, family: str, name: str, label: str) -> None:
    """A link, in ``container``, that opens the run ``name`` of the runs folder on its family's page."""
    spec = PAGES[page_name(family)]
    container.page_link(page_for(family), label=label, icon=spec.icon, query_params={spec.run_param: name})


def page_names() -> list[str]:
    """The keys of :data:`PAGES` this app shows: all, less the New run page in a read-only app."""
    from grokviz.storage.jobs import read_only

    return [name for name in PAGES if not (name == "new" and read_only())]


def pages() -> list[st.Page]:
    return [page(name) for name in page_names()]
