"""The real TransformerLens 3.x, for the checks that load our exports into it."""

from __future__ import annotations

import sys

import pytest


@pytest.fixture
def transformer_lens_3():
    """TransformerLens 3.x's module, imported for one test and then removed from ``sys.modules``.

    Skips when it is not installed or is 4.x (the export targets 3.x's HookedTransformer). The
    version is read from the package metadata first; the import is undone after the test because
    other tests check that grokviz itself never imports TransformerLens."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        installed = version("transformer-lens")
    except PackageNotFoundError:
        pytest.skip("TransformerLens 3.x is not installed (pip install 'transformer-lens<4' to run this check)")
    if int(installed.split(".")[0]) >= 4:
        pytest.skip(f"TransformerLens {installed} installed; the export targets 3.x (pip install 'transformer-lens<4')")
    before = set(sys.modules)
    import transformer_lens

    yield transformer_lens
    for name in set(sys.modules) - before:
        if name == "transformer_lens" or name.startswith("transformer_lens."):
            del sys.modules[name]
