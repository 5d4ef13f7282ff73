"""The Groups page (AppTest): it opens a finite-group run on every tab and shows the numbers the
analysis gives (the headline equals ``split_metrics`` and the log; an ablation's metrics equal
``ablate_irreps``; the probe's rows equal ``groups_probe.neuron_fit``), keeps its view in the URL,
refuses a modular run (and the explorer refuses a groups run, with a link here), and says so when
there is no run; and, in a real browser, draws the Circles tab and follows the step slider. The
page's pure parts are tested without it: the probe fit in ``tests/analysis/test_groups_probe.py``,
the views and charts in ``tests/ui/test_group_views.py``.

The runs are tiny (D4, order 8, trained for a few seconds in a module fixture), so the tests do not
depend on the bundled S5 run.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from grokviz.analysis import groups as analysis
from grokviz.analysis import groups_probe
from grokviz.analysis.groups import split_metrics
from grokviz.analysis.groups_ablation import ablate_irreps
from grokviz.core.fast_path import forward_all_pairs
from grokviz.core.groups_config import GroupsConfig
from grokviz.storage.runs import open_run
from grokviz.training.single import train
from grokviz.ui.views import groups as views
from tests.ui.page_steps import move_step_slider, step_metric

REPO = Path(__file__).resolve().parents[2]
MODULAR = REPO / "checkpoints" / "add-p113"
GROUPS_PAGE = "grokviz/ui/pages/groups.py"
TINY = GroupsConfig(
    group="D4",
    steps=200,
    d_model=32,
    d_mlp=64,
    n_heads=2,
    d_head=16,
    frac_train=0.6,
    save_log_points=6,
    save_every=1000,
)


@pytest.fixture(scope="module")
def runs_root(tmp_path_factory) -> Path:
    """A runs folder with a tiny D4 run and, when shipped, the modular run's run.json (for the refusal)."""
    root = tmp_path_factory.mktemp("runs")
    train(TINY, root / "d4-tiny", progress=False, device="cpu", threads=1)
    if (MODULAR / "run.json").is_file():
        (root / "add-p113").mkdir()
        shutil.copy(MODULAR / "run.json", root / "add-p113" / "run.json")
    return root


@pytest.fixture(scope="module")
def tiny(runs_root):
    """(run, group, dataset, params of the last step) of the tiny run, for the expected numbers."""
    run = open_run(runs_root / "d4-tiny")
    return run, run.config.finite_group, run.config.dataset(), run.load(run.steps()[-1])


def _groups(new_app, monkeypatch, runs_root, **query):
    monkeypatch.setenv("GROKVIZ_RUNS", str(runs_root))
    at = new_app(timeout=120)
    at.run()
    at.switch_page(GROUPS_PAGE)
    for key, value in query.items():  # the page's own URL parameters
        at.query_params[key] = value
    return at.run()


def _metric(at, label: str):
    found = [m for m in at.metric if m.label == label]
    assert found, f"no metric {label!r} in {[m.label for m in at.metric]}"
    return found[0]


# --- the page -----------------------------------------------------------------------------------


def test_the_headline_equals_split_metrics_and_the_log(new_app, check, monkeypatch, runs_root, tiny) -> None:
    run, group, data, params = tiny
    at = check(_groups(new_app, monkeypatch, runs_root))
    assert any("d4-tiny: composition in D4 (order 8, 5 irreps)" in h.value for h in at.header)
    steps = run.steps()
    assert at.select_slider(key="group_step").value == steps[-1]  # the last checkpoint
    expected = split_metrics(
        group, forward_all_pairs(params, arch=run.config.architecture), data.train_idx, data.test_idx
    )
    logged = run.log().set_index("step").loc[steps[-1]]
    for field, label in (("train_accuracy", "Train accuracy"), ("test_accuracy", "Test accuracy")):
        assert _metric(at, label).value == f"{expected[field]:.1%}" == f"{logged[field]:.1%}"
    for field, label in (("train_loss", "Train loss"), ("test_loss", "Test loss")):
        assert _metric(at, label).value == f"{expected[field]:.3g}"
        assert expected[field] == pytest.approx(logged[field], rel=1e-3)
    # Moving the step changes the headline.
    at.select_slider(key="group_step").set_value(steps[1]).run()
    check(at)
    assert _metric(at, "Step").value == f"{steps[1]:,}"


