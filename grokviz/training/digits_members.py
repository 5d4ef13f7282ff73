"""Adder (digits family) ensembles: members of one shape stepped together, each equal to its single run.

The sibling of ``grokviz.training.members`` for the 10-digit adder. A group holds members of one
shape (``d_model``, ``d_mlp``, ``n_heads``) with stacked ``[member, ...]`` parameters and AdamW
state; members may differ in ``seed``, ``data_seed``, ``lr`` and ``weight_decay``. One step is
``torch.func.vmap`` over the single run's own forward (``grokviz.core.digits_model.forward``, one
model definition), one ``autograd.grad`` of the summed member losses, the single run's global-norm
clipping taken per member, and the single run's AdamW update with ``[member]`` learning rates and
weight decays. Each member reads its single run's batch of each step (``training_batch``: a
function of its data seed and the step), drawn once per data seed and shared by the members that
have it, and is scored on its single run's validation set at each log row.

:func:`train_digits_members` is ``grokviz.training.ensemble.train_members`` for this family (same
arguments), so ``train_ensemble``, ``--resume`` and the Ray tasks of ``grokviz.training.distributed``
drive both the same way.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.func import vmap

from grokviz.core import digits_model
from grokviz.core.digits_config import DigitsConfig
from grokviz.core.digits_tasks import split_sequence
from grokviz.core.families import family_of
from grokviz.core.params import Params
from grokviz.storage.log import LogWriter
from grokviz.storage.resume import save_resume_state
from grokviz.storage.runs import open_run, save_checkpoint, write_run_file
from grokviz.storage.sweeps import SHAPE_FIELDS
from grokviz.training.digits import EXACT_EVENTS, training_batch, validation_pairs
from grokviz.training.members import MemberState, restore, stack
from grokviz.training.optim import AdamWState, Hyper, adamw_step, adder_learning_rate
from grokviz.training.schedule import checkpoint_schedule, events_already_fired, new_events
from grokviz.training.writer import BackgroundWriter, Clock


def shape_of(cfg) -> tuple[int, ...]:
    return tuple(getattr(cfg, name) for name in SHAPE_FIELDS)


def _member_logits(params: Params, x: torch.Tensor, tiny_attention: bool = False) -> torch.Tensor:
    """One member: the single run's training forward, answer logits [d_vocab, batch, 12] (vmapped
    below; vocabulary first, so that the float64 softmax of the loss vectorises over examples).
    ``tiny_attention``: attention by the C kernel (``grokviz.kernels.tiny_attention``)."""
    return digits_model.forward(params, x, answer_only=True, vocab_first=True, tiny_attention=tiny_attention)


# params [member, ...], x [member, batch, 33] -> logits [member, d_vocab, batch, 12].
_batched_logits = vmap(_member_logits, in_dims=(0, 0, None))


def member_losses(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """logits [member, d_vocab, batch, 12], labels [member, batch, 12] -> each member's float64 mean
    cross-entropy [member], as the single run's loss. Outside vmap: cross-entropy's batching rule
    is many times slower."""
    return F.cross_entropy(logits.double(), labels, reduction="none").mean((1, 2))


def member_scores(logits: torch.Tensor, labels: torch.Tensor):
    """logits [member, d_vocab, batch, 12], labels [member, batch, 12] -> each member's float64 loss,
    exact match and accuracy per answer position ([member], [member], [member, 12]), as the single
    run's ``answer_scores``."""
    right = logits.detach().argmax(1) == labels  # [member, batch, 12]
    return member_losses(logits, labels), right.all(-1).double().mean(1), right.double().mean(1)


@dataclass
class DigitsBatch:
    """Adder members of one shape, trained by one batched step."""

    members: list[int]  # indices into the ensemble's configs
    configs: list[DigitsConfig]
    params: Params  # [member, ...], requires grad
    state: AdamWState
    hyper: Hyper  # [steps, 3, member]
    val: tuple[torch.Tensor, torch.Tensor]  # input [member, n_val, 33], labels [member, n_val, 12]


def plan_digits_groups(configs: list[DigitsConfig], group_size: int | None = None) -> list[list[int]]:
    """Indices of the members of each group: one shape per group, at most ``group_size`` per group."""
    by_shape: dict[tuple, list[int]] = {}
    for i, cfg in enumerate(configs):
        by_shape.setdefault(shape_of(cfg), []).append(i)
    size = lambda same: group_size or len(same)  # noqa: E731
    groups = [same[s : s + size(same)] for same in by_shape.values() for s in range(0, len(same), size(same))]
    return sorted(groups, key=lambda members: members[0])  # in the members' order (digits_grid's)


