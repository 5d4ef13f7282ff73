"""Every modular analysis on models with more than one block (docs/analysis.md, "More than one layer").

Two kinds of model make the values checkable: a grokked 1-layer model with a second block of
zeros appended (that block is the identity, so every analysis of its block 0 must equal the
1-layer model's), and a random 2-layer model (where the last block's Jacobian map must equal
``W_out @ W_U`` and the linear and forward neurons ablations must agree).
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from grokviz.analysis.ablation import ablate
from grokviz.analysis.attention import attention_layers, attention_to
from grokviz.analysis.baseline import baseline
from grokviz.analysis.layers import resolve_layer
from grokviz.analysis.logit_map import mean_logit_jacobian, neuron_logit_map
from grokviz.analysis.neurons import key_frequencies, layer_activations, neuron_activations, neuron_stats
from grokviz.analysis.progress import progress_measures
from grokviz.analysis.projections import ablated_logits, project_neurons_forward, project_neurons_logits
from grokviz.analysis.summary import summarise
from grokviz.core.config import Config, dataset_for
from grokviz.core.fast_path import forward_all_pairs
from grokviz.core.params import init_params, param_shapes
from grokviz.errors import GrokvizError


def with_zero_block(params: dict, cfg: Config) -> tuple[dict, Config]:
    """The model with an identity block 1 (every weight and bias zero) appended, and its config."""
    deeper = dataclasses.replace(cfg, n_layers=2)
    padded = {
        name: params[name] if name in params else torch.zeros(shape) for name, shape in param_shapes(deeper).items()
    }
    return padded, deeper


@pytest.fixture(scope="module")
def padded(grokked_run):
    cfg = grokked_run.config
    params = grokked_run.load(grokked_run.steps()[-1])
    deep, deep_cfg = with_zero_block(params, cfg)
    return params, cfg, deep, deep_cfg


@pytest.fixture(scope="module")
def random_two_layers():
    cfg = Config(p=13, d_model=32, n_heads=2, d_head=16, d_mlp=48, n_layers=2, seed=3)
    return init_params(cfg), cfg


def test_a_zero_second_block_leaves_every_block_0_analysis_as_the_1_layer_models(padded) -> None:
    params, cfg, deep, deep_cfg = padded
    arch = cfg.architecture
    torch.testing.assert_close(forward_all_pairs(deep, arch=arch), forward_all_pairs(params, arch=arch))
    one = neuron_activations(params, arch)
    torch.testing.assert_close(neuron_activations(deep, arch, layer=0), one)
    assert neuron_activations(deep, arch).abs().max() == 0  # default: the last block, all zero here
    # W_L of block 0 through the (identity) block 1 is the mean Jacobian: W_out @ W_U again.
    expected = neuron_logit_map(params)
    torch.testing.assert_close(
        neuron_logit_map(deep, arch, layer=0), expected, atol=1e-4 * expected.abs().max(), rtol=0
    )
    torch.testing.assert_close(attention_to(deep, arch, layer=0), attention_to(params, arch))
    assert attention_layers(deep, torch.tensor([3]), torch.tensor([5]), arch).shape == (2, 1, cfg.n_heads, 3)


def test_the_summary_reports_each_layer_and_the_key_frequencies_of_all(padded) -> None:
    params, cfg, deep, deep_cfg = padded
    step = 2000
    one, two = summarise(cfg, step, params), summarise(deep_cfg, step, deep)
    assert "layers" not in one and "n_layers" not in one  # the 1-layer JSON keeps its keys
    assert one["key_frequencies"], "the grokked model has key frequencies"
    assert two["n_layers"] == 2
    assert two["key_frequencies"] == one["key_frequencies"]  # block 1 is dead: block 0's alone
    assert two["neuron_frequency_counts"] == one["neuron_frequency_counts"]
    assert two["layers"][0]["neuron_frequency_counts"] == one["neuron_frequency_counts"]
    assert two["layers"][1]["n_dead_neurons"] == cfg.d_mlp and two["layers"][1]["key_frequencies"] == []
    assert two["n_neurons"] == 2 * cfg.d_mlp
    assert two["fraction_neurons_clustered"] == pytest.approx(one["fraction_neurons_clustered"] / 2)
    for key in ("restricted_loss", "excluded_loss", "test_loss", "gini_embed"):
        assert two[key] == pytest.approx(one[key], rel=1e-3, abs=1e-9)
    assert two["gini_unembed"] == 0.0  # the last block's W_L, zero here (docs: Gini of the last layer's W_L)


def test_neuron_ablation_of_a_chosen_layer(padded) -> None:
    params, cfg, deep, deep_cfg = padded
    dataset = dataset_for(cfg)
    keys = sorted(key_frequencies(neuron_stats(neuron_activations(params, cfg.architecture))))
    for mode in ("remove", "keep"):
        want = ablate(params, dataset, keys, mode, "neurons")
        got = ablate(deep, dataset, keys, mode, "neurons", layer=0)  # through the model's forward
        assert got.after["test"].loss == pytest.approx(want.after["test"].loss, rel=1e-3)
        assert torch.equal(got.correct_after, want.correct_after)
    assert ablate(params, dataset, keys, "remove", "neurons").after["test"].accuracy < 0.5  # the ablation bites
    # Block 1's neurons are all zero: projecting them changes nothing (the hook is on the right block).
    last = ablate(deep, dataset, keys, "remove", "neurons", layer=1)
    assert last.after["test"].loss == pytest.approx(last.before["test"].loss, rel=1e-6)


def test_progress_measures_of_a_deeper_model(padded) -> None:
    params, cfg, deep, deep_cfg = padded
    dataset = dataset_for(cfg)
    keys = sorted(key_frequencies(neuron_stats(neuron_activations(params, cfg.architecture))))
    one, two = progress_measures(params, dataset, keys), progress_measures(deep, dataset, keys)
    for key in ("restricted_loss", "excluded_loss", "train_loss", "gini_embed"):
        assert two[key] == pytest.approx(one[key], rel=1e-3, abs=1e-9)


def test_the_last_blocks_jacobian_is_w_out_w_u(random_two_layers) -> None:
    params, cfg = random_two_layers
    linear = params["blocks.1.mlp.W_out"] @ params["unembed.W_U"]
    torch.testing.assert_close(neuron_logit_map(params, cfg.architecture), linear)
    torch.testing.assert_close(mean_logit_jacobian(params, cfg.architecture, layer=1), linear, atol=1e-5, rtol=1e-4)
    earlier = neuron_logit_map(params, cfg.architecture, layer=0)  # through block 1's attention and MLP
    assert earlier.shape == (cfg.d_mlp, cfg.p) and not torch.allclose(
        earlier, params["blocks.0.mlp.W_out"] @ params["unembed.W_U"]
    )


def test_the_linear_and_forward_neurons_ablations_agree_on_the_last_block(random_two_layers) -> None:
    params, cfg = random_two_layers
    base = baseline(params, arch=cfg.architecture)  # the last block by default
    assert base.layer == 1 and base.linear_neurons
    for mode in ("remove", "keep"):
        torch.testing.assert_close(
            project_neurons_logits(base, [1, 2], mode),
            project_neurons_forward(base, [1, 2], mode),
            atol=1e-4,
            rtol=1e-4,
        )
    early = baseline(params, arch=cfg.architecture, layer=0)
    assert early.W_L is None and not early.linear_neurons  # an earlier block's site runs the model
    torch.testing.assert_close(early.acts, layer_activations(params, cfg.architecture)[0])
    changed = ablated_logits(early, [1, 2, 3, 4, 5, 6], "remove", "neurons")
    assert (changed - early.logits).abs().max() > 1e-3


def test_a_layer_outside_the_model_is_refused_in_words(random_two_layers) -> None:
    params, _ = random_two_layers
    assert resolve_layer(params, None) == 1
    with pytest.raises(GrokvizError, match=r"layer=2 .* allowed: 0\.\.1"):
        neuron_activations(params, layer=2)


def test_a_layer_is_refused_where_it_would_be_ignored(random_two_layers) -> None:
    """A layer chooses whose neurons are ablated: with another site, or with a baseline of another
    layer, it is refused rather than ignored; an earlier block's W_L needs the run's architecture."""
    params, cfg = random_two_layers
    dataset = dataset_for(cfg)
    with pytest.raises(GrokvizError, match="applies to site='neurons' only, not 'logits'"):
        ablate(params, dataset, [1], site="logits", layer=0)
    last = baseline(params, None, cfg.architecture, layer=1)
    with pytest.raises(GrokvizError, match="layer=0: the given baseline holds layer 1's neurons"):
        ablate(params, dataset, [1], site="neurons", base=last, layer=0)
    with pytest.raises(ValueError, match="needs the run's architecture"):
        neuron_logit_map(params, layer=0)