def test_the_training_tab_draws_the_measures_over_the_run(new_app, check, monkeypatch, runs_root, tiny) -> None:
    at = check(_groups(new_app, monkeypatch, runs_root))
    assert len(at.get("vega_lite_chart")) == 4  # loss, accuracy, character FVE, restricted/excluded loss
    assert any("Key irreps of the last checkpoint" in c.value for c in at.caption)


def test_the_irreps_tab_names_the_key_irreps(new_app, check, monkeypatch, runs_root, tiny) -> None:
    run, group, data, params = tiny
    at = check(_groups(new_app, monkeypatch, runs_root, group_tab="Irreps"))
    text = [m.value for m in at.markdown if m.value.startswith(f"**Step {run.steps()[-1]:,}.**")]
    assert text and ("Key irreps:" in text[0] or "No key irreps yet" in text[0])
    assert len(at.get("vega_lite_chart")) == 4  # W_E, W_U, character FVE, the heatmap over the run


def test_the_ablation_tab_shows_what_ablate_irreps_gives(new_app, check, monkeypatch, runs_root, tiny) -> None:
    run, group, data, params = tiny
    at = check(_groups(new_app, monkeypatch, runs_root, group_tab="Ablation"))
    assert at.multiselect(key="group_irreps").options == ["flip", "alt", "alt-flip", "rot 1"]
    at.multiselect(key="group_irreps").set_value(["rot 1"])
    at.radio(key="group_mode").set_value("keep")
    at.radio(key="group_site").set_value("embedding").run()
    check(at)
    logits = ablate_irreps(group, params, run.config.architecture, ["rot 1"], "keep", "embedding")
    after = split_metrics(group, logits, data.train_idx, data.test_idx)
    assert _metric(at, "Test accuracy after").value == f"{after['test_accuracy']:.1%}"
    assert _metric(at, "Train loss after").value == f"{after['train_loss']:.3g}"
    # Over the run: one more chart, no error.
    charts_before = len(at.get("vega_lite_chart"))
    at.checkbox(key="group_over_run").check().run()
    check(at)
    assert len(at.get("vega_lite_chart")) == charts_before + 1
    # No irrep chosen: said in words.
    at.multiselect(key="group_irreps").set_value([]).run()
    assert any("Choose at least one irrep" in i.value for i in at.info)


def test_a_url_opens_the_ablation_it_names(new_app, check, monkeypatch, runs_root, tiny) -> None:
    run, group, data, params = tiny
    step = run.steps()[2]
    at = check(
        _groups(
            new_app,
            monkeypatch,
            runs_root,
            group_tab="Ablation",
            group_step=str(step),
            group_irreps=["flip", "rot 1"],
            group_mode="keep only",
            group_site="neurons",
        )
    )
    assert at.select_slider(key="group_step").value == step
    assert at.multiselect(key="group_irreps").value == ["flip", "rot 1"]
    assert at.radio(key="group_mode").value == "keep" and at.radio(key="group_site").value == "neurons"
    logits = ablate_irreps(group, run.load(step), run.config.architecture, ["flip", "rot 1"], "keep", "neurons")
    after = split_metrics(group, logits, data.train_idx, data.test_idx)
    assert _metric(at, "Train accuracy after").value == f"{after['train_accuracy']:.1%}"


