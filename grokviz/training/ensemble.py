"""Many models in one process: ``train_ensemble(configs, out)`` (command line: ``grokviz.ensemble``).

Every parameter gets a leading member axis (``[member, ...]``) and one step trains all members
at once: the forward is ``torch.func.vmap`` over :func:`grokviz.core.model.forward_last` (the single
run's own fast path, so there is one model definition), the backward is one ``autograd.grad``
of the summed member losses (members share no weights, so each gets exactly its own gradient),
and AdamW is the single run's update with the per-member learning rate and weight decay as
broadcast tensors.

Members may differ in ``seed``, ``data_seed``, ``lr``, ``weight_decay``, ``frac_train`` and the
Grokfast filter's ``grokfast_lamb`` (a ``[member]`` tensor in the filter, as lr and weight decay
are in AdamW); everything else is shared. Members with different ``frac_train`` have training sets of
different sizes, so they are trained in *groups* of equal size (one batched step per group per
step) rather than padded with a mask: a masked mean sums in another order than the single run
and a member would no longer equal the single run with its config (which tests check).

Output: a sweep folder ::

    sweep.json            {"format": "grokviz.sweep/1", "axes": {...}, "members": [...]}
    <member>/             an ordinary run folder (run.json, log.csv, step_*.safetensors)

Members keep the single run's log; checkpoints are only the first and last step by default
(``--save ends``) or the single run's full schedule with accuracy events (``--save schedule``).
There is no ``--resume`` for ensembles: rerun a member with ``grokviz.train`` to continue it.
"""

from __future__ import annotations

import contextlib
import itertools
import sys
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path

import torch
from torch.func import vmap

from grokviz.core.config import Config, dataset_for
from grokviz.core.model import Params, forward_last, init_params
from grokviz.errors import GrokvizError
from grokviz.storage.lock import FolderLock
from grokviz.storage.runs import LogWriter, require_new_folder, save_checkpoint, write_run_file
from grokviz.storage.sweeps import MEMBER_FIELDS, member_name, write_sweep_file
from grokviz.training import memory
from grokviz.training.device import configure_cpu, keep_freed_memory, matmul_precision, pick_device
from grokviz.training.graphs import replayable
from grokviz.training.grokfast import Grokfast
from grokviz.training.optim import AdamWState, Hyper
from grokviz.training.schedule import CUDA_FLUSH_EVERY, checkpoint_schedule, new_events
from grokviz.training.step import apply_update, cross_entropy64, log_record, loss_and_accuracy
from grokviz.training.writer import BackgroundWriter, Clock, ready_event, to_host

SAVE_MODES = ("ends", "schedule")


def grid_configs(
    base: Config, *, seeds=None, weight_decays=None, frac_trains=None, lrs=None, grokfast_lambs=None
) -> list[Config]:
    """The product of the given axes (an axis left out, None, keeps ``base``'s value), weight decay outermost.

    An axis given as an empty list is an error, never the base value: an empty range must not
    quietly train the default member."""
    given = {
        "weight_decays": weight_decays,
        "frac_trains": frac_trains,
        "lrs": lrs,
        "seeds": seeds,
        "grokfast_lambs": grokfast_lambs,
    }
    empty = [name for name, values in given.items() if values is not None and not len(values)]
    if empty:
        raise GrokvizError(f"an ensemble axis has no values: {', '.join(empty)}")
    axes = (
        [base.weight_decay] if weight_decays is None else weight_decays,
        [base.frac_train] if frac_trains is None else frac_trains,
        [base.lr] if lrs is None else lrs,
        [base.seed] if seeds is None else seeds,
        [base.grokfast_lamb] if grokfast_lambs is None else grokfast_lambs,
    )
    return [
        base.replace(weight_decay=wd, frac_train=frac, lr=lr, seed=seed, grokfast_lamb=lamb)
        for wd, frac, lr, seed, lamb in itertools.product(*axes)
    ]


def _check_members(configs: list[Config]) -> None:
    if not configs:
        raise GrokvizError("an ensemble needs at least one member")
    shared = [f.name for f in fields(Config) if f.name not in MEMBER_FIELDS]
    for cfg in configs[1:]:
        differs = [n for n in shared if getattr(cfg, n) != getattr(configs[0], n)]
        if differs:
            raise GrokvizError(f"members may differ only in {list(MEMBER_FIELDS)}; they differ in {differs}")
    names = [member_name(c) for c in configs]
    if len(set(names)) != len(names):
        raise GrokvizError("two members have the same config; give each axis distinct values")


def stack(trees: list[Params]) -> Params:
    """Per-member parameter dicts -> one dict of [member, ...] tensors."""
    return {name: torch.stack([tree[name] for tree in trees]) for name in trees[0]}