def make_digits_groups(
    configs: list[DigitsConfig], dev: torch.device, group_size: int | None = None
) -> list[DigitsBatch]:
    groups = []
    for members in plan_digits_groups(configs, group_size):
        group_configs = [configs[i] for i in members]
        params = stack([digits_model.init_params(cfg, dev) for cfg in group_configs])
        params = {k: v.requires_grad_(True) for k, v in params.items()}
        vals = [split_sequence(validation_pairs(cfg).tokens) for cfg in group_configs]
        val = tuple(torch.stack(column).to(dev) for column in zip(*vals))
        hyper = Hyper.of(group_configs, dev)
        groups.append(DigitsBatch(members, group_configs, params, AdamWState.zeros_like(params), hyper, val))
    return groups


def clip_per_member(grads: list[torch.Tensor], max_norm: float) -> None:
    """The single run's ``clip_by_global_norm`` for each member of ``[member, ...]`` gradients, in place."""
    norms = torch.stack([torch.linalg.vector_norm(g.flatten(1), dim=1) for g in grads])  # [param, member]
    scale = max_norm / torch.clamp(torch.linalg.vector_norm(norms, dim=0), min=max_norm)  # [member]
    for g in grads:
        g.mul_(scale.view(-1, *(1,) * (g.dim() - 1)))


def training_loss(params: Params, x: torch.Tensor, labels: torch.Tensor, tiny_attention: bool = False) -> torch.Tensor:
    """params [member, ...], x [member, batch, 33], labels [member, batch, 12] -> loss [member].
    Exact match is not formed here: only log rows report it (:func:`batch_scores`), and its argmax
    over every answer cost about 5% of each compiled step."""
    return member_losses(_batched_logits(params, x, tiny_attention), labels)


def compiled_loss(device: torch.device | str = "cpu") -> Callable:
    """:func:`training_loss` through ``torch.compile``, on a CPU with the attention in the C kernel
    (``grokviz.kernels.tiny_attention``; a warning says so where it does not build): fused C++
    loops, 2.6-2.9x the member-steps per second of separate runs for 8 members (docs/cliff.md), after 5
    to 30 seconds of compiling per group shape. Members then equal their single runs to float
    tolerance, not bit for bit."""
    import torch._dynamo

    from grokviz.kernels import tiny_attention

    # One compiled graph per group shape (a sweep of many shapes must not fall back to eager).
    torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 64)
    use_kernel = torch.device(device).type == "cpu" and tiny_attention.available(warn=True)
    return torch.compile(functools.partial(training_loss, tiny_attention=use_kernel), dynamic=False)


@torch.no_grad()
def batch_scores(params: Params, x: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, exact match) [member] of the weights on a training batch, without gradients: a log
    row's ``train_loss`` and ``train_exact``."""
    loss, exact, _ = member_scores(_batched_logits(params, x, False), labels)
    return loss, exact


def step_digits_group(group: DigitsBatch, x: torch.Tensor, labels: torch.Tensor, loss_fn: Callable | None = None):
    """One AdamW step of every member on its batch (x [member, batch, 33], labels [member, batch,
    12]); returns the loss [member] of the weights before it. ``loss_fn``: :func:`training_loss`
    (the default) or its compiled form."""
    loss = (loss_fn or training_loss)(group.params, x, labels)
    names = list(group.params)
    # Members share no weights: the gradient of the sum is each member's own gradient.
    grads = list(torch.autograd.grad(loss.sum(), [group.params[n] for n in names]))
    clip = group.configs[0].grad_clip
    if clip > 0:
        clip_per_member(grads, clip)
    adamw_step(group.params, dict(zip(names, grads)), group.state, group.hyper)
    return loss.detach()


