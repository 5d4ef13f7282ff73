"""The Streamlit app (``grokviz app``; the script is ``main.py``).

- ``navigation``: the pages, for ``st.navigation``, keyed by the names a task family's ``page``
  uses (``grokviz.core.families``).
- ``pages/``: one script per page: ``explore`` (the run explorer, the default page), ``sweeps``,
  ``compare`` and ``digits`` (the Adder page, for 10-digit adder runs).
- ``tabs/``: the run explorer's tabs, one module each, drawing a ``state.View``.
- ``sidebar``: the explorer's sidebar; ``run_picker``: the run picker it shares with the Adder page.
- ``views/``: all data shaping (pure; analysis results in, frames out); ``charts/``: all drawing
  (Altair); ``loaders``: the cached loading; ``catalog``: the runs on offer and the file signatures
  that key the caches; ``widgets``: small Streamlit helpers.

Analysis itself lives in ``grokviz.analysis``; the app only shapes, draws and caches it.
"""
