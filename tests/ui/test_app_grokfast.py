"""The bundled Grokfast run opens in the run explorer like any other, its filter in the config table."""

from __future__ import annotations

from pathlib import Path

import pytest

from grokviz.storage.runs import open_run

GROKFAST_RUN = Path(__file__).resolve().parents[2] / "checkpoints" / "add-p113-grokfast"
TABS = ["Training", "Fourier", "Ablation", "Neurons", "Prediction & attention"]


def test_the_bundled_grokfast_run_renders_every_tab(monkeypatch, new_app, check) -> None:
    if not (GROKFAST_RUN / "run.json").is_file():
        pytest.skip(f"bundled run missing at {GROKFAST_RUN}")
    monkeypatch.setenv("GROKVIZ_RUNS", str(GROKFAST_RUN.parent))
    at = check(new_app(run="add-p113-grokfast").run())
    assert at.selectbox(key="run").value.endswith("add-p113-grokfast")
    table = at.dataframe[0].value
    config = dict(zip(table["setting"], table["value"]))
    assert (config["grokfast"], config["grokfast_alpha"], config["grokfast_lamb"]) == ("ema", "0.98", "5.0")
    for tab in TABS:
        at.session_state["tab"] = tab
        check(at.run())
    # Grokked within the bundle: test accuracy 99.9% by step 4,860 (add-p113: 8,560).
    log = open_run(GROKFAST_RUN).log()
    assert int(log.step[log.test_accuracy >= 0.999].iloc[0]) == 4860
