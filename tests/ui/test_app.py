"""The Streamlit app, driven by streamlit.testing.v1.AppTest (no browser).

Tests on the bundled grokked run check what a person sees (every tab renders, the headline
follows the step slider, frequency ablations, the probe); tests on tiny runs trained into a
temporary folder check the plumbing (URL state, broken runs, a run still training, tasks
outside the Fourier story). The app reads its runs from $GROKVIZ_RUNS.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from grokviz.analysis.neurons import neuron_activations, probe
from grokviz.core.config import Config
from grokviz.storage.runs import open_run
from grokviz.training.single import train

# The explorer's tabs (sweeps have a page of their own: tests/ui/test_app_sweep.py).
TABS = ["Training", "Fourier", "Ablation", "Neurons", "Prediction & attention", "Circles"]


def metric(at: AppTest, label: str) -> str:
    values = [m.value for m in at.metric if m.label == label]
    assert values, f"no metric {label!r}; metrics are {[m.label for m in at.metric]}"
    return values[0]


def percent(text: str) -> float:
    return float(text.rstrip("%")) / 100


def headline(at: AppTest) -> dict[str, str]:
    """The five headline metrics by label, and the phase (shown as the Step metric's delta)."""
    shown = {m.label: m.value for m in at.metric[:5]}
    shown["Phase"] = at.metric[0].delta
    return shown


def open_tab(at: AppTest, tab: str) -> AppTest:
    at.session_state["tab"] = tab
    return at.run()


# --- the bundled run ----------------------------------------------------------------------------


@pytest.fixture
def bundled(bundled_run_path: Path, monkeypatch) -> Path:
    """Point the app at the bundled run's folder (or at $GROKVIZ_RUNS when the caller set it)."""
    if not os.environ.get("GROKVIZ_RUNS"):
        monkeypatch.setenv("GROKVIZ_RUNS", str(bundled_run_path.parent))
    run_dir = Path(os.environ["GROKVIZ_RUNS"]) / bundled_run_path.name
    if not (run_dir / "run.json").is_file():
        pytest.skip(f"no bundled run at {run_dir}")
    return run_dir


def test_every_tab_renders_on_the_bundled_run(bundled: Path, new_app, check):
    at = check(new_app().run())
    assert [t.label for t in at.tabs] == TABS
    assert at.selectbox(key="run").value.endswith("add-p113")
    for tab in TABS:
        check(open_tab(at, tab))
    # The other ablation sites and modes render too.
    open_tab(at, "Ablation")
    for site in ("embedding", "neurons"):
        for mode in ("remove", "keep"):
            at.radio(key="site").set_value(site)
            check(at.radio(key="mode").set_value(mode).run())


def test_step_slider_changes_the_headline(bundled: Path, new_app, check):
    steps = open_run(bundled).steps()
    at = check(new_app().run())
    assert at.select_slider(key="step").value == steps[-1]
    last = headline(at)
    assert last["Step"] == f"{steps[-1]:,}" and percent(last["Test accuracy"]) > 0.99
    early = steps[len(steps) // 4]
    check(at.select_slider(key="step").set_value(early).run())
    moved = headline(at)
    assert moved["Step"] == f"{early:,}"
    assert moved["Test accuracy"] != last["Test accuracy"] and moved["Test loss"] != last["Test loss"]
    assert last["Phase"] == "after cleanup" and moved["Phase"] != last["Phase"]
    log = open_run(bundled).log().set_index("step")
    assert percent(moved["Test accuracy"]) == pytest.approx(log.loc[early, "test_accuracy"], abs=0.0006)


def test_key_frequency_ablation_at_the_logits(bundled: Path, new_app, check):
    at = check(new_app(tab="Ablation").run())
    chosen = at.multiselect(key="freqs").value
    assert chosen, "the key frequencies are the default choice"
    assert at.radio(key="site").value == "logits" and at.radio(key="mode").value == "remove"
    assert percent(metric(at, "Test accuracy after")) < 0.10
    check(at.radio(key="mode").set_value("keep").run())
    assert metric(at, "Test accuracy after") == "100.0%"
    assert metric(at, "Train accuracy after") == "100.0%"


def test_probe_shows_the_values_at_the_chosen_input(bundled: Path, new_app, check):
    run = open_run(bundled)
    step = run.steps()[-1]
    at = check(new_app(tab="Neurons").run())
    at.number_input(key="a").set_value(7)
    at.number_input(key="b").set_value(30)
    check(at.number_input(key="neuron").set_value(11).run())
    expected = probe(neuron_activations(run.load(step)), 11, 7, 30)
    shown = at.dataframe[0].value
    assert list(shown["term"]) == list(expected.terms["term"])
    assert shown["value"].tolist() == pytest.approx(expected.terms["value"].tolist(), abs=1e-9)
    assert shown["contribution"].tolist() == pytest.approx(expected.terms["contribution"].tolist(), rel=1e-6, abs=1e-9)
    assert float(metric(at, "Activation")) == pytest.approx(expected.activation, rel=1e-3, abs=1e-3)
    assert float(metric(at, "Residual")) == pytest.approx(expected.residual, rel=1e-3, abs=1e-3)
    assert any("at (7, 30)" in h.value for h in at.subheader)


def test_prediction_tab_names_the_answer(bundled: Path, new_app, check):
    at = check(new_app(tab="Prediction & attention", a="7", b="30").run())
    assert any("the correct answer is 37" in c.value for c in at.caption)


# --- tiny runs in a temporary folder -------------------------------------------------------------


@pytest.fixture
def runs_dir(tmp_path: Path, monkeypatch) -> Path:
    root = tmp_path / "runs"
    root.mkdir()
    monkeypatch.setenv("GROKVIZ_RUNS", str(root))
    return root


@pytest.fixture
def tiny_run(runs_dir: Path, tiny_config: Config) -> Path:
    return train(tiny_config, runs_dir / "tiny", progress=False).path


def test_url_query_parameters_restore_the_view(tiny_run: Path, new_app, check):
    steps = open_run(tiny_run).steps()
    at = check(new_app(run="tiny", step=str(steps[2]), a="3", b="4", tab="Neurons", neuron="5").run())
    assert at.select_slider(key="step").value == steps[2]
    assert (at.number_input(key="a").value, at.number_input(key="b").value) == (3, 4)
    assert at.number_input(key="neuron").value == 5
    assert at.session_state["tab"] == "Neurons"
    assert any("neuron 5 at (3, 4)" in h.value for h in at.subheader)
    at = check(new_app(tab="Ablation", freqs=["2", "5"], mode="keep only", site="neurons").run())
    assert at.multiselect(key="freqs").value == [2, 5]
    assert (at.radio(key="mode").value, at.radio(key="site").value) == ("keep", "neurons")
    # Values that do not fit the run are ignored, not fatal.
    check(new_app(step="999999", a="500").run())


def test_ablation_across_the_timeline(tiny_run: Path, new_app, check):
    at = check(new_app(tab="Ablation", freqs=["1", "2"]).run())
    apply = [b for b in at.button if b.label == "Apply to every checkpoint"]
    assert apply, "the timeline ablation is offered"
    check(apply[0].click().run())
    assert not [b for b in at.button if b.label == "Apply to every checkpoint"]  # its charts replace it
    assert any("Solid: before; dashed: after" in c.value for c in at.caption)
    # Kept for these settings: switching tabs and back shows it without recomputing.
    open_tab(at, "Training")
    check(open_tab(at, "Ablation"))
    assert any("Solid: before; dashed: after" in c.value for c in at.caption)


def test_play_starts_from_the_first_step(tiny_run: Path, new_app, check):
    steps = open_run(tiny_run).steps()
    at = check(new_app().run())
    play = [b for b in at.button if b.label == "Play"]
    check(play[0].click().run())
    assert at.session_state["playing"] is True
    assert at.select_slider(key="step").value == steps[0]
    assert [b for b in at.button if b.label == "Pause"]


def test_unreadable_runs_are_named_and_the_rest_keeps_working(tiny_run: Path, tmp_path: Path, new_app, check):
    broken_root = tmp_path / "more"
    (broken_root / "no-config").mkdir(parents=True)
    (broken_root / "no-config" / "run.json").write_text("{ not json")
    damaged = broken_root / "damaged"
    shutil.copytree(tiny_run, damaged)
    last = open_run(damaged).steps()[-1]
    (damaged / f"step_{last:06d}.safetensors").write_bytes(b"not a safetensors file")
    with open(damaged / "log.csv", "a") as log:
        log.write("12,not-a-number,0,0,0,0\n")

    at = new_app().run()
    at.text_input(key="folder").set_value(str(broken_root))
    at.run()
    assert not at.exception
    assert any("no-config" in w.value and "run.json" in w.value for w in at.warning)
    assert at.selectbox(key="run").value == tiny_run.resolve().as_posix()  # the good run still opens
    check(at)
    at.selectbox(key="run").set_value(damaged.resolve().as_posix())
    at.run()
    assert not at.exception
    # The broken checkpoint is named and skipped; the run opens on its last good one.
    assert any(f"step_{last:06d}.safetensors" in w.value for w in at.warning)
    assert any("log.csv" in w.value and "line" in w.value for w in at.warning)
    good = open_run(damaged).steps()
    assert last not in good and at.select_slider(key="step").value == good[-1]
    assert metric(at, "Step") == f"{good[-1]:,}"
    for tab in TABS:
        check(open_tab(at, tab))


def test_a_run_still_training_shows_new_checkpoints(runs_dir: Path, tiny_config: Config, new_app, check):
    out = runs_dir / "live"
    train(tiny_config, out, progress=False, stop_after_steps=150)
    before = open_run(out).steps()
    at = check(new_app().run())
    assert any("training:" in c.value for c in at.sidebar.caption)
    assert at.select_slider(key="step").value == before[-1]
    train(tiny_config, out, resume=True, progress=False)
    after = open_run(out).steps()
    assert after[-1] > before[-1]
    check(at.run())
    assert at.select_slider(key="step").options == [str(s) for s in after]
    assert not any("training:" in c.value for c in at.sidebar.caption)  # finished


def test_tasks_outside_the_fourier_story_are_labelled(runs_dir: Path, tiny_config: Config, new_app, check):
    train(tiny_config.replace(task="x2_plus_y2", steps=100), runs_dir / "poly", progress=False)
    at = check(new_app().run())
    assert any("x2_plus_y2" in i.value and "need not mean anything" in i.value for i in at.info)
    for tab in TABS:
        check(open_tab(at, tab))


def test_mul_is_shown_in_the_discrete_log_basis(runs_dir: Path, tiny_config: Config, new_app, check):
    train(tiny_config.replace(task="mul", steps=100), runs_dir / "mul", progress=False)
    at = check(new_app(a="0", b="3").run())  # a pair with 0: left out of the Fourier analyses, in words
    note = next(i.value for i in at.info if "discrete-log" in i.value)
    assert "left out" in note and "need not mean anything" not in note
    for tab in TABS:
        check(open_tab(at, tab))
    check(open_tab(at, "Neurons"))
    assert any("has no log" in i.value for i in at.info)
    check(open_tab(at, "Circles"))
    assert any("k·log x" in c.value for c in at.caption)


def test_a_run_too_big_for_live_analysis_is_refused_in_words(runs_dir: Path, tiny_config: Config, new_app):
    big = tiny_config.replace(
        p=263, d_model=16, d_mlp=16, n_heads=2, d_head=8, steps=2, save_every=1, save_log_points=0
    )
    train(big, runs_dir / "big", progress=False)
    at = new_app().run()
    assert not at.exception
    assert any("263" in w.value for w in at.warning)
    assert metric(at, "Step") == "2"  # the headline still comes from the training log
    for tab in TABS:
        open_tab(at, tab)
        assert not at.exception, tab


def test_no_runs_says_how_to_make_one(runs_dir: Path, new_app):
    at = new_app().run()
    assert not at.exception
    # It says how to get runs: train one, open a clone's bundled runs, or point $GROKVIZ_RUNS at some.
    infos = [i.value for i in at.info]
    assert any("grokviz train --out" in i and "grokviz app" in i and "GROKVIZ_RUNS" in i for i in infos), infos


def test_hostile_url_parameters_are_ignored(tiny_run: Path, tmp_path: Path, new_app, check):
    """Values a link can carry never reach outside the runs root nor crash the app."""
    outside = tmp_path / "outside"
    train(
        Config(
            p=13, d_model=16, d_mlp=32, n_heads=2, d_head=8, steps=20, log_every=10, save_every=10, save_log_points=0
        ),
        outside / "secret",
        progress=False,
    )
    at = check(
        new_app(
            run="../outside/secret",
            folder=str(outside),
            step="-5",
            a="-1",
            b="99999999",
            freqs=["999", "x", "-2"],
            mode="explode",
            site="../../etc",
            neuron="100000",
            tab="<script>",
        ).run()
    )
    assert at.selectbox(key="run").value.endswith("tiny")  # the default run, not the one outside
    assert at.text_input(key="folder").value in ("", None)
    shown = " ".join(str(e.value) for e in [*at.warning, *at.markdown, *at.caption])
    assert "secret" not in shown and str(outside) not in shown
    a, b = at.number_input(key="a").value, at.number_input(key="b").value
    assert 0 <= a < 23 and 0 <= b < 23
    assert at.select_slider(key="step").value in open_run(tiny_run).steps()


def test_a_small_p_opens_with_its_default_input_in_range(runs_dir: Path, tiny_config: Config, new_app, check):
    # p = 13: the default b of 17 is outside Z_13 and must not crash the sidebar.
    train(tiny_config.replace(p=13, steps=20, save_every=10, save_log_points=0), runs_dir / "p13", progress=False)
    at = check(new_app().run())
    assert int(at.number_input(key="b").value) <= 12 and int(at.number_input(key="a").value) == 5
