"""The bundled run of a PyTorch nn.TransformerEncoder model's architecture (post-LayerNorm, every
bias, no positional embedding, bidirectional attention) in the run explorer: every tab and every
ablation site, with values."""

from __future__ import annotations

from pathlib import Path

import pytest

from grokviz.analysis.ablation import ablate
from grokviz.analysis.summary import summarise
from grokviz.core.config import dataset_for
from grokviz.storage.runs import open_run

RUN = Path(__file__).resolve().parents[2] / "checkpoints" / "torch-encoder-p97"
TABS = ["Training", "Fourier", "Ablation", "Neurons", "Prediction & attention", "Circles"]


@pytest.fixture(scope="module")
def torch_encoder() -> Path:
    if not (RUN / "run.json").is_file():
        pytest.skip(f"bundled run missing at {RUN}")
    return RUN


def metric(at, label: str) -> str:
    values = [m.value for m in at.metric if m.label == label]
    assert values, f"no metric {label!r}; metrics are {[m.label for m in at.metric]}"
    return values[0]


def test_every_tab_and_site_renders_on_torch_encoder(torch_encoder, monkeypatch, new_app, check) -> None:
    monkeypatch.setenv("GROKVIZ_RUNS", str(torch_encoder.parent))
    at = check(new_app(run="torch-encoder-p97").run())
    assert at.selectbox(key="run").value.endswith("torch-encoder-p97")
    assert any(
        "post-LayerNorm, biases: all, no positional embedding, bidirectional attention" in c.value for c in at.caption
    )
    for tab in TABS:
        at.session_state["tab"] = tab
        check(at.run())
    at.session_state["tab"] = "Ablation"
    check(at.run())
    run = open_run(torch_encoder)
    cfg, params = run.config, run.load(run.steps()[-1])
    keys = summarise(cfg, run.steps()[-1], params)["key_frequencies"]
    for site in ("logits", "embedding", "neurons"):
        at.radio(key="site").set_value(site)
        check(at.radio(key="mode").set_value("remove").run())
        # What the page shows is the library's number for the same ablation.
        expected = ablate(params, dataset_for(cfg), keys, "remove", site, arch=cfg.architecture)
        assert metric(at, "Test accuracy after") == f"{expected.after['test'].accuracy:.1%}", site
        assert expected.after["test"].accuracy < 0.5, site  # removing the key frequencies breaks the model


def test_neurons_ablation_over_the_whole_run_on_torch_encoder(torch_encoder, monkeypatch, new_app, check) -> None:
    # The timeline ablation reruns the encoder model at every checkpoint (its neurons site goes
    # through the forward, as a LayerNorm follows the MLP).
    monkeypatch.setenv("GROKVIZ_RUNS", str(torch_encoder.parent))
    at = check(new_app(run="torch-encoder-p97", tab="Ablation", freqs=["8", "18", "41"], site="neurons").run())
    apply = [b for b in at.button if b.label == "Apply to every checkpoint"]
    assert apply, "the timeline ablation is offered"
    check(apply[0].click().run())
    assert any("Solid: before; dashed: after" in c.value for c in at.caption)
