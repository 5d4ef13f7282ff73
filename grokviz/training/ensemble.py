"""Many models in one process: ``train_ensemble(configs, out)`` (command line: ``grokviz ensemble``).

Every parameter gets a leading member axis (``[member, ...]``) and one step trains all members
at once (``grokviz.training.members``: the batched step, one model definition with the single run).

Members may differ in ``seed``, ``data_seed``, ``lr``, ``weight_decay``, ``frac_train``, the
Grokfast filter's ``grokfast_lamb`` (a ``[member]`` tensor in the filter, as lr and weight decay
are in AdamW), the model's sizes and depth (``n_layers``) and ``batch_size``; everything else is
shared. Members with different ``frac_train`` have training sets of different sizes, so they are
trained in *groups* of equal size (one batched step per group per step) rather than padded with a
mask: a masked mean sums in another order than the single run and a member would no longer equal
the single run with its config (which tests check). Members of another shape, depth or batch size
are their own groups in the same way.

Output: a sweep folder ::

    sweep.json            {"format": "grokviz.sweep/1", "axes": {...}, "members": [...]}
    <member>/             an ordinary run folder (run.json, log.csv, step_*.safetensors)

Members keep the single run's log; checkpoints are only the first and last step by default
(``--save ends``) or the single run's full schedule with accuracy events (``--save schedule``).
With ``resume_every`` each member also keeps the single run's ``resume.safetensors`` (fp32 weights
and AdamW moments) every that many steps, and a group can start from its members' resume state:
``grokviz.training.distributed`` uses both for ``--resume`` and for re-running a group whose Ray
worker died.
"""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path

import torch

from grokviz.core.config import Config
from grokviz.core.families import family_of
from grokviz.core.params import Params
from grokviz.errors import GrokvizError
from grokviz.storage.lock import FolderLock
from grokviz.storage.log import LogWriter
from grokviz.storage.resume import save_resume_state
from grokviz.storage.runs import open_run, require_new_folder, save_checkpoint, write_run_file
from grokviz.storage.sweeps import member_fields, member_name, write_sweep_file
from grokviz.training import memory, trackers
from grokviz.training.device import configure_cpu, keep_freed_memory, matmul_precision, pick_device
from grokviz.training.dropout import capturable
from grokviz.training.members import MemberBatch, MemberState, group_steps, make_groups, restore, step_group
from grokviz.training.schedule import CUDA_FLUSH_EVERY, checkpoint_schedule, events_already_fired, new_events
from grokviz.training.step import log_record
from grokviz.training.writer import BackgroundWriter, Clock, ready_event, to_host

SAVE_MODES = ("ends", "schedule")


@dataclass(frozen=True)
class EnsembleOptions:
    """How to train a sweep, not what (nothing here is stored in the run): the keyword arguments
    that :func:`train_ensemble` and ``grokviz.training.distributed.run_sweep`` both take.

    ``save``: which checkpoints each member keeps (:data:`SAVE_MODES`). ``use_graphs`` (CUDA only)
    replays each group's steps as CUDA graphs; False runs eagerly. ``group_size`` caps the members
    stepped together (None: all members with one train-set size): fewer at a time need less
    activation memory, and each still equals its single run."""

    save: str = "ends"
    device: str = "auto"
    threads: int | None = None
    progress: bool = True
    use_graphs: bool = True
    group_size: int | None = None
    compile: bool = False  # adder members: each group's step through torch.compile (digits_members)

    def __post_init__(self) -> None:
        if self.save not in SAVE_MODES:
            raise GrokvizError(f"save={self.save!r} must be one of {SAVE_MODES}")
        if self.group_size is not None and self.group_size < 1:
            raise GrokvizError(f"group_size={self.group_size} must be at least 1")


def check_members(configs: list[Config]) -> None:
    if not configs:
        raise GrokvizError("an ensemble needs at least one member")
    kinds = {type(cfg) for cfg in configs}
    if len(kinds) > 1:
        raise GrokvizError(f"members must be of one task family; these mix {sorted(k.family for k in kinds)}")
    # Every field of the members' own class: a groups sweep's members share their group too.
    swept = member_fields(configs[0])
    shared = [f.name for f in fields(type(configs[0])) if f.name not in swept]
    for cfg in configs[1:]:
        differs = [n for n in shared if getattr(cfg, n) != getattr(configs[0], n)]
        if differs:
            raise GrokvizError(f"members may differ only in {list(swept)}; they differ in {differs}")
    names = [member_name(c) for c in configs]
    if len(set(names)) != len(names):
        raise GrokvizError("two members have the same config; give each axis distinct values")


