"""The Prediction & attention tab's data: where the '=' position attends for one input, and the
per-frequency waves over the classes c that sum to the logits."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from grokviz.analysis.attention import attention_pattern
from grokviz.core.architecture import REFERENCE, Architecture


def attention_at(params, a: int, b: int, arch: Architecture = REFERENCE, layer: int | None = None) -> np.ndarray:
    """[n_heads, 3]: where the '=' position of block ``layer`` (None: the last) attends (to a, to b,
    to '=') for the one input (a, b)."""
    pattern = attention_pattern(params, torch.tensor([int(a)]), torch.tensor([int(b)]), arch, layer)
    return pattern[0].double().numpy()


def waves_frame(frequencies: Sequence[int], components: torch.Tensor | None) -> pd.DataFrame:
    """Prediction.components [n, p (class c)] -> long (c, series, value), plus their sum."""
    if components is None or not len(frequencies):
        return pd.DataFrame(columns=["c", "series", "value"])
    values = torch.as_tensor(components).double().numpy()
    p = values.shape[1]
    parts = [
        pd.DataFrame({"c": np.arange(p), "series": f"k={k}", "value": values[i]}) for i, k in enumerate(frequencies)
    ]
    parts.append(pd.DataFrame({"c": np.arange(p), "series": "sum", "value": values.sum(axis=0)}))
    return pd.concat(parts, ignore_index=True)
