"""The pieces of a training step that the single run and the ensemble share: the float64 loss,
accuracy, backward + Grokfast filter + AdamW update, and the layout of a log row."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from grokviz.core.params import Params
from grokviz.training.grokfast import Grokfast
from grokviz.training.optim import AdamWState, Hyper, adamw_step


def cross_entropy64(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """logits [batch, p], labels [batch] -> mean loss as a 0-d float64 device tensor."""
    # Float64 loss: at the end of training the loss is ~1e-7 and fp32 log-softmax loses it.
    return F.cross_entropy(logits.double(), labels)


def loss_and_accuracy(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """logits [batch, p], labels [batch] -> (float64 loss, accuracy) as 0-d device tensors."""
    accuracy = (logits.argmax(dim=-1) == labels).double().mean()
    return cross_entropy64(logits, labels), accuracy


def apply_update(
    params: Params, state: AdamWState, loss: torch.Tensor, hyper: Hyper, grokfast: Grokfast | None = None
) -> None:
    """Backward from ``loss``, the Grokfast filter if any, and one AdamW update of ``params`` in place."""
    grads = dict(zip(params, torch.autograd.grad(loss, list(params.values()))))
    if grokfast is not None:
        grads = grokfast.filter(grads, state.step)  # before adamw_step counts this update
    adamw_step(params, grads, state, hyper)


def log_record(step: int, metrics: list[float], elapsed_s: float) -> dict[str, float]:
    """A log row from the four metrics of a step (the trainers' one layout)."""
    train_loss, train_accuracy, test_loss, test_accuracy = metrics
    return {
        "step": step,
        "train_loss": train_loss,
        "train_accuracy": train_accuracy,
        "test_loss": test_loss,
        "test_accuracy": test_accuracy,
        "elapsed_s": elapsed_s,
    }