def train_ensemble(
    configs: list[Config],
    out: str | Path,
    *,
    axes: dict[str, list] | None = None,
    tracker: str | None = None,
    **options,
) -> list[Path]:
    """Train every config as one member of a sweep folder ``out``; returns the member folders.

    ``options``: the fields of :class:`EnsembleOptions` (how to train). ``axes``: what ``sweep.json``
    names as the sweep's axes (None: the member fields that differ). ``tracker``: also send each
    member's log rows to ``"tensorboard"``, ``"wandb"`` or ``"mlflow"``, one tracker run per member
    in its own folder (``training.trackers``; modular and group members).
    Refused, before anything is allocated or written, when the estimate exceeds the free memory."""
    check_members(configs)
    opts = EnsembleOptions(**options)
    if tracker is not None:
        trackers.require(tracker)  # before anything is written
        if configs[0].family == "digits":
            raise GrokvizError(
                "--tracker: adder ensembles do not send to trackers yet; send the members afterwards with "
                "grokviz convert to-tracker MEMBER --tracker NAME"
            )
    out = Path(out)
    require_new_folder(out, other_choice=" or pass --resume")
    dev = pick_device(opts.device)
    note = memory.check_fits(memory.estimate_sweep(configs, opts.group_size), dev)
    if note and opts.progress:
        print(f"note: {note}", file=sys.stderr)
    if dev.type == "cpu":
        configure_cpu(opts.threads)
        keep_freed_memory()
    folders = [out / member_name(c) for c in configs]

    def write_sweep() -> None:
        out.mkdir(parents=True, exist_ok=True)
        write_sweep_file(out, configs, axes or sweep_axes(configs))

    # One writer per folder: the sweep folder and every member's run folder are locked, so a
    # `grokviz train --resume` of a member refuses while the ensemble trains it.
    with contextlib.ExitStack() as locks:
        locks.enter_context(FolderLock(out, create=True))
        for folder in folders:
            locks.enter_context(FolderLock(folder, create=True))
        with precision(configs[0], dev):
            trainer = trainer_of(configs[0], opts.compile)
            if tracker is not None:  # train_members' keyword (adder members are refused above)
                trainer = functools.partial(trainer, tracker=tracker)
            return trainer(
                configs, folders, dev, opts.save, opts.progress, opts.use_graphs, opts.group_size, prologue=write_sweep
            )


def precision(cfg, dev: torch.device) -> contextlib.AbstractContextManager:
    """The modular config's matmul precision while training (the adder has no such setting)."""
    return contextlib.nullcontext() if cfg.family == "digits" else matmul_precision(cfg, dev)


def trainer_of(cfg, compiled: bool = False) -> Callable[..., list[Path]]:
    """The batched trainer of ``cfg``'s family: :func:`train_members` (modular and groups members), or
    ``grokviz.training.digits_members.train_digits_members`` for adder members (each with the same
    arguments). ``compiled`` (adder only; refused otherwise) compiles each group's step."""
    if cfg.family == "digits":
        from grokviz.training.digits_members import train_digits_members

        return functools.partial(train_digits_members, compiled=compiled)
    if compiled:
        raise GrokvizError("compile applies to adder ensembles only; the modular ensemble has CUDA graphs instead")
    return train_members


def sweep_axes(configs: list[Config]) -> dict[str, list]:
    """The member fields with more than one value among ``configs``, and their values."""
    return {
        f: sorted({getattr(c, f) for c in configs}, key=str)
        for f in member_fields(configs[0])
        if len({getattr(c, f) for c in configs}) > 1
    }


