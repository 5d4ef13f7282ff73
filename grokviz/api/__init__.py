"""The library's front door, ``import grokviz as gv``: what a notebook needs without deep imports.

``grokviz/__init__.py`` names each function here and imports it on first use, so ``import grokviz``
loads no torch. Everything is the code the commands and the app run, not a second implementation:

* ``functions``: ``open_run``, ``open_sweep``, ``train`` (a family's trainer, through the family
  table), ``analyze`` (``grokviz analyze --json``'s object), ``ablate``, ``probe``, ``forecast``;
* ``charts``: the app's Altair charts of a run (curves with phases, spectra, the ablation grid,
  a neuron, circles, the adder's digit heatmap), built by ``grokviz.ui.views`` and ``grokviz.ui.charts``.

docs/api.md lists each with an example.
"""
