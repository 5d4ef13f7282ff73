"""What an ablation compares with: the un-ablated all-pairs quantities of one checkpoint, and
the loss and accuracy of all-pairs logits on the splits.

Owns (definitions in docs/analysis.md, "Frequency ablation"):

* :class:`Baseline` — the all-pairs logits of one checkpoint and, for the neurons site, its
  activations, ``W_L`` and (on first use) every frequency's 3x3 block of the activations' 2-D
  transform; its ``evaluate`` memoises the un-ablated metrics per dataset;
* :func:`baseline` — the full one, from one all-pairs forward;
* :func:`evaluate` — logits [p*p, p] -> loss and accuracy on train, test and all pairs
  (:class:`SplitMetrics`), and the correctness grid.

Speed (p = 113, one CPU core; numbers from scripts/bench_analysis.py): an ablation needs the
un-ablated all-pairs logits and neuron activations, one forward over p^2 pairs (~70 ms).
:func:`baseline` computes them once per checkpoint (keep it: the app caches it per step), plus,
on first use, every frequency's 3x3 block of the activations' 2-D transform (~10 ms). The logits
and embedding sites need only ``Baseline(p=p, logits=...)``; the neurons site also needs ``acts``
and ``W_L``.

All p^2 pairs are always evaluated (the projections are orthogonal only on the full grid);
metrics use only the pairs of the dataset (``div`` has no b = 0), and the correctness grid is
False on pairs outside it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import torch
import torch.nn.functional as F
from einops import rearrange

from grokviz.analysis.fourier import blocks_of, frequency_blocks, neuron_logit_map
from grokviz.analysis.group import Group, additive
from grokviz.analysis.layers import neurons_hook, resolve_layer
from grokviz.core.architecture import REFERENCE, Architecture
from grokviz.core.fast_path import forward_all_pairs
from grokviz.core.params import Params, n_layers_of, p_of
from grokviz.core.tasks import Dataset

SPLITS = ("train", "test", "all")


@dataclass
class SplitMetrics:
    loss: float  # mean cross-entropy, computed in float64
    accuracy: float


@dataclass
class Baseline:
    """The un-ablated all-pairs quantities of one checkpoint (compute once, reuse per change)."""

    p: int
    logits: torch.Tensor  # [p*p, p]
    acts: torch.Tensor | None  # [p (a), p (b), d_mlp] post-ReLU at position 2 (the neurons site needs it)
    acts_fourier: torch.Tensor | None = None  # [p, p, d_mlp] full fourier_2d(acts), only if a caller has it
    W_L: torch.Tensor | None = None  # [d_mlp, p] = W_out @ W_U (the linear neurons site needs it)
    group: Group | None = None  # None: the additive basis of Z_p, sign read from the dataset
    arch: Architecture = REFERENCE  # the model's; without a linear readout the neurons site reruns it
    params: Params | None = None  # the weights (the neurons site of a LayerNorm model needs them)
    layer: int = 0  # the block whose neurons ``acts`` holds (grokviz.analysis.layers)
    n_layers: int = 1  # the model's blocks: an earlier block's neurons site reruns the model

    _before: dict = field(default_factory=dict, repr=False)  # id(dataset) -> (dataset, evaluation)

    def evaluate(self, dataset: Dataset) -> tuple[dict[str, SplitMetrics], torch.Tensor]:
        """:func:`evaluate` of the un-ablated logits, memoised per dataset object."""
        stored = self._before.get(id(dataset))
        if stored is None or stored[0] is not dataset:
            stored = (dataset, evaluate(self.logits, dataset))
            self._before[id(dataset)] = stored
        return stored[1]

    @property
    def linear_neurons(self) -> bool:
        """Whether the logits are ``rest + acts @ W_L`` exactly: the last block's neurons, no LayerNorm after them."""
        return self.arch.linear_readout and self.layer == self.n_layers - 1 and self.W_L is not None

    @property
    def frame(self) -> Group:
        return self.group if self.group is not None else additive(self.p)

    @property
    def group_acts(self) -> torch.Tensor:
        """[n (l_a), n (l_b), d_mlp] the activations re-indexed by group element (``acts`` when additive)."""
        return self.frame.on_group(self.acts)

    @cached_property
    def blocks(self) -> torch.Tensor:
        """[K, 3, 3, d_mlp] every frequency's 3x3 block of the group activations' 2-D transform (not centred)."""
        if self.acts_fourier is not None:
            return blocks_of(self.acts_fourier)
        return frequency_blocks(self.group_acts)

    @cached_property
    def mlp_logits(self) -> torch.Tensor:
        """[n*n, p] the neurons' part of the group pairs' logits, acts @ W_L (only keep-at-neurons needs it)."""
        return rearrange(self.group_acts, "a b neuron -> (a b) neuron") @ self.W_L


def baseline(
    params: Params,
    group: Group | None = None,
    arch: Architecture = REFERENCE,
    layer: int | None = None,
    cache: dict | None = None,
) -> Baseline:
    """One all-pairs forward: logits and the activations of block ``layer`` (None: the last; their
    frequency blocks follow on first use). W_L comes with the last block's neurons only: an earlier
    block's neurons site runs the model again, and its W_L (a Jacobian) costs p backward passes.
    ``cache``: a dict that receives the forward's activations (every block's), for a caller that reads more."""
    p = p_of(params)
    layer = resolve_layer(params, layer)
    n_layers = n_layers_of(params)
    cache = {} if cache is None else cache
    logits = forward_all_pairs(params, cache, arch)  # [p*p, p]
    acts = rearrange(cache[neurons_hook(layer)], "(a b) neuron -> a b neuron", a=p)
    W_L = neuron_logit_map(params, arch, layer) if layer == n_layers - 1 else None
    return Baseline(
        p=p, logits=logits, acts=acts, W_L=W_L, group=group, arch=arch, params=params, layer=layer, n_layers=n_layers
    )


def evaluate(logits: torch.Tensor, dataset: Dataset) -> tuple[dict[str, SplitMetrics], torch.Tensor]:
    """logits [p*p, p] over all pairs -> (metrics per split, correctness grid [p, p] bool)."""
    p = dataset.p
    pair = dataset.a * p + dataset.b  # [n_pairs] index into the all-pairs axis
    chosen = logits[pair]  # [n_pairs, p]
    # Float64: a grokked model's loss is ~1e-7, below what fp32 log-softmax resolves.
    losses = F.cross_entropy(chosen.double(), dataset.labels, reduction="none")  # [n_pairs]
    correct = chosen.argmax(dim=-1) == dataset.labels  # [n_pairs]
    metrics = {}
    for split, index in (("train", dataset.train_idx), ("test", dataset.test_idx), ("all", None)):
        part_loss = losses if index is None else losses[index]
        part_correct = correct if index is None else correct[index]
        if len(part_loss) == 0:
            metrics[split] = SplitMetrics(loss=float("nan"), accuracy=float("nan"))
        else:
            metrics[split] = SplitMetrics(loss=float(part_loss.mean()), accuracy=float(part_correct.double().mean()))
    grid = torch.zeros(p * p, dtype=torch.bool)
    grid[pair] = correct
    return metrics, grid.reshape(p, p)
