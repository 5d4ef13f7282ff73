"""Analyses through the model's own forward (the general path) against the reference shortcuts,
and every analysis on a LayerNorm model (the PyTorch encoder's architecture)."""

from __future__ import annotations

import pytest
import torch

from grokviz.analysis.ablation import ablate_baseline, predict
from grokviz.analysis.attention import attention_to
from grokviz.analysis.baseline import baseline
from grokviz.analysis.fourier import neuron_logit_map
from grokviz.analysis.group import group_for
from grokviz.analysis.neurons import neuron_activations
from grokviz.analysis.projections import SITES, project_neurons_forward, project_neurons_logits
from grokviz.analysis.summary import summarise
from grokviz.core.config import Config, dataset_for
from grokviz.core.forward import forward
from grokviz.core.params import init_params

TORCH_ENCODER = dict(layernorm="post", biases="all", pos_embed="none", attention="bidirectional")


@pytest.mark.parametrize("mode", ["remove", "keep"])
@pytest.mark.parametrize("task", ["add", "mul"])
def test_neurons_site_through_the_forward_equals_the_linear_shortcut(grokked_run, mode, task) -> None:
    if task == "add":
        params, group = grokked_run.load(grokked_run.config.steps), None
    else:  # a discrete-log group: the pairs with 0 keep their activations
        cfg = Config(task="mul", p=23, d_model=32, d_mlp=64, n_heads=4, d_head=8, frac_train=0.5)
        params, group = init_params(cfg), group_for("mul", 23)
    base = baseline(params, group)
    for frequencies in ([1], [2, 5], [3, 4, 7]):
        shortcut = project_neurons_logits(base, frequencies, mode)
        general = project_neurons_forward(base, frequencies, mode)
        torch.testing.assert_close(general, shortcut, rtol=1e-4, atol=1e-4)
        assert (general - base.logits).abs().max() > 1e-2  # the ablation changed something


def test_neuron_logit_map_of_a_layernorm_model_is_its_jacobian_direction() -> None:
    # W_L's row for neuron n, for a post-LN model, is the change of the logits per unit of that
    # neuron up to one factor per input (1/sigma of the normalised stream): check the direction.
    cfg = Config(p=13, d_model=16, n_heads=2, d_head=8, d_mlp=32, **TORCH_ENCODER)
    generator = torch.Generator().manual_seed(0)
    params = {k: (v + 0.2 * torch.randn(v.shape, generator=generator)).double() for k, v in init_params(cfg).items()}
    tokens = torch.tensor([[3, 5, 13]])
    cache = {}
    forward(params, tokens, cache=cache, arch=cfg.architecture)
    post = cache["blocks.0.mlp.hook_post"][0, -1]  # [d_mlp]
    neuron, eps = 4, 1e-6

    def logits_with(delta: float) -> torch.Tensor:
        def nudge(act):
            act = act.clone()
            act[0, -1, neuron] = post[neuron] + delta
            return act

        return forward(params, tokens, hooks={"blocks.0.mlp.hook_post": nudge}, arch=cfg.architecture)[0]

    jacobian_row = (logits_with(eps) - logits_with(-eps)) / (2 * eps)  # [p]
    row = neuron_logit_map(params)[neuron]
    # The logits' mean over classes is unaffected by direction; compare centred directions.
    cosine = torch.nn.functional.cosine_similarity(jacobian_row - jacobian_row.mean(), row - row.mean(), dim=0)
    assert cosine > 0.99


def test_every_analysis_runs_on_the_torch_encoder_architecture(tmp_path) -> None:
    from grokviz.training.single import train

    cfg = Config(
        p=13, d_model=16, n_heads=2, d_head=8, d_mlp=32, frac_train=0.5, steps=60, dropout=0.1, **TORCH_ENCODER
    )
    run = train(cfg, tmp_path / "run", progress=False, threads=1)
    params, arch, dataset = run.load(60), cfg.architecture, dataset_for(cfg)
    base = baseline(params, None, arch)
    assert not arch.linear_readout
    for site in SITES:
        result = ablate_baseline(base, params, dataset, [1, 2], "remove", site)
        assert result.after["all"].loss != result.before["all"].loss, site
    # Keep-all at the embedding site is the model itself.
    kept = ablate_baseline(base, params, dataset, range(1, 7), "keep", "embedding")
    assert kept.after["all"].loss == pytest.approx(kept.before["all"].loss, rel=1e-5)
    acts = neuron_activations(params, arch)
    assert acts.shape == (13, 13, 32) and torch.equal(acts, base.acts)
    pattern = attention_to(params, arch)
    torch.testing.assert_close(pattern.sum(-1), torch.ones(2, 13, 13))
    # Without positional embeddings the '=' query cannot tell a from b: attention is symmetric.
    torch.testing.assert_close(pattern[..., 0], pattern[..., 1].transpose(1, 2), rtol=1e-5, atol=1e-6)
    prediction = predict(params, 3, 4, [1, 2], arch=arch)
    assert prediction.answer == int(base.logits[3 * 13 + 4].argmax())
    summary = summarise(cfg, 60, params)
    # all_loss / all_accuracy: every pair; the train and test parts average to it.
    n_train, n_test = len(dataset.train_idx), len(dataset.test_idx)
    mixed = (summary["train_loss"] * n_train + summary["test_loss"] * n_test) / (n_train + n_test)
    assert summary["all_loss"] == pytest.approx(mixed, rel=1e-9)
    assert summary["train_accuracy"] == pytest.approx(float(run.log().iloc[-1]["train_accuracy"]))
