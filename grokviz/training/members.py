"""An ensemble's batch of members: the members with training sets of one size (and one model shape
and batch size), their stacked ``[member, ...]`` parameters and AdamW state, and the one batched
step that trains them all.

The forward is ``torch.func.vmap`` over :func:`grokviz.core.fast_path.forward_last` (the single
run's own fast path, so there is one model definition), the backward is one ``autograd.grad``
of the summed member losses (members share no weights, so each gets exactly its own gradient),
and AdamW is the single run's update with the per-member learning rate and weight decay as
broadcast tensors. With minibatches each member draws its single run's indices
(``grokviz.training.batches``), and they are gathered per member before the vmapped forward.
``grokviz.training.ensemble`` drives these batches over the steps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.func import vmap

from grokviz.core.architecture import REFERENCE, Architecture
from grokviz.core.config import Config, dataset_for
from grokviz.core.fast_path import forward_last
from grokviz.core.params import Params, init_params
from grokviz.storage.sweeps import SHAPE_FIELDS
from grokviz.training.batches import BatchDraw
from grokviz.training.batches import draw_for as batch_draw_for
from grokviz.training.dropout import DropoutDraw, draw_for, stacked
from grokviz.training.graphs import replayable
from grokviz.training.grokfast import Grokfast
from grokviz.training.optim import AdamWState, Hyper
from grokviz.training.step import apply_update, cross_entropy64, loss_and_accuracy


def stack(trees: list[Params]) -> Params:
    """Per-member parameter dicts -> one dict of [member, ...] tensors."""
    return {name: torch.stack([tree[name] for tree in trees]) for name in trees[0]}


def _member_metrics(params: Params, a, b, labels, arch: Architecture = REFERENCE, masks=None):
    """One member: (loss, accuracy) of the single run's own forward and loss (vmapped below)."""
    return loss_and_accuracy(forward_last(params, a, b, arch=arch, dropout=masks), labels)


def _member_loss(params: Params, a, b, labels, arch: Architecture = REFERENCE, masks=None) -> torch.Tensor:
    return cross_entropy64(forward_last(params, a, b, arch=arch, dropout=masks), labels)


# params [member, ...], a/b/labels [member, batch] (masks: site -> [member, ...], or None) ->
# (loss [member] float64, accuracy [member]); batched_loss: the steps that log nothing.
# The architecture is shared by every member and is not batched.
_BATCHED = {
    (fn, with_masks): vmap(fn, in_dims=(0, 0, 0, 0, None, 0 if with_masks else None))
    for fn in (_member_metrics, _member_loss)
    for with_masks in (False, True)
}


def batched_metrics(params: Params, a, b, labels, arch: Architecture = REFERENCE, masks=None):
    return _BATCHED[_member_metrics, masks is not None](params, a, b, labels, arch, masks)


def batched_loss(params: Params, a, b, labels, arch: Architecture = REFERENCE, masks=None) -> torch.Tensor:
    return _BATCHED[_member_loss, masks is not None](params, a, b, labels, arch, masks)


@dataclass
class MemberBatch:
    """Members with training sets of one size, models of one shape and one batch size, trained by one batched step."""

    members: list[int]  # indices into the ensemble's configs
    configs: list[Config]
    params: Params  # [member, ...], requires grad
    state: AdamWState
    hyper: Hyper  # AdamW schedule, one column per member: [steps, 3, member]
    train: tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # a, b, labels: [member, n_train]
    test: tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # a, b, labels: [member, n_test]
    grokfast: Grokfast | None = None  # the gradient filter, lamb: [member]
    dropout: list[DropoutDraw] | None = None  # each member's masks (its single run's), None without dropout
    batches: list[BatchDraw] | None = None  # each member's minibatch indices (its single run's), None: full batch

    @property
    def arch(self) -> Architecture:
        return self.configs[0].architecture  # members share every non-member field


def plan_groups(configs: list[Config], group_size: int | None = None, datasets=None) -> list[list[int]]:
    """Indices of the members of each group: training sets of one size, models of one shape
    (``SHAPE_FIELDS``: n_layers included) and one batch size, at most ``group_size`` per group."""
    by_size: dict[tuple, list[int]] = {}
    datasets = datasets or [dataset_for(cfg) for cfg in configs]
    for i, data in enumerate(datasets):
        shape = tuple(getattr(configs[i], name) for name in SHAPE_FIELDS)
        by_size.setdefault((len(data.train_idx), *shape, configs[i].batch_size), []).append(i)
    return [
        same_size[start : start + (group_size or len(same_size))]
        for same_size in by_size.values()
        for start in range(0, len(same_size), group_size or len(same_size))
    ]


