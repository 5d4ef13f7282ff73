"""The forecast panel: its data shaping and charts, and the panel itself drawn on a small run that
groks (through AppTest, with the explorer's View built as the explorer builds it)."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from grokviz.ui.charts.forecast import forecast_accuracy_chart, forecast_history_chart
from grokviz.ui.charts.training import llc_chart
from grokviz.ui.views import forecast as shaping


def test_marks_band_and_history_rows():
    made = {"will_grok": True, "grok_step": 900, "low": 700, "high": 1200}
    band, marker = shaping.forecast_marks(made)
    assert band.iloc[0][["start", "end"]].tolist() == [700, 1200]
    assert marker.iloc[0][["step", "accuracy"]].tolist() == [900, 0.95]
    band, marker = shaping.forecast_marks({"will_grok": False})
    assert band.empty and marker.empty
    history = pd.DataFrame(
        {
            "at_step": [100, 200],
            "will_grok": [False, True],
            "grok_step": [None, 800],
            "low": [None, 600],
            "high": [None, 1000],
        }
    )
    rows = shaping.history_rows(history, horizon=5000)
    assert rows["kind"].tolist() == ["will not grok by", "groks at"]
    assert rows["shown"].tolist() == [5000.0, 800.0] and rows["low"].tolist() == [5000.0, 600.0]
    log = pd.DataFrame({"step": [0, 10, 20], "test_accuracy": [0.1, 0.96, 0.97]})
    assert shaping.actual_grok_step(log) == 10
    assert shaping.finished(log, [0, 20], 20) and not shaping.finished(log, [0, 20], 30)


def test_charts_carry_the_band_the_marker_and_the_actual_step():
    curves = pd.DataFrame({"step": [0, 500], "series": ["test", "test"], "value": [0.1, 0.4]})
    band, marker = shaping.forecast_marks({"will_grok": True, "grok_step": 900, "low": 700, "high": 1200})
    spec = forecast_accuracy_chart(curves, band, marker, step=500).to_dict()
    text = str(spec)
    assert "rect" in text and "diamond" in text and "'domain': [0, 1200]" in text  # the axis reaches the band
    rows = shaping.history_rows(
        pd.DataFrame({"at_step": [100], "will_grok": [True], "grok_step": [800], "low": [600], "high": [1000]}), 5000
    )
    assert "grokked at step 750" in str(forecast_history_chart(rows, 750).to_dict())
    llc = llc_chart(pd.DataFrame({"step": [0, 100], "llc": [3.0, 9.0]})).to_dict()
    assert "LLC (training pairs)" in str(llc)


def panel_script(run_path: str) -> None:
    import streamlit as st

    from grokviz.analysis.progress import phase_boundaries
    from grokviz.storage.runs import open_run
    from grokviz.ui.state import View
    from grokviz.ui.tabs import forecast_panel
    from grokviz.ui.views.phases import phase_table

    run = open_run(run_path)
    steps, log = run.steps(), run.log()
    phases = phase_boundaries(log)
    step = int(st.query_params.get("step", steps[-1]))
    view = View(
        run=run,
        steps=steps,
        step=step,
        a=0,
        b=0,
        dataset=run.config.dataset(),
        params=run.load(step),
        log=log,
        phases=phases,
        phase_bands=phase_table(phases, steps[-1]),
        key_counts={},
        signature=(run_path, len(steps)),
        correct_c=None,
    )
    forecast_panel.render(view)


@pytest.mark.slow  # ~45 s: the LLC of every checkpoint and a forecast from each saved step
def test_panel_draws_the_forecast_its_history_and_the_llc(grokked_run, tmp_path):
    path = tmp_path / "run"
    shutil.copytree(grokked_run.path, path, ignore=shutil.ignore_patterns("timeline*.json"))
    steps = grokked_run.steps()
    at = AppTest.from_function(panel_script, kwargs={"run_path": str(path)}, default_timeout=180)
    at.query_params["step"] = str(steps[1])  # before memorisation: no forecast, and why
    at.run()
    assert not at.info, "a forecast is made only when asked (the slider must stay fast)"
    at.button(key="forecast_now").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("No forecast at step" in i.value and "memorised" in i.value for i in at.info)
    at.query_params["step"] = str(steps[-1])
    at.run()
    at.button(key="forecast_now").click().run()
    assert any("has grokked" in m.value or "groks at about" in m.value for m in at.markdown)
    at.button(key="forecast_history").click().run()
    at.button(key="forecast_llc").click().run()
    assert not at.exception, [e.value for e in at.exception]
    titles = "\n".join(c.proto.spec for c in at.get("vega_lite_chart"))
    assert "The forecast's history" in titles and "Local learning coefficient" in titles
