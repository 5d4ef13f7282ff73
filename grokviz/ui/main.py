"""The Streamlit script of grokviz: ``streamlit run app.py`` and ``grokviz app`` both run :func:`main`.

It builds the menu and hands over to ``st.navigation``. The app is layout, widgets and messages
only: analysis lives in ``grokviz.analysis``, data shaping in ``grokviz.ui.views``, charts in
``grokviz.ui.charts``, cached loading in ``grokviz.ui.loaders``. The pages are listed in
``grokviz.ui.navigation`` and live in ``grokviz.ui.pages``: the run explorer (``pages/explore.py``,
its sidebar ``grokviz.ui.sidebar``, one module of ``grokviz.ui.tabs`` per tab), the Sweeps, Compare,
Adder, Groups and New run pages. Runs are read from ``$GROKVIZ_RUNS``, else ``./checkpoints`` of the
folder the app was started in.

Fast start: nothing here imports torch. The explorer draws its first charts from the run's log
first, then calls :func:`configure_torch` and imports the rest; every other page is handed a
configured torch before it runs.
"""

from __future__ import annotations

import streamlit as st


def configure_torch() -> None:
    """Import torch and set it up for the app's process (cheap after the first call)."""
    import torch

    # One intra-op thread: on the 2-core machines this targets, a second thread costs more in
    # wake-ups than it saves on these small ops, and several sessions share the cores anyway.
    torch.set_num_threads(1)
    # Trained weights reach denormal floats; flushing them keeps CPU arithmetic at full speed.
    torch.set_flush_denormal(True)


def main() -> None:
    st.set_page_config(page_title="grokviz", page_icon=":material/ssid_chart:", layout="wide")
    from grokviz.ui import navigation

    page = st.navigation(navigation.pages())
    if page.url_path != "":  # the explorer (the default page) configures torch itself, after its first chart
        configure_torch()
    page.run()


if __name__ == "__main__":  # `streamlit run grokviz/ui/main.py` (what `grokviz app` runs)
    main()
