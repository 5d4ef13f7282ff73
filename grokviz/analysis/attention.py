"""Where the ``=`` position attends: the one place grokviz reads attention patterns.

Only the ``=`` position's output reaches the logits, so its pattern over the three key positions
(a, b, =) is the whole attention story of this model. Pure: weights in, tensors out.
"""

from __future__ import annotations

import torch
from einops import rearrange

from grokviz.analysis.neurons import all_pairs
from grokviz.core.model import Params, forward_last


def attention_pattern(params: Params, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a, b [batch] int64 -> [batch, head, key_pos (a, b, =)]: the '=' query's pattern per head."""
    cache: dict = {}
    with torch.no_grad():
        forward_last(params, a, b, cache=cache)
    return cache["blocks.0.attn.hook_pattern"]


def attention_to(params: Params) -> torch.Tensor:
    """[n_heads, p (a), p (b), 3 (key: a, b, =)]: the '=' query's attention pattern for every pair."""
    p = params["unembed.W_U"].shape[1]
    return rearrange(attention_pattern(params, *all_pairs(p)), "(a b) head key -> head a b key", a=p)
