"""Which block of a modular model an analysis reads: the one layer choice every analysis shares.

A modular model has 1 to 4 blocks. The analyses of neurons (FVE, frequencies, the probe, the
neurons-site ablation, the neurons-to-logits map W_L) and of attention read one block, chosen by
a ``layer`` argument: an int ``0 .. n_layers - 1``, or ``None`` for the **last** block. The last
block is the default because it is the one that writes to the logits directly (its W_L is exact
where the readout is linear) and because in a 1-layer model it is block 0, so every 1-layer
analysis is what it always was. Key frequencies are read from every block's neurons
(:func:`grokviz.analysis.neurons.all_layer_stats`). Pure helpers: weights in, names and ints out.
"""

from __future__ import annotations

from grokviz.core.params import Params, n_layers_of
from grokviz.errors import GrokvizError


def resolve_layer(params: Params, layer: int | None) -> int:
    """``layer`` checked against the model's blocks; None: the last block (0 for one layer)."""
    n_layers = n_layers_of(params)
    if layer is None:
        return n_layers - 1
    if not 0 <= int(layer) < n_layers:
        raise GrokvizError(f"layer={layer} is not a block of this {n_layers}-layer model; allowed: 0..{n_layers - 1}")
    return int(layer)


def neurons_hook(layer: int) -> str:
    """The hook of block ``layer``'s MLP neurons (post-activation): ``blocks.{layer}.mlp.hook_post``."""
    return f"blocks.{layer}.mlp.hook_post"


def pattern_hook(layer: int) -> str:
    """The hook of block ``layer``'s attention pattern: ``blocks.{layer}.attn.hook_pattern``."""
    return f"blocks.{layer}.attn.hook_pattern"


def is_last(params: Params, layer: int) -> bool:
    """Whether block ``layer`` is the model's last (the one whose MLP writes to the logits directly)."""
    return layer == n_layers_of(params) - 1


def layer_label(layer: int, n_layers: int) -> str:
    """A few words for a layer choice: "layer 0 (first)", "layer 1 (last)"."""
    if n_layers == 1:
        return "layer 0"
    where = " (last)" if layer == n_layers - 1 else " (first)" if layer == 0 else ""
    return f"layer {layer}{where}"