def train_members(
    configs: list[Config],
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
    tracker: str | None = None,
) -> list[Path]:
    """Train ``configs`` into the run folders ``folders`` (``prologue`` runs before the first file).

    ``resume_every``: also write each member's resume state every that many steps (before the step's
    update, as the single run does). ``start`` = (step, one state per member): continue from there,
    keeping the log rows and checkpoints before ``step``. ``on_state_saved(step)`` is called in the
    writer thread once every member's resume state of ``step`` is on disk. ``tracker``: one tracker
    run per member (``training.trackers``), sent each row as it is written."""
    first = configs[0]
    if (start is not None or resume_every) and first.grokfast != "none":
        # Member resume states hold weights and AdamW moments, not the filter's state: a resumed
        # member would not equal its uninterrupted run, so this is refused rather than approximated.
        raise GrokvizError(
            "a sweep with a Grokfast filter cannot be resumed or spread over Ray yet "
            "(its filter state is not saved per member); train it in one process without --resume"
        )
    start_step = 0 if start is None else start[0]
    groups = make_groups(configs, dev, group_size)
    if start is not None:
        for group in groups:
            restore(group, start_step, [start[1][i] for i in group.members])
    use_graphs = capturable(use_graphs, dev, any(group.dropout or group.batches for group in groups))
    steps_of = [group_steps(group, use_graphs) for group in groups]  # before any file: see graphs.replayable
    if prologue is not None:
        prologue()
    for folder, cfg in zip(folders, configs):
        write_run_file(folder, cfg, source="grokviz.ensemble")
    logs = [
        LogWriter(folder, family_of(configs[0]).log_columns, keep_below_step=start_step if start else None)
        for folder in folders
    ]
    member_trackers = [trackers.resolve(tracker, folder, cfg.to_dict()) for folder, cfg in zip(folders, configs)]
    fired: list[set] = [events_already_fired(open_run(f)) if start else set() for f in folders]
    schedule = checkpoint_schedule(first) if save == "schedule" else {0, first.steps}
    flush_every = CUDA_FLUSH_EVERY if dev.type == "cuda" else 1
    pending: list[tuple[int, MemberBatch, torch.Tensor, Params | None, float | torch.cuda.Event, tuple | None]] = []
    last_test = [0.0] * len(configs)  # for the progress bar
    clock = Clock(dev)

    def flush() -> None:
        """Hand pending log rows, and the checkpoints they may call for, to the writer (no host sync)."""
        rows = [(step, group, to_host(metrics), *rest) for step, group, metrics, *rest in pending]
        pending.clear()

        def write() -> None:
            for step, group, metrics, snapshot, elapsed, moments in rows:
                if moments is not None:
                    # The resume state before the step's checkpoint: a kill between the two leaves
                    # a step that the resumed group redoes (as in the single run).
                    for index, member in enumerate(group.members):
                        member_state = [{k: writer.fetch(v[index]) for k, v in tree.items()} for tree in moments]
                        save_resume_state(folders[member], step, *member_state)
                for index, (values, member) in enumerate(zip(metrics.tolist(), group.members)):
                    record = log_record(step, values, clock.seconds(elapsed))
                    logs[member].append(record)
                    sent = member_trackers[member]
                    if sent is not None:
                        sent.log(record | trackers.row_extras(configs[member], step, None), step)
                    last_test[member] = record["test_accuracy"]
                    crossed = save == "schedule" and new_events(record, fired[member])
                    if snapshot is not None and (crossed or step in schedule):
                        weights = {k: writer.fetch(v[index]) for k, v in snapshot.items()}  # this member only
                        save_checkpoint(folders[member], step, weights, configs[member])
                        if sent is not None:
                            measures = trackers.checkpoint_measures(configs[member], weights)
                            sent.log(measures | {"sum_sq_weights": trackers.sum_sq(weights)}, step)
                if moments is not None and on_state_saved is not None and group is groups[-1]:
                    on_state_saved(step)
            bar.set_postfix_str(
                f"test accuracy >= 99%: {sum(a >= 0.99 for a in last_test)}/{len(configs)}", refresh=False
            )

        writer.submit(write, ready=ready_event(dev))

    from tqdm import tqdm

    bar = tqdm(
        total=first.steps,
        initial=start_step,
        disable=not progress,
        unit="step",
        dynamic_ncols=True,
        desc=f"{len(configs)} members",
    )
    try:
        with BackgroundWriter() as writer:
            for step in range(start_step, first.steps + 1):
                last = step == first.steps
                is_log_step = step % first.log_every == 0 or last or step in schedule
                # On log steps only (the log stays the in-process one); not at the start step (that
                # state is on disk already) nor at the end (nothing is left to resume).
                saves_state = bool(resume_every) and is_log_step and step % resume_every == 0
                saves_state = saves_state and step != start_step and not last
                for group, (logged, plain) in zip(groups, steps_of):
                    # Weights before this step's update, only where a checkpoint may be written
                    # (accuracy events can fire at any log step).
                    keep = is_log_step and (save == "schedule" or step in schedule or saves_state)
                    snapshot = {k: v.detach().clone() for k, v in group.params.items()} if keep else None
                    moments = None
                    if saves_state:
                        moments = (
                            snapshot,
                            *(
                                {k: v.clone() for k, v in m.items()}
                                for m in (group.state.exp_avg, group.state.exp_avg_sq)
                            ),
                        )
                    if last:
                        metrics = step_group(group, evaluate=True, update=False)
                    else:
                        metrics = (logged if is_log_step else plain)()
                    if is_log_step:
                        # Replays overwrite their outputs in place: keep a copy.
                        pending.append((step, group, metrics.clone(), snapshot, clock.mark(), moments))
                if pending and (
                    step in schedule
                    or last
                    or saves_state
                    or len(pending) * first.log_every >= flush_every * len(groups)
                ):
                    flush()
                if not last:
                    bar.update(1)
    finally:
        bar.close()
        for log in logs:
            log.close()
        for sent in member_trackers:  # after the writer has sent them the last rows
            if sent is not None:
                sent.close()
    return folders
