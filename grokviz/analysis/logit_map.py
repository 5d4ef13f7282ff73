"""The neurons-to-logits map W_L of one block's MLP neurons (definition in docs/analysis.md).

Owns :func:`neuron_logit_map` (``W_L`` [d_mlp, p], how each neuron of a block writes to the
logits) and :func:`mean_logit_jacobian` (the mean over all pairs of d logits / d neuron at the
'=' position), which defines W_L wherever the rest of the network is not one matrix.

* The **last** block: ``W_out @ W_U`` exactly when no LayerNorm follows the MLP; with one,
  ``W_out @ C @ diag(w) @ W_U`` (C removes the mean over d_model), each neuron's map up to one
  positive factor per input. A 1-layer model's W_L is this, as it always was.
* An **earlier** block: its neurons reach the logits through the later blocks (attention reads
  the '=' position too, so the map depends on the input): W_L is the mean over all p^2 pairs of
  the Jacobian of the logits with respect to that block's neurons at the '=' position. Where the
  rest of the network is linear (the last block of a model without LayerNorm) that mean is
  ``W_out @ W_U`` exactly (tested), so the two definitions agree where both apply.

Pure functions of tensors.
"""

from __future__ import annotations

import torch

from grokviz.analysis.layers import is_last, resolve_layer
from grokviz.core.architecture import REFERENCE, Architecture
from grokviz.core.fast_path import all_pairs, forward_last
from grokviz.core.forward import unembed_matrix
from grokviz.core.params import Params, p_of


def neuron_logit_map(params: Params, arch: Architecture | None = None, layer: int | None = None) -> torch.Tensor:
    """W_L [d_mlp, p]: how each neuron of block ``layer`` (None: the last) writes to the logits (biases excluded).

    The last block, without LayerNorm: ``W_out @ W_U`` exactly. With one, a LayerNorm sits between
    the MLP and the logits (``ln_final`` in a pre-LN model, ``ln2`` in a post-LN one); it is linear
    apart from its division by each input's standard deviation, so ``W_L = W_out @ C @ diag(w) @ W_U``
    (C removes the mean over d_model) is each neuron's map to the logits up to one positive factor
    per input (docs/analysis.md). Its spectrum and Gini coefficient do not depend on that factor.
    An earlier block: :func:`mean_logit_jacobian` (``arch`` is then needed: it runs the model).
    """
    layer = resolve_layer(params, layer)
    if not is_last(params, layer):
        if arch is None:  # the Jacobian runs the model: its norms and mask must be the run's own
            raise ValueError(f"the W_L of layer {layer}, an earlier block, needs the run's architecture (arch=...)")
        return mean_logit_jacobian(params, arch, layer)
    block = f"blocks.{layer}"
    W_out = params[f"{block}.mlp.W_out"]  # [d_mlp, d_model]
    norm = "ln_final" if "ln_final.w" in params else f"{block}.ln2" if f"{block}.ln2.w" in params else None
    if norm is not None:
        W_out = (W_out - W_out.mean(dim=1, keepdim=True)) * params[f"{norm}.w"]
    return W_out @ unembed_matrix(params)


def mean_logit_jacobian(params: Params, arch: Architecture = REFERENCE, layer: int | None = None) -> torch.Tensor:
    """[d_mlp, p]: the mean over every pair (a, b) of d logits[c] / d neuron n of block ``layer`` at '='.

    Row n, column c: how much logit c moves per unit of neuron n's activation at the '=' position,
    averaged over the p^2 inputs (only that position's activation is varied; positions 0 and 1
    keep theirs, as in every neuron intervention here). The neurons reach the rest of the model
    only through ``W_out`` (``mlp_out = post @ W_out + b_out``), so the mean Jacobian is ``W_out``
    times the mean Jacobian with respect to ``mlp_out`` (d_model wide). A pair's ``mlp_out`` reaches
    only that pair's logits, so the sum over pairs of that Jacobian is one vector-Jacobian product
    of the summed logits per output class: p backward passes over the p^2 pairs from the logits
    back to block ``layer`` (batched ``CLASS_CHUNK`` at a time), no per-pair Jacobian stored.
    """
    layer = resolve_layer(params, layer)
    p = p_of(params)
    a, b = all_pairs(p)
    frozen = {name: tensor.detach() for name, tensor in params.items()}
    captured: list[torch.Tensor] = []

    def capture(act: torch.Tensor) -> torch.Tensor:  # [p*p, d_model] the '=' position's MLP output
        leaf = act.detach().requires_grad_(True)
        captured.append(leaf)
        return leaf

    with torch.enable_grad():
        logits = forward_last(frozen, a, b, hooks={f"blocks.{layer}.hook_mlp_out": capture}, arch=arch)  # [p*p, p]
        summed = logits.sum(dim=0)  # [p]: sum over pairs of each class's logit
        columns = []
        for start in range(0, p, CLASS_CHUNK):
            classes = torch.arange(start, min(start + CLASS_CHUNK, p))
            one_hot = torch.nn.functional.one_hot(classes, p).to(summed.dtype)  # [chunk, p]
            (grads,) = torch.autograd.grad(
                summed, captured[0], grad_outputs=one_hot, is_grads_batched=True, retain_graph=True
            )  # [chunk, p*p, d_model]
            columns.append(grads.mean(dim=1))  # [chunk, d_model]
    per_d_model = torch.cat(columns).T  # [d_model, p]: mean d logits / d mlp_out
    return (params[f"blocks.{layer}.mlp.W_out"].detach() @ per_d_model).detach()  # [d_mlp, p]


# Output classes per batched backward pass: each holds [chunk, p^2, d_mlp] gradients of the later
# blocks' MLP (8 x 9409 x 512 floats = 150 MB at p = 97), and fewer passes cost less Python overhead.
CLASS_CHUNK = 8
