"""The neuron probe of a groups run (``grokviz.analysis.groups_probe``): a neuron's fit by its irrep
is the ``keep`` projection of ``project_neurons`` and its R² is the neuron's FVE; a neuron made of
one irrep is fitted exactly, noise is not, and bad pairs and irreps are refused in words."""

from __future__ import annotations

import numpy as np
import pytest

from grokviz.analysis import groups as analysis
from grokviz.analysis import groups_probe
from grokviz.analysis.groups_ablation import project_neurons
from grokviz.core.fast_path import forward_all_pairs
from grokviz.core.groups import parse_group
from grokviz.core.groups_config import GroupsConfig
from grokviz.core.params import init_params


@pytest.mark.parametrize("name", ["D4", "Z7", "A4", "S4"])
def test_the_fit_is_the_keep_projection_and_its_r2_is_the_fve(name) -> None:
    cfg = GroupsConfig(group=name, d_model=32, d_mlp=24, n_heads=2, d_head=16)
    group = cfg.finite_group
    cache: dict = {}
    forward_all_pairs(init_params(cfg), cache, cfg.architecture)
    acts = cache["blocks.0.mlp.hook_post"]  # [n², d_mlp]
    neurons = analysis.neuron_irreps(group, acts)
    for i in np.flatnonzero(~neurons.dead)[:6]:
        label = neurons.labels[neurons.irrep[i]]
        fit = groups_probe.irrep_fit(group, acts[:, i], label)[:, 0]
        assert groups_probe.r_squared(acts[:, i], fit) == pytest.approx(neurons.fve[i], abs=1e-9)
        kept = project_neurons(group, acts[:, i : i + 1].double(), [label], "keep")[:, 0].numpy()
        np.testing.assert_allclose(fit, kept, atol=1e-9)


def test_a_neuron_made_of_one_irrep_is_fitted_exactly() -> None:
    group = parse_group("S4")
    rho = next(irrep for irrep in analysis.irreps(group) if irrep.label == "3,1").matrices  # [n, 3, 3]
    n = group.order
    a, b = np.divmod(np.arange(n * n), n)
    neuron = 0.5 + rho[a, 0, 1] - 2 * rho[b, 2, 2] + 3 * rho[a, 1, 0] * rho[b, 0, 2]  # [n²]
    acts = np.stack([neuron, np.random.default_rng(1).standard_normal(n * n)], axis=1)  # [n², 2]
    frame = groups_probe.neuron_fit(group, acts, {0: "3,1", 1: "2,2"}, 5, 17)
    assert list(frame.columns) == ["neuron", "irrep", "actual", "fit", "residual", "r2"]
    row = frame.iloc[0]
    assert row["actual"] == pytest.approx(neuron[5 * n + 17]) and row["fit"] == pytest.approx(row["actual"])
    assert row["r2"] == pytest.approx(1.0) and abs(row["residual"]) < 1e-9
    assert 0 <= frame.iloc[1]["r2"] < 0.5  # noise is not explained by one irrep
    with pytest.raises(ValueError, match="not a pair of S4"):
        groups_probe.neuron_fit(group, acts, {0: "3,1"}, 24, 0)
    with pytest.raises(ValueError, match="not an irrep of S4"):
        groups_probe.irrep_fit(group, acts, "rot 1")


def test_the_character_readout_on_z_p_is_the_modular_prediction() -> None:
    """On Z_p each irrep "freq k"'s part of the right answer's logit is frequency k's contribution
    in the explorer's Prediction tab (its wave at c = a + b, where the sine part vanishes)."""
    import torch

    from grokviz.analysis.ablation import predict
    from grokviz.core.config import Config

    torch.manual_seed(3)
    params = {k: v.double() for k, v in init_params(Config(p=13, d_model=24, d_mlp=48, n_heads=2, d_head=12)).items()}
    logits = forward_all_pairs(params)
    for a, b in ((2, 5), (11, 9)):
        ours = groups_probe.character_readout("Z13", logits[a * 13 + b], a, b)
        theirs = predict(params, a, b, list(range(1, 7)), label=(a + b) % 13)
        assert ours.label == (a + b) % 13 and ours.answer == theirs.answer
        for k in range(1, 7):
            assert ours.contributions[f"freq {k}"] == pytest.approx(theirs.contributions[k], abs=1e-9)
        assert ours.mean == pytest.approx(theirs.mean_logit, abs=1e-9)


def test_a_logit_made_of_one_character_is_read_as_that_irrep() -> None:
    from grokviz.analysis.irreps import irreps

    group = parse_group("S4")
    standard = next(irrep for irrep in irreps(group) if irrep.label == "3,1")
    a, b = 5, 17
    c = np.arange(group.order)
    row = 1.5 + 3.0 * standard.character[group.table[group.table[a, b], group.inverse[c]]]  # [n]
    out = groups_probe.character_readout(group, row, a, b)
    assert out.answer == out.label == group.table[a, b]
    assert out.coefficients["3,1"] == pytest.approx(3.0) and out.mean == pytest.approx(1.5)
    assert out.contributions["3,1"] == pytest.approx(9.0)  # α χ(e) = 3 x 3
    assert all(abs(v) < 1e-12 for label, v in out.coefficients.items() if label != "3,1")
