"""Where the ``=`` position attends: the one place grokviz reads attention patterns.

Only the ``=`` position's output reaches the logits, so its pattern over the three key positions
(a, b, =) is the whole attention story of a 1-layer model. A deeper model has one such pattern
per block (``layer``; None: the last, see ``grokviz.analysis.layers``): an earlier block's
positions 0 and 1 also attend (to what precedes them), which is not read here. Pure: weights in,
tensors out.
"""

from __future__ import annotations

import torch
from einops import rearrange

from grokviz.analysis.layers import pattern_hook, resolve_layer
from grokviz.core.architecture import REFERENCE, Architecture
from grokviz.core.fast_path import all_pairs, forward_last
from grokviz.core.params import Params, n_layers_of, p_of


def attention_pattern(
    params: Params, a: torch.Tensor, b: torch.Tensor, arch: Architecture = REFERENCE, layer: int | None = None
) -> torch.Tensor:
    """a, b [batch] int64 -> [batch, head, key_pos (a, b, =)]: the '=' query's pattern per head of block ``layer``."""
    return attention_layers(params, a, b, arch)[resolve_layer(params, layer)]


def attention_to(params: Params, arch: Architecture = REFERENCE, layer: int | None = None) -> torch.Tensor:
    """[n_heads, p (a), p (b), 3 (key: a, b, =)]: the '=' query's attention pattern of block ``layer`` for every pair."""
    p = p_of(params)
    return rearrange(attention_pattern(params, *all_pairs(p), arch, layer), "(a b) head key -> head a b key", a=p)


def attention_layers(params: Params, a: torch.Tensor, b: torch.Tensor, arch: Architecture = REFERENCE) -> torch.Tensor:
    """a, b [batch] -> [layer, batch, head, key_pos (a, b, =)]: every block's '=' pattern, one forward."""
    cache: dict = {}
    with torch.no_grad():
        forward_last(params, a, b, cache=cache, arch=arch)
    return torch.stack([cache[pattern_hook(layer)] for layer in range(n_layers_of(params))])