def _member_metrics(params: Params, a: torch.Tensor, b: torch.Tensor, labels: torch.Tensor):
    """One member: (loss, accuracy) of the single run's own forward and loss (vmapped below)."""
    return loss_and_accuracy(forward_last(params, a, b), labels)


def _member_loss(params: Params, a: torch.Tensor, b: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return cross_entropy64(forward_last(params, a, b), labels)


# params [member, ...], a/b/labels [member, batch] -> (loss [member] float64, accuracy [member]).
batched_metrics = vmap(_member_metrics)
batched_loss = vmap(_member_loss)  # -> loss [member]: the steps that log nothing


@dataclass
class Group:
    """Members with training sets of one size, trained by one batched step."""

    members: list[int]  # indices into the ensemble's configs
    configs: list[Config]
    params: Params  # [member, ...], requires grad
    state: AdamWState
    hyper: Hyper  # AdamW schedule, one column per member: [steps, 3, member]
    train: tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # a, b, labels: [member, n_train]
    test: tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # a, b, labels: [member, n_test]
    grokfast: Grokfast | None = None  # the gradient filter, lamb: [member]


def make_groups(configs: list[Config], dev: torch.device, group_size: int | None = None) -> list[Group]:
    """Members with training sets of one size, at most ``group_size`` of them per group (None: all)."""
    by_size: dict[int, list[int]] = {}
    datasets = [dataset_for(cfg) for cfg in configs]
    for i, data in enumerate(datasets):
        by_size.setdefault(len(data.train_idx), []).append(i)
    chunks = [
        same_size[start : start + (group_size or len(same_size))]
        for same_size in by_size.values()
        for start in range(0, len(same_size), group_size or len(same_size))
    ]
    groups = []
    for members in chunks:

        def split(which: str) -> tuple[torch.Tensor, ...]:
            parts = [
                [t[getattr(datasets[i], which)] for t in (datasets[i].a, datasets[i].b, datasets[i].labels)]
                for i in members
            ]
            return tuple(torch.stack(column).to(dev) for column in zip(*parts))

        params = stack([init_params(configs[i], dev) for i in members])
        params = {k: v.requires_grad_(True) for k, v in params.items()}
        group_configs = [configs[i] for i in members]
        groups.append(
            Group(
                members,
                group_configs,
                params,
                AdamWState.zeros_like(params),
                Hyper.of(group_configs, dev),
                split("train_idx"),
                split("test_idx"),
                Grokfast.of(group_configs, params),
            )
        )
    return groups


def step_group(group: Group, evaluate: bool, update: bool = True) -> torch.Tensor | None:
    """One full-batch step of every member of ``group``, as the single run's step does it.

    Returns [member, 4] metrics of the weights before the update (train loss, train accuracy,
    test loss, test accuracy) if ``evaluate``, then applies one AdamW update unless ``update`` is
    False (the last step is only evaluated).
    """
    metrics = None
    if not evaluate:
        train_loss = batched_loss(group.params, *group.train)  # [member]
    else:
        train_loss, train_acc = batched_metrics(group.params, *group.train)  # [member] each
        with torch.no_grad():
            test_loss, test_acc = batched_metrics(group.params, *group.test)
        metrics = torch.stack([train_loss.detach(), train_acc, test_loss, test_acc], dim=1)  # [member, 4]
    if update:
        # Members share no weights: the gradient of the sum is each member's own gradient, and
        # the update is the single run's, with [member] learning rates and weight decays.
        apply_update(group.params, group.state, train_loss.sum(), group.hyper, group.grokfast)
    return metrics


def group_steps(group: Group, use_graphs: bool) -> tuple[Callable[[], torch.Tensor], Callable[[], None]]:
    """(logged, plain) step functions of ``group``, each replayed as a CUDA graph on CUDA."""
    state = [*group.params.values(), *group.state.tensors(), *(group.grokfast.tensors() if group.grokfast else [])]
    logged = replayable(lambda: step_group(group, evaluate=True), state, use_graph=use_graphs)
    plain = replayable(lambda: step_group(group, evaluate=False), state, use_graph=use_graphs)
    return logged, plain


def train_ensemble(
    configs: list[Config],
    out: str | Path,
    *,
    axes: dict[str, list] | None = None,
    save: str = "ends",
    device: str = "auto",
    threads: int | None = None,
    progress: bool = True,
    use_graphs: bool = True,
    group_size: int | None = None,
) -> list[Path]:
    """Train every config as one member of a sweep folder ``out``; returns the member folders.

    ``use_graphs`` (CUDA only) replays each group's steps as CUDA graphs; False runs eagerly.
    ``group_size`` caps the members stepped together (None: all members with one train-set size):
    fewer at a time need less activation memory, and each still equals its single run.
    Refused, before anything is allocated or written, when the estimate exceeds the free memory."""
    _check_members(configs)
    if save not in SAVE_MODES:
        raise GrokvizError(f"save={save!r} must be one of {SAVE_MODES}")
    if group_size is not None and group_size < 1:
        raise GrokvizError(f"group_size={group_size} must be at least 1")
    out = Path(out)
    dev = pick_device(device)
    largest = max(configs, key=lambda cfg: cfg.frac_train)  # the largest training set sets the activations
    note = memory.check_fits(memory.estimate(largest, len(configs), group_size), dev)
    if note and progress:
        print(f"note: {note}", file=sys.stderr)
    if dev.type == "cpu":
        configure_cpu(threads)
        keep_freed_memory()
    # One writer per folder: the sweep folder and every member's run folder are locked, so a
    # `grokviz.train --resume` of a member refuses while the ensemble trains it.
    with contextlib.ExitStack() as locks:
        locks.enter_context(FolderLock(out, create=True))
        require_new_folder(out)
        for cfg in configs:
            locks.enter_context(FolderLock(out / member_name(cfg), create=True))
        with matmul_precision(configs[0], dev):
            return _train_ensemble(configs, out, dev, axes, save, progress, use_graphs, group_size)


def _train_ensemble(
    configs: list[Config],
    out: Path,
    dev: torch.device,
    axes: dict[str, list] | None,
    save: str,
    progress: bool,
    use_graphs: bool,
    group_size: int | None,
) -> list[Path]:
    first = configs[0]
    groups = make_groups(configs, dev, group_size)
    steps_of = [group_steps(group, use_graphs) for group in groups]  # before any file: see graphs.replayable
    out.mkdir(parents=True, exist_ok=True)
    axes = axes or {
        f: sorted({getattr(c, f) for c in configs}, key=str)
        for f in MEMBER_FIELDS
        if len({getattr(c, f) for c in configs}) > 1
    }
    write_sweep_file(out, configs, axes)
    folders = [out / member_name(c) for c in configs]
    for folder, cfg in zip(folders, configs):
        write_run_file(folder, cfg, source="grokviz.ensemble")
    logs = [LogWriter(folder) for folder in folders]
    fired: list[set] = [set() for _ in configs]
    schedule = checkpoint_schedule(first) if save == "schedule" else {0, first.steps}
    flush_every = CUDA_FLUSH_EVERY if dev.type == "cuda" else 1
    pending: list[tuple[int, Group, torch.Tensor, Params | None, float | torch.cuda.Event]] = []
    last_test = [0.0] * len(configs)  # for the progress bar
    clock = Clock(dev)

    def flush() -> None:
        """Hand pending log rows, and the checkpoints they may call for, to the writer (no host sync)."""
        rows = [
            (step, group, to_host(metrics), snapshot, elapsed) for step, group, metrics, snapshot, elapsed in pending
        ]
        pending.clear()

        def write() -> None:
            for step, group, metrics, snapshot, elapsed in rows:
                for index, (values, member) in enumerate(zip(metrics.tolist(), group.members)):
                    record = log_record(step, values, clock.seconds(elapsed))
                    logs[member].append(record)
                    last_test[member] = record["test_accuracy"]
                    crossed = save == "schedule" and new_events(record, fired[member])
                    if snapshot is not None and (crossed or step in schedule):
                        weights = {k: writer.fetch(v[index]) for k, v in snapshot.items()}  # this member only
                        save_checkpoint(folders[member], step, weights, configs[member])
            bar.set_postfix_str(
                f"test accuracy >= 99%: {sum(a >= 0.99 for a in last_test)}/{len(configs)}", refresh=False
            )

        writer.submit(write, ready=ready_event(dev))

    from tqdm import tqdm

    bar = tqdm(total=first.steps, disable=not progress, unit="step", dynamic_ncols=True, desc=f"{len(configs)} members")
    try:
        with BackgroundWriter() as writer:
            for step in range(first.steps + 1):
                last = step == first.steps
                is_log_step = step % first.log_every == 0 or last or step in schedule
                for group, (logged, plain) in zip(groups, steps_of):
                    # Weights before this step's update, only where a checkpoint may be written
                    # (accuracy events can fire at any log step).
                    keep = is_log_step and (save == "schedule" or step in schedule)
                    snapshot = {k: v.detach().clone() for k, v in group.params.items()} if keep else None
                    if last:
                        metrics = step_group(group, evaluate=True, update=False)
                    else:
                        metrics = (logged if is_log_step else plain)()
                    if is_log_step:
                        # Replays overwrite their outputs in place: keep a copy.
                        pending.append((step, group, metrics.clone(), snapshot, clock.mark()))
                if pending and (
                    step in schedule or last or len(pending) * first.log_every >= flush_every * len(groups)
                ):
                    flush()
                if not last:
                    bar.update(1)
    finally:
        bar.close()
        for log in logs:
            log.close()
    return folders
