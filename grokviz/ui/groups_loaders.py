"""The Groups page's cached loaders (keys: run path + step + checkpoint mtime, as in
``grokviz.ui.loaders``, whose :func:`~grokviz.ui.loaders.opened_run`,
:func:`~grokviz.ui.loaders.load_params` and :func:`~grokviz.ui.loaders.arch_of` they read through).

What one checkpoint costs on S5 (order 120: 14,400 pairs, d_mlp 512, one CPU thread): the
all-pairs forward about 0.3 s, the neurons' irreps about 2.3 s, the character FVE and the
restricted / excluded loss about 0.15 s, an ablation 0.5 s (logits, embedding) to 5 s (neurons).
So every result is cached per checkpoint: small results (dicts of floats, the neurons' irreps) as
data, the all-pairs tensors as resources (shared, never copied) for the few steps being looked at.
"""

from __future__ import annotations

import streamlit as st

from grokviz.analysis import groups as analysis
from grokviz.analysis import groups_ablation
from grokviz.core.fast_path import forward_all_pairs
from grokviz.core.forward import unembed_matrix
from grokviz.core.groups import FiniteGroup
from grokviz.core.tasks import Dataset
from grokviz.ui.loaders import arch_of, load_params, opened_run

NEURONS_HOOK = "blocks.0.mlp.hook_post"


def group_of(run_path: str) -> FiniteGroup:
    """The run's group (``parse_group`` is memoised)."""
    return opened_run(run_path).config.finite_group


@st.cache_resource(max_entries=8, show_spinner=False)
def _dataset(run_path: str, config_json: str) -> Dataset:
    return opened_run(run_path).config.dataset()


def dataset(run_path: str) -> Dataset:
    """The run's own train/test split (deterministic from its config; keyed on the config's JSON)."""
    return _dataset(run_path, opened_run(run_path).config.to_json())


@st.cache_resource(max_entries=4, show_spinner=False)  # S5: 6.9 MB of logits + 29 MB of activations
def all_pairs(run_path: str, step: int, mtime: float):
    """(logits [n², n], activations [n², d_mlp]) of every pair at one checkpoint (read-only)."""
    cache: dict = {}
    logits = forward_all_pairs(load_params(run_path, step, mtime), cache, arch_of(run_path))
    return logits, cache[NEURONS_HOOK]


@st.cache_data(max_entries=64, show_spinner=False)
def checkpoint(run_path: str, step: int, mtime: float) -> dict:
    """One checkpoint's metrics per split, character FVE and the spectra of W_E and W_U (no neurons)."""
    group, data = group_of(run_path), dataset(run_path)
    params = load_params(run_path, step, mtime)
    logits, _ = all_pairs(run_path, step, mtime)
    return {
        "metrics": analysis.split_metrics(group, logits, data.train_idx, data.test_idx),
        "character_fve": analysis.character_fve(group, logits),
        "embedding_spectrum": analysis.embedding_spectrum(group, params["embed.W_E"]),
        "unembedding_spectrum": analysis.unembedding_spectrum(group, unembed_matrix(params)),
    }


@st.cache_data(max_entries=16, show_spinner=False)
def neurons(run_path: str, step: int, mtime: float) -> analysis.NeuronIrreps:
    """Each MLP neuron's irrep and FVE at one checkpoint (about 2.3 s on S5)."""
    return analysis.neuron_irreps(group_of(run_path), all_pairs(run_path, step, mtime)[1])


def key_irreps(run_path: str, step: int, mtime: float, threshold: float = 0.85) -> list[str]:
    """The key irreps of one checkpoint (``analysis.key_irreps``: by clustered neurons, else by character FVE)."""
    return analysis.key_irreps(
        neurons(run_path, step, mtime), checkpoint(run_path, step, mtime)["character_fve"], threshold
    )


@st.cache_data(max_entries=1024, show_spinner=False)
def spectra_point(run_path: str, step: int, mtime: float) -> tuple[dict, dict]:
    """(W_E spectrum, W_U spectrum) per irrep at one checkpoint: no forward, for the heatmap over the run."""
    group, params = group_of(run_path), load_params(run_path, step, mtime)
    return (
        analysis.embedding_spectrum(group, params["embed.W_E"]),
        analysis.unembedding_spectrum(group, unembed_matrix(params)),
    )


@st.cache_data(max_entries=1024, show_spinner=False)
def progress_point(run_path: str, step: int, mtime: float, key: tuple[str, ...]) -> dict:
    """One checkpoint's point of the Training tab: metrics, character FVE per irrep, and the restricted
    loss (all pairs) and excluded loss (train pairs) for the irreps ``key`` (character span), as
    progress.py takes them. Its own forward (not kept: the run has many checkpoints)."""
    group, data = group_of(run_path), dataset(run_path)
    logits = forward_all_pairs(load_params(run_path, step, mtime), arch=arch_of(run_path))
    restricted, excluded = analysis.restricted_and_excluded_loss(group, logits, list(key), None, data.train_idx)
    return {
        "metrics": analysis.split_metrics(group, logits, data.train_idx, data.test_idx),
        "character_fve": analysis.character_fve(group, logits),
        "restricted_loss": restricted,
        "excluded_loss": excluded,
    }


@st.cache_data(max_entries=1024, show_spinner=False)
def ablated(run_path: str, step: int, mtime: float, labels: tuple[str, ...], mode: str, site: str) -> dict:
    """Train/test loss and accuracy after removing (or keeping only) the irreps ``labels`` at ``site``."""
    group, data = group_of(run_path), dataset(run_path)
    logits = groups_ablation.ablate_irreps(
        group, load_params(run_path, step, mtime), arch_of(run_path), list(labels), mode, site
    )
    return analysis.split_metrics(group, logits, data.train_idx, data.test_idx)
