"""Where the ``=`` position attends: the one place grokviz reads attention patterns.

Only the ``=`` position's output reaches the logits, so its pattern over the three key positions
(a, b, =) is the whole attention story of this model. Pure: weights in, tensors out.
"""

from __future__ import annotations

import torch
from einops import rearrange

from grokviz.core.architecture import REFERENCE, Architecture
from grokviz.core.fast_path import all_pairs, forward_last
from grokviz.core.params import Params, p_of


def attention_pattern(params: Params, a: torch.Tensor, b: torch.Tensor, arch: Architecture = REFERENCE) -> torch.Tensor:
    """a, b [batch] int64 -> [batch, head, key_pos (a, b, =)]: the '=' query's pattern per head."""
    cache: dict = {}
    with torch.no_grad():
        forward_last(params, a, b, cache=cache, arch=arch)
    return cache["blocks.0.attn.hook_pattern"]


def attention_to(params: Params, arch: Architecture = REFERENCE) -> torch.Tensor:
    """[n_heads, p (a), p (b), 3 (key: a, b, =)]: the '=' query's attention pattern for every pair."""
    p = p_of(params)
    return rearrange(attention_pattern(params, *all_pairs(p), arch), "(a b) head key -> head a b key", a=p)