@torch.no_grad()
def evaluate_group(group: DigitsBatch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Every member on its validation set: (loss [member], exact [member], accuracy [member, 12])."""
    x, labels = group.val
    return member_scores(_batched_logits(group.params, x, False), labels)


def train_digits_members(
    configs: list[DigitsConfig],
    folders: list[Path],
    dev: torch.device,
    save: str,
    progress: bool,
    use_graphs: bool,
    group_size: int | None,
    *,
    prologue: Callable[[], None] | None = None,
    resume_every: int | None = None,
    start: tuple[int, list[MemberState]] | None = None,
    on_state_saved: Callable[[int], None] | None = None,
    compiled: bool = False,
) -> list[Path]:
    """``grokviz.training.ensemble.train_members`` for adder members (the same arguments; ``use_graphs``
    is unused: the adder trains on the CPU, as its single run does). ``compiled``: each group's
    training step through ``torch.compile`` (:func:`compiled_loss`)."""
    first = configs[0]
    start_step = 0 if start is None else start[0]
    groups = make_digits_groups(configs, dev, group_size)
    if start is not None:
        for group in groups:
            restore(group, start_step, [start[1][i] for i in group.members])
    if prologue is not None:
        prologue()
    for folder, cfg in zip(folders, configs):
        write_run_file(folder, cfg, source="grokviz.ensemble")
    columns = family_of(first).log_columns
    logs = [LogWriter(folder, columns, keep_below_step=start_step if start else None) for folder in folders]
    fired: list[set] = [events_already_fired(open_run(f), EXACT_EVENTS) if start else set() for f in folders]
    schedule = checkpoint_schedule(first) if save == "schedule" else {0, first.steps}
    clock = Clock(dev)
    best = [0.0] * len(configs)  # validation exact match, for the progress bar

    def write(step, group, rows, weights, moments) -> None:
        for index, member in enumerate(group.members):
            if moments is not None:  # the resume state before the checkpoint, as the single run
                save_resume_state(folders[member], step, *(tree[index] for tree in moments))
            row = rows[index]
            logs[member].append(row)
            best[member] = row["val_exact"]
            crossed = save == "schedule" and new_events(row, fired[member], EXACT_EVENTS)
            if weights is not None and (crossed or step in schedule):
                save_checkpoint(folders[member], step, weights[index], configs[member])
        if moments is not None and on_state_saved is not None:
            on_state_saved(step)
        bar.set_postfix_str(f"val exact >= 99%: {sum(b >= 0.99 for b in best)}/{len(configs)}", refresh=False)

    from tqdm import tqdm

    # Group after group, each to its last step: members finish in whole groups (a sweep stopped
    # midway holds finished members), and on a CPU stepping groups in turn gains nothing.
    bar = tqdm(
        total=first.steps * len(groups), initial=start_step * len(groups), disable=not progress, unit="step",
        dynamic_ncols=True, desc=f"{len(configs)} adder members in {len(groups)} group(s)",
    )  # fmt: skip
    try:
        with BackgroundWriter() as writer:
            for group in groups:
                _train_group(group, start_step, schedule, save, resume_every, clock, writer, write, bar, compiled)
    finally:
        bar.close()
        for log in logs:
            log.close()
    return folders


def _train_group(group, start_step, schedule, save, resume_every, clock, writer, write, bar, compiled) -> None:
    """Every step of one group, its log rows and files handed to ``writer`` (``write(step, group, ...)``)."""
    first = group.configs[0]
    step_fn = compiled_loss(group.state.step.device) if compiled else None
    for step in range(start_step, first.steps + 1):
        last = step == first.steps
        is_log = step % first.log_every == 0 or last or step in schedule
        saves_state = bool(resume_every) and is_log and step % resume_every == 0
        saves_state = saves_state and step != start_step and not last
        drawn = {}  # one draw per data seed, shared by the members that have it
        for cfg in group.configs:
            if cfg.split_seed not in drawn:
                drawn[cfg.split_seed] = training_batch(cfg, step)
        device = group.state.step.device
        x, labels = (
            torch.stack([drawn[cfg.split_seed][k] for cfg in group.configs]).to(device) for k in (0, 1)
        )  # [member, batch, 33], [member, batch, 12]
        host = None
        if is_log:  # validation and train scores of the weights before this step, as the single run's row
            val_loss, val_exact, val_acc = evaluate_group(group)
            loss, exact = batch_scores(group.params, x, labels)
            host = _host(group) if (save == "schedule" or step in schedule or saves_state) else None
        if not last:
            step_digits_group(group, x, labels, loss_fn=step_fn)
        if is_log:
            elapsed = clock.seconds(clock.mark())
            rows = []
            for i, cfg in enumerate(group.configs):
                row = {"step": step, "max_digits": cfg.max_digits_at(step), "lr": adder_learning_rate(cfg, step)}
                row |= {"val_loss": float(val_loss[i]), "val_exact": float(val_exact[i])}
                row |= {f"val_acc_{k}": v for k, v in enumerate(val_acc[i].tolist())}
                row |= {"train_loss": float(loss[i]), "train_exact": float(exact[i])}
                rows.append(row | {"elapsed_s": elapsed})
            weights = None if host is None else host[0]
            moments = host if saves_state else None
            writer.submit(lambda s=step, r=rows, w=weights, m=moments: write(s, group, r, w, m))
        if not last:
            bar.update(1)


def _host(group: DigitsBatch) -> tuple[list[Params], list[Params], list[Params]]:
    """Per member, CPU copies of (weights, exp_avg, exp_avg_sq) as they are now."""
    trees = (group.params, group.state.exp_avg, group.state.exp_avg_sq)
    return tuple(
        [{k: v[i].detach().to("cpu", copy=True) for k, v in tree.items()} for i in range(len(group.members))]
        for tree in trees
    )
