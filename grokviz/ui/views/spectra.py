"""Fourier spectra as frames: per-frequency norms of W_E and W_L (at a step and over the run), the
name of the neuron-to-logit map W_L for an architecture, and a neuron's 2-D spectrum gathered
into one norm per (frequency of a, frequency of b) for its heatmap. Pure; no Streamlit."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd
import torch

from grokviz.core.architecture import Architecture
from grokviz.ui.views.curves import step_spans


def spectrum_frame(norms: torch.Tensor | np.ndarray, key_frequencies: Iterable[int]) -> pd.DataFrame:
    """[K] per-frequency norms -> frame (frequency, norm, key)."""
    norms = np.asarray(torch.as_tensor(norms, dtype=torch.float64))
    keys = {int(k) for k in key_frequencies}
    freq = np.arange(1, len(norms) + 1)
    return pd.DataFrame({"frequency": freq, "norm": norms, "key": [int(k) in keys for k in freq]})


def spectrum_history(spectra: Mapping[int, np.ndarray]) -> pd.DataFrame:
    """step -> [K] norms  ->  long frame (step, start, end, frequency, share of the step's norm²)."""
    if not spectra:
        return pd.DataFrame(columns=["step", "start", "end", "frequency", "share"])
    spans = step_spans(list(spectra)).set_index("step")
    parts = []
    for step, norms in spectra.items():
        energy = np.asarray(norms, dtype=float) ** 2
        total = energy.sum()
        share = energy / total if total > 0 else energy
        parts.append(
            pd.DataFrame(
                {
                    "step": step,
                    "start": spans.loc[step, "start"],
                    "end": spans.loc[step, "end"],
                    "frequency": np.arange(1, len(share) + 1),
                    "share": share,
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def frequency_pair_norms(coefficients: torch.Tensor, centre: bool = True) -> np.ndarray:
    """2-D transform F [p, p] -> [K+1, K+1] grid, for a heatmap: the norm of each (frequency of a,
    frequency of b) block of F (``analysis.neurons.frequency_blocks`` gives the blocks themselves).

    Index 0 is the constant; k >= 1 gathers the cos k and sin k rows (or columns), so a neuron
    of frequency k lights up (k, 0), (0, k) and (k, k). ``centre`` drops F[0, 0] (the mean over
    all inputs), which would otherwise outshine every frequency.
    """
    F = torch.as_tensor(coefficients, dtype=torch.float64).clone()
    if centre:
        F[0, 0] = 0.0
    p = F.shape[0]
    K = p // 2  # for an even p (discrete-log basis) the last frequency has a cosine row only
    group = torch.zeros(p, dtype=torch.int64)
    group[1:] = torch.arange(1, K + 1).repeat_interleave(2)[: p - 1]
    one_hot = torch.nn.functional.one_hot(group, K + 1).double()  # [p, K+1]
    energy = one_hot.T @ F.pow(2) @ one_hot  # [K+1, K+1]
    return energy.sqrt().numpy()


def neuron_logit_map_name(arch: Architecture) -> str:
    """How W_L is formed for this architecture (docs/analysis.md): through a LayerNorm after the MLP."""
    W_U = "W_E[:p]ᵀ" if arch.unembed == "tied" else "W_U"
    if arch.layernorm == "none":
        return f"W_L = W_out {W_U}"
    return f"W_L = W_out C diag(w) {W_U} (through the {'final' if arch.layernorm == 'pre' else 'second'} LayerNorm)"
