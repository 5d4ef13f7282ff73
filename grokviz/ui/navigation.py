"""The app's pages, for ``st.navigation``: the run explorer, and views whose controls differ
(the Sweeps page, the Compare page; the Adder page, for 10-digit adder runs).

Each page is a file of ``grokviz.ui`` that Streamlit runs as a script (its ``__main__`` block
draws it), so ``AppTest.switch_page`` and ``st.switch_page`` can reach every page by its path.
The explorer is the default page: a URL without a page path (``/?run=...&step=...``) opens it.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

UI = Path(__file__).resolve().parent
EXPLORE = UI / "pages" / "explore.py"
SWEEPS = UI / "pages" / "sweeps.py"
COMPARE = UI / "pages" / "compare.py"
DIGITS = UI / "pages" / "digits.py"


def explore_page() -> st.Page:
    return st.Page(EXPLORE, title="Explore a run", icon=":material/ssid_chart:", default=True)


def digits_page() -> st.Page:
    return st.Page(DIGITS, title="Adder", icon=":material/calculate:", url_path="adder")


def pages() -> list[st.Page]:
    return [
        explore_page(),
        st.Page(SWEEPS, title="Sweeps", icon=":material/grid_view:", url_path="sweeps"),
        st.Page(COMPARE, title="Compare runs", icon=":material/compare_arrows:", url_path="compare"),
        digits_page(),
    ]