def test_hostile_url_parameters_fall_back_to_the_defaults(new_app, check, monkeypatch, runs_root, tiny) -> None:
    run = tiny[0]
    query = dict(group_step="-5", group_irreps=["x", "rot 9"], group_mode="explode", group_site="../../etc")
    at = check(_groups(new_app, monkeypatch, runs_root, group_tab="Ablation", **query))
    assert at.select_slider(key="group_step").value == run.steps()[-1]
    assert set(at.multiselect(key="group_irreps").value) <= {"flip", "alt", "alt-flip", "rot 1"}
    assert (at.radio(key="group_mode").value, at.radio(key="group_site").value) == ("remove", "logits")
    query = dict(group_a="-1", group_b="99999", group_neuron="100000", group_threshold="7")
    at = check(_groups(new_app, monkeypatch, runs_root, group_tab="Neurons", **query))
    assert 0 <= at.number_input(key="group_a").value < 8 and 0 <= at.number_input(key="group_b").value < 8
    at = check(_groups(new_app, monkeypatch, runs_root, group_tab="Circles", group_circle="<script>"))
    assert at.selectbox(key="group_circle").value == "rot 1"


def test_the_neurons_tab_probes_a_pair(new_app, check, monkeypatch, runs_root, tiny) -> None:
    run, group, data, params = tiny
    at = check(_groups(new_app, monkeypatch, runs_root, group_tab="Neurons"))
    at.slider(key="group_threshold").set_value(0.5)
    at.number_input(key="group_a").set_value(3)
    at.number_input(key="group_b").set_value(5).run()
    check(at)
    assert any("a = r^3" in c.value for c in at.caption) and any("b = r s" in c.value for c in at.caption)
    assert any(f"3: r^3  ∘  5: r s  =  {group.compose(3, 5)}: " in m.value for m in at.markdown)
    cache: dict = {}
    forward_all_pairs(params, cache, run.config.architecture)
    acts = cache["blocks.0.mlp.hook_post"]
    neurons = analysis.neuron_irreps(group, acts)
    counts = analysis.neuron_counts(neurons, 0.5)
    most = max(counts, key=counts.get)  # the probe's default: the irrep with the most clustered neurons
    assert at.selectbox(key="group_probe_irrep").value == most
    chosen = views.top_clustered(neurons, 0.5, 10, most)
    assert set(chosen.values()) == {most}
    table = at.dataframe[0].value
    assert list(table["neuron"]) == list(chosen)
    expected = groups_probe.neuron_fit(group, acts, chosen, 3, 5)
    np.testing.assert_allclose(table["fit by its irrep"], expected["fit"], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(table["activation"], expected["actual"], rtol=1e-6, atol=1e-7)
    # The scatter of the chosen neuron states its R², which is its FVE.
    neuron = at.selectbox(key="group_neuron").value
    assert neuron == list(chosen)[0]
    assert len(at.get("vega_lite_chart")) == 4  # counts, FVE histogram, probe bars, the scatter
    # Every clustered neuron, highest FVE first.
    at.selectbox(key="group_probe_irrep").set_value("all irreps").run()
    check(at)
    assert list(at.dataframe[0].value["neuron"]) == list(views.top_clustered(neurons, 0.5, 10))


def test_a_threshold_no_neuron_reaches_is_said_in_words(new_app, check, monkeypatch, runs_root) -> None:
    at = check(_groups(new_app, monkeypatch, runs_root, group_tab="Neurons", group_threshold="0.99", group_step="0"))
    assert any("No neuron has FVE ≥ 0.99" in i.value for i in at.info)


def test_the_circles_tab_draws_a_plane_and_says_why_not(new_app, check, monkeypatch, runs_root) -> None:
    at = check(_groups(new_app, monkeypatch, runs_root, group_tab="Circles"))
    assert at.selectbox(key="group_circle").value == "rot 1"  # D4's one 2-dimensional irrep
    assert any("each kind is joined on its own" in c.value for c in at.caption)
    assert len(at.get("vega_lite_chart")) == 1
    at.selectbox(key="group_circle").set_value("flip").run()
    check(at)
    assert any("flip is 1-dimensional" in i.value for i in at.info)


def test_a_modular_run_is_refused_on_the_groups_page(new_app, monkeypatch, runs_root) -> None:
    if not (runs_root / "add-p113").is_dir():
        pytest.skip("checkpoints/add-p113 is not in this checkout")
    at = _groups(new_app, monkeypatch, runs_root, group_run="add-p113")
    assert not at.exception
    assert any("is a modular-arithmetic run; the Groups page needs a finite-group run" in e.value for e in at.error)
    assert any("composition in D4" in h.value for h in at.header)  # ...and the page goes on with its own run
    at = _groups(new_app, monkeypatch, runs_root)
    at.text_input(key="group_folder").set_value(str(runs_root / "add-p113")).run()
    assert not at.exception
    assert any("add-p113: is a modular-arithmetic run" in e.value for e in at.error)


def test_the_explorer_refuses_a_groups_run_with_a_link_here(new_app, monkeypatch, runs_root) -> None:
    monkeypatch.setenv("GROKVIZ_RUNS", str(runs_root))
    at = new_app(timeout=120, run="d4-tiny").run()
    assert not at.exception
    assert any("is a finite-group run; the run explorer needs a modular-arithmetic run" in e.value for e in at.error)
    links = at.get("page_link")
    assert any(link.proto.label == "Open the Groups page" for link in links)


def test_no_group_runs_is_said_in_words(new_app, monkeypatch, tmp_path, runs_root) -> None:
    at = _groups(new_app, monkeypatch, tmp_path)
    assert not at.exception and not at.error
    assert any(h.value == "No group runs" for h in at.header)
    assert any("grokviz train-group --group S5" in i.value for i in at.info)
    # A run with no checkpoint yet (its run.json only) is said to have none.
    (tmp_path / "d4-new").mkdir()
    shutil.copy(runs_root / "d4-tiny" / "run.json", tmp_path / "d4-new" / "run.json")
    at = _groups(new_app, monkeypatch, tmp_path)
    assert not at.exception and not at.error
    assert any("has no checkpoints yet" in i.value for i in at.info)


# --- a real browser -----------------------------------------------------------------------------


@pytest.fixture
def groups_server(runs_root, monkeypatch, request) -> str:
    """The app served over the tiny D4 run (conftest's ``server``, with $GROKVIZ_RUNS set first)."""
    monkeypatch.setenv("GROKVIZ_RUNS", str(runs_root))
    return request.getfixturevalue("server")


@pytest.mark.browser
def test_the_groups_page_in_a_browser(groups_server: str, request) -> None:
    """Headless Chromium opens the Circles tab by URL, draws the plane, and follows the step slider into the URL."""
    browser = request.getfixturevalue("browser")
    shots = REPO / "screenshots"
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{groups_server}/groups?group_tab=Circles", wait_until="domcontentloaded")
    page.wait_for_selector('[data-testid="stVegaLiteChart"]', timeout=60_000)
    page.get_by_text("The tokens in the plane of rot 1 (2-dim)").first.wait_for(timeout=30_000)
    page.wait_for_timeout(1500)  # let the chart draw
    page.screenshot(path=str(shots / "browser-groups-1-circles.png"))
    move_step_slider(page, 3, step_metric(page))
    page.screenshot(path=str(shots / "browser-groups-2-step-moved.png"))
    assert "group_step=" in page.url and "group_tab=Circles" in page.url, page.url
    assert page.locator('[data-testid="stException"]').count() == 0


def test_the_prediction_tab_reads_one_pair_through_characters(new_app, check, monkeypatch, runs_root, tiny) -> None:
    from grokviz.analysis.groups_probe import character_readout

    run, group, data, params = tiny
    at = check(_groups(new_app, monkeypatch, runs_root, group_tab="Prediction & attention", group_a="3", group_b="6"))
    logits = forward_all_pairs(params, arch=run.config.architecture)
    readout = character_readout(group, logits[3 * group.order + 6], 3, 6)
    names = group.labels()
    said = [m.value for m in at.markdown if m.value.startswith("**3: ")]
    assert said and said[0].startswith(f"**3: {names[3]} ∘ 6: {names[6]} = {readout.label}: {names[readout.label]}**")
    assert ("the model is right" in said[0]) == (readout.answer == readout.label)
    charts = at.get("vega_lite_chart")
    assert len(charts) >= 3  # the irreps' parts, the logits, (the key irreps' waves,) the attention
