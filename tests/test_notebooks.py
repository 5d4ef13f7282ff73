"""The example notebooks (examples/*.ipynb) run top to bottom in a real Jupyter kernel: a cell
that raises (their checks are asserts on the bundled runs) fails the test. Stored without outputs."""

from __future__ import annotations

import importlib.util
import time

import pytest

from tests.conftest import REPO

NOTEBOOKS = sorted((REPO / "examples").glob("*.ipynb"))
MISSING = [m for m in ("nbclient", "nbformat", "ipykernel") if importlib.util.find_spec(m) is None]
pytestmark = pytest.mark.skipif(bool(MISSING), reason=f"needs {', '.join(MISSING)} (pip install 'grokviz[notebook]')")


def test_the_three_examples_are_there():
    assert {p.stem for p in NOTEBOOKS} == {"modular_addition_walkthrough", "multiplication_discrete_log", "adder_777"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_and_is_stored_without_outputs(path):
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(not cell.outputs and cell.execution_count is None for cell in code), "clear the outputs"
    started = time.monotonic()
    # Run from the repository's root, as a reader who opens it there would; a failing cell raises.
    NotebookClient(notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(REPO)}}).execute()
    errors = [o for cell in code for o in cell.outputs if o.output_type == "error"]
    assert not errors
    # Altair's default renderer in Jupyter: HTML that embeds the Vega-Lite spec.
    charts = [o for cell in code for o in cell.outputs if "vegaEmbed" in o.get("data", {}).get("text/html", "")]
    assert charts, "the charts render in Jupyter"
    print(f"{path.name}: {time.monotonic() - started:.1f} s")
