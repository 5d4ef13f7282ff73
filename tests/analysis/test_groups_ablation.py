"""Irrep ablations (grokviz.analysis.groups_ablation) against the modular frequency ablations they
generalise: on Z_p, "freq k" is frequency k and every site gives the modular logits; plus the
identities each site promises (keep-all, remove-none) and refusals in words."""

from __future__ import annotations

import pytest
import torch

from grokviz.analysis.ablation import ablate, site_baseline
from grokviz.analysis.groups import split_metrics
from grokviz.analysis.groups_ablation import ablate_irreps, project_neurons
from grokviz.analysis.irreps import irreps
from grokviz.analysis.projections import ablated_logits
from grokviz.core.config import Config
from grokviz.core.fast_path import forward_all_pairs
from grokviz.core.groups_config import GroupsConfig
from grokviz.core.params import init_params

SMALL = dict(d_model=24, n_heads=2, d_head=12, d_mlp=48)


@pytest.fixture(scope="module")
def z11():
    """A random model of modular addition mod 11, which is composition in Z11."""
    torch.manual_seed(0)
    params = init_params(Config(p=11, **SMALL), torch.device("cpu"))
    return {k: v.double() for k, v in params.items()}


@pytest.mark.parametrize("site", ["logits", "embedding", "neurons"])
@pytest.mark.parametrize("mode", ["remove", "keep"])
def test_on_z_p_every_site_equals_the_modular_frequency_ablation(z11, site, mode) -> None:
    frequencies = [2, 5]
    ours = ablate_irreps("Z11", z11, labels=[f"freq {k}" for k in frequencies], mode=mode, site=site)
    base = site_baseline(z11, site)
    theirs = ablated_logits(base, frequencies, mode, site, z11)
    torch.testing.assert_close(ours.double(), theirs.double(), rtol=0, atol=1e-9)


def test_keep_everything_at_the_embedding_and_remove_nothing_anywhere_leave_the_model_as_it_is() -> None:
    # (Keep-all at the logits or the neurons is not the original: what depends on (a, b) other than
    # through a·b, or lies across two irreps, is in no irrep's span; as on Z_p.)
    torch.manual_seed(1)
    cfg = GroupsConfig(group="S4", **SMALL)
    params = {k: v.double() for k, v in init_params(cfg, torch.device("cpu")).items()}
    logits = forward_all_pairs(params)
    every = [irrep.label for irrep in irreps("S4")]
    torch.testing.assert_close(ablate_irreps("S4", params, labels=every, mode="keep", site="embedding"), logits)
    for site in ("logits", "embedding", "neurons"):
        torch.testing.assert_close(ablate_irreps("S4", params, labels=[], mode="remove", site=site), logits)


def test_the_neurons_projection_splits_activations_into_kept_and_removed_parts() -> None:
    torch.manual_seed(2)
    acts = torch.randn(36, 5, dtype=torch.float64)  # S3: 6 x 6 pairs, 5 neurons
    kept = project_neurons("S3", acts, ["2,1"], "keep")
    removed = project_neurons("S3", acts, ["2,1"], "remove")
    mean = acts.mean(dim=0, keepdim=True)
    torch.testing.assert_close(kept + removed, acts + mean)  # each keeps the mean once
    # A neuron that is an entry of ρ(a)ρ(b) for the standard irrep is kept whole and removed whole.
    rho = torch.tensor(irreps("S3")[1].matrices)  # [6, 2, 2] the standard irrep "2,1"
    neuron = torch.einsum("aj,bj->ab", rho[:, 0, :], rho[:, :, 1]).reshape(36, 1)  # (ρ(a)ρ(b))[0, 1]
    neuron = neuron - neuron.mean()
    torch.testing.assert_close(project_neurons("S3", neuron, ["2,1"], "keep"), neuron)
    torch.testing.assert_close(project_neurons("S3", neuron, ["2,1"], "remove"), torch.zeros_like(neuron))


def test_split_metrics_are_the_modular_ablations_before_metrics(z11) -> None:
    cfg = Config(p=11, frac_train=0.4, **SMALL)
    data = cfg.dataset()
    result = ablate(z11, data, [1], "remove", "logits")
    ours = split_metrics("Z11", forward_all_pairs(z11), data.train_idx, data.test_idx)
    assert ours["train_loss"] == pytest.approx(result.before["train"].loss, abs=1e-9)
    assert ours["test_accuracy"] == pytest.approx(result.before["test"].accuracy, abs=1e-12)


def test_bad_choices_are_refused_in_words(z11) -> None:
    with pytest.raises(ValueError, match=r"'rot 9' not an irrep of Z11; choose from"):
        ablate_irreps("Z11", z11, labels=["rot 9"])
    with pytest.raises(ValueError, match=r"site='mlp' is unknown; choose one of \('logits', 'embedding', 'neurons'\)"):
        ablate_irreps("Z11", z11, labels=[], site="mlp")