def make_groups(configs: list[Config], dev: torch.device, group_size: int | None = None) -> list[MemberBatch]:
    """Members with training sets of one size, at most ``group_size`` of them per group (None: all)."""
    datasets = [dataset_for(cfg) for cfg in configs]
    groups = []
    for members in plan_groups(configs, group_size, datasets):

        def split(which: str) -> tuple[torch.Tensor, ...]:
            parts = [
                [t[getattr(datasets[i], which)] for t in (datasets[i].a, datasets[i].b, datasets[i].labels)]
                for i in members
            ]
            return tuple(torch.stack(column).to(dev) for column in zip(*parts))

        params = stack([init_params(configs[i], dev) for i in members])
        params = {k: v.requires_grad_(True) for k, v in params.items()}
        group_configs = [configs[i] for i in members]
        n_train = len(datasets[members[0]].train_idx)
        batches = _member_draws(batch_draw_for, group_configs, n_train, dev)
        groups.append(
            MemberBatch(
                members,
                group_configs,
                params,
                AdamWState.zeros_like(params),
                Hyper.of(group_configs, dev),
                split("train_idx"),
                split("test_idx"),
                Grokfast.of(group_configs, params),
                # Masks for the rows a step trains on: the minibatch's, or the whole training set's.
                _member_draws(draw_for, group_configs, n_train if batches is None else batches[0].batch_size, dev),
                batches,
            )
        )
    return groups


def _member_draws(draw_for_run, configs: list[Config], n_rows: int, dev: torch.device) -> list | None:
    """Each member's draw source (its single run's: dropout masks or minibatch indices, from
    ``draw_for_run(cfg, n_rows, dev)``), or None where the group draws none (its members agree)."""
    draws = [draw_for_run(cfg, n_rows, dev) for cfg in configs]
    return None if draws[0] is None else draws


def step_rows(group: MemberBatch, step: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """a, b, labels [member, rows] of the update that follows ``step`` updates: every member's whole
    training set, or with minibatches each member's own draw (the indices its single run draws)."""
    if group.batches is None:
        return group.train
    rows = torch.stack([draw.at(step) for draw in group.batches])  # [member, batch_size]
    return tuple(column.gather(1, rows) for column in group.train)


def step_group(group: MemberBatch, evaluate: bool, update: bool = True) -> torch.Tensor | None:
    """One step of every member of ``group`` (full batch or minibatch), as the single run's step does it.

    Returns [member, 4] metrics of the weights before the update (train loss, train accuracy,
    test loss, test accuracy) if ``evaluate``, then applies one AdamW update unless ``update`` is
    False (the last step is only evaluated). With dropout or minibatches the logged train metrics
    are the model's own over the whole training set, from one more forward, as the single run's.
    """
    metrics, arch = None, group.arch
    # Drawn per step on the host from (seed, step), like the single run's (so never graph-captured).
    step = int(group.state.step) if group.dropout or group.batches else 0
    masks = stacked(group.dropout, step) if group.dropout else None
    rows = step_rows(group, step)  # a, b, labels: [member, rows]
    if not evaluate:
        train_loss = batched_loss(group.params, *rows, arch, masks)  # [member]
    else:
        train_loss, train_acc = batched_metrics(group.params, *rows, arch, masks)  # [member] each
        with torch.no_grad():
            logged_loss, logged_acc = train_loss.detach(), train_acc
            if masks is not None or group.batches is not None:  # logged: as the single run logs them
                logged_loss, logged_acc = batched_metrics(group.params, *group.train, arch, None)
            test_loss, test_acc = batched_metrics(group.params, *group.test, arch, None)
        metrics = torch.stack([logged_loss, logged_acc, test_loss, test_acc], dim=1)  # [member, 4]
    if update:
        # Members share no weights: the gradient of the sum is each member's own gradient, and
        # the update is the single run's, with [member] learning rates and weight decays.
        apply_update(group.params, group.state, train_loss.sum(), group.hyper, group.grokfast)
    return metrics


def group_steps(group: MemberBatch, use_graphs: bool) -> tuple[Callable[[], torch.Tensor], Callable[[], None]]:
    """(logged, plain) step functions of ``group``, each replayed as a CUDA graph on CUDA."""
    state = [*group.params.values(), *group.state.tensors(), *(group.grokfast.tensors() if group.grokfast else [])]
    logged = replayable(lambda: step_group(group, evaluate=True), state, use_graph=use_graphs)
    plain = replayable(lambda: step_group(group, evaluate=False), state, use_graph=use_graphs)
    return logged, plain


# Per member: (fp32 weights, exp_avg, exp_avg_sq) after ``step`` updates, as ``load_resume_state`` reads them.
MemberState = tuple[Params, Params, Params]


def restore(group: MemberBatch, step: int, states: list[MemberState]) -> None:
    """Put the members' saved weights and AdamW moments into ``group``, which continues at ``step``."""
    with torch.no_grad():
        for target, index in ((group.params, 0), (group.state.exp_avg, 1), (group.state.exp_avg_sq, 2)):
            for name, tensor in target.items():
                tensor.copy_(torch.stack([state[index][name] for state in states]))
        group.state.step.fill_(step)
