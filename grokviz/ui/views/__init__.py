"""Data shaping for the app: analysis results, logs and configs in, the small frames and tables the
charts and widgets show out. One module per concern (curves, phases, spectra, grids, neurons, ...,
and one per page of its own: digits, compare, sweeps); pure functions, no Streamlit and no file
I/O, so all of it is tested without a browser. Drawing is ``grokviz.ui.charts``; reading files
and cache keys, ``grokviz.ui.catalog`` and ``grokviz.ui.loaders``.
"""
