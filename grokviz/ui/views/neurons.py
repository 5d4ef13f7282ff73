"""The Neurons tab's tables: one input's activations grouped by frequency cluster, the neuron to show
first, and a probe's term table for display."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
import torch


def neuron_groups(
    activations: torch.Tensor,
    frequency: torch.Tensor,
    clustered: torch.Tensor,
    dead: torch.Tensor,
    key_frequencies: Iterable[int],
) -> pd.DataFrame:
    """Activations [d_mlp] at one input -> frame (neuron, activation, group, order, key, jitter).

    Clustered neurons are grouped by frequency ('k=14'); the others are 'unclustered' and 'dead'.
    """
    acts = torch.as_tensor(activations).double().numpy()
    freq = torch.as_tensor(frequency).numpy()
    clustered = torch.as_tensor(clustered).bool().numpy()
    dead = torch.as_tensor(dead).bool().numpy()
    keys = {int(k) for k in key_frequencies}
    big = 10**6
    group = np.where(dead, "dead", np.where(clustered, np.char.add("k=", freq.astype(str)), "unclustered"))
    order = np.where(dead, big + 1, np.where(clustered, freq, big))
    key = clustered & np.isin(freq, list(keys))
    # A fixed horizontal offset per neuron (golden-ratio sequence): points spread within their
    # group and stay put while the step moves, so a neuron can be followed through training.
    jitter = (np.arange(len(acts)) * 0.6180339887) % 1.0 - 0.5
    return pd.DataFrame(
        {
            "neuron": np.arange(len(acts)),
            "activation": acts,
            "group": group,
            "order": order,
            "key": key,
            "jitter": jitter,
        }
    )


def probe_table(terms: pd.DataFrame, discrete_log: bool = False) -> pd.DataFrame:
    """A probe's term table for display: numbers kept, correlation of the constant shown as 'n/a';
    for the discrete-log basis the terms read cos(w·log a) and so on."""
    table = terms.copy()
    if discrete_log:
        table["term"] = [t.replace("wa", "w·log a").replace("wb", "w·log b") for t in table["term"]]
    table["correlation"] = [("n/a" if value != value else f"{value:+.3f}") for value in table["correlation"]]
    return table


def default_neuron(table: pd.DataFrame) -> int:
    """A neuron worth looking at first: the best-fitting one in the largest frequency cluster."""
    clustered = table[table["clustered"]]
    if not len(clustered):
        live = table[~table["dead"]]
        return int(live.sort_values("best_fve", ascending=False)["neuron"].iloc[0]) if len(live) else 0
    biggest = clustered["frequency"].value_counts().idxmax()
    group = clustered[clustered["frequency"] == biggest]
    return int(group.sort_values("best_fve", ascending=False)["neuron"].iloc[0])
