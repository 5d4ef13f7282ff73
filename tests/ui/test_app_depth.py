"""The app on a run with two blocks: the headline says so, and the tabs that show neurons or
attention offer a layer choice (the last block by default) whose values are the analyses' own."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from grokviz.analysis.ablation import ablate
from grokviz.analysis.neurons import neuron_activations
from grokviz.core.config import Config, dataset_for
from grokviz.storage.runs import open_run
from grokviz.training.single import train


@pytest.fixture(scope="module")
def deep_runs(tmp_path_factory, tiny_config: Config) -> Path:
    """A folder holding one tiny 2-layer run (300 steps: a few seconds on one core)."""
    root = tmp_path_factory.mktemp("deep-runs")
    train(dataclasses.replace(tiny_config, n_layers=2), root / "deep", progress=False, threads=1)
    return root


@pytest.fixture
def deep_run(deep_runs: Path, monkeypatch) -> Path:
    monkeypatch.setenv("GROKVIZ_RUNS", str(deep_runs))
    return deep_runs / "deep"


def metric(at, label: str) -> str:
    values = [m.value for m in at.metric if m.label == label]
    assert values, f"no metric {label!r}; metrics are {[m.label for m in at.metric]}"
    return values[0]


def test_the_neurons_tab_offers_each_layer(deep_run: Path, new_app, check):
    run = open_run(deep_run)
    params = run.load(run.steps()[-1])
    at = check(new_app(tab="Neurons", a="3", b="4", neuron="5").run())
    assert any("2 layers" in h.value for h in at.header)
    layer = at.radio(key="layer")
    assert layer.options == ["0", "1"] and layer.value == 1
    assert any("neuron 5 of layer 1 at (3, 4)" in h.value for h in at.subheader)
    last = float(neuron_activations(params, run.config.architecture, layer=1)[3, 4, 5])
    assert float(metric(at, "Activation")) == pytest.approx(last, rel=1e-3, abs=1e-3)
    at = check(layer.set_value(0).run())
    assert any("neuron 5 of layer 0 at (3, 4)" in h.value for h in at.subheader)
    first = float(neuron_activations(params, run.config.architecture, layer=0)[3, 4, 5])
    assert first != pytest.approx(last, abs=1e-3)  # the choice shows another block's neuron
    assert float(metric(at, "Activation")) == pytest.approx(first, rel=1e-3, abs=1e-3)


def test_the_neurons_site_ablates_the_chosen_layer(deep_run: Path, new_app, check):
    run = open_run(deep_run)
    params = run.load(run.steps()[-1])
    at = check(new_app(tab="Ablation", freqs=["1", "2", "3"], site="neurons", layer="0").run())
    assert at.radio(key="layer").value == 0  # the layer is in the URL, like the neuron
    assert any("layer 0's neurons" in c.value for c in at.caption)
    want = ablate(params, dataset_for(run.config), [1, 2, 3], "remove", "neurons", layer=0)
    assert percent(metric(at, "Train accuracy after")) == pytest.approx(want.after["train"].accuracy, abs=1e-3)
    at = check(new_app(tab="Ablation", freqs=["1"], site="logits").run())
    assert not [r for r in at.radio if r.key == "layer"]  # only the neurons site reads a layer


def test_every_layers_attention_is_shown(deep_run: Path, new_app, check):
    at = check(new_app(tab="Prediction & attention", a="3", b="4").run())
    assert any("answers" in c.value for c in at.caption)
    specs = " ".join(e.proto.spec for e in at.get("vega_lite_chart"))
    assert "from the '=' position in layer 0" in specs and "from the '=' position in layer 1" in specs


def percent(text: str) -> float:
    return float(text.rstrip("%")) / 100
