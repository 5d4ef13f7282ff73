"""Many models in one process: ``python -m grokviz.ensemble --out checkpoints/NAME --seeds 0-7``.

Every parameter gets a leading member axis (``[member, ...]``) and one step trains all members
at once: the forward is ``torch.func.vmap`` over :func:`grokviz.model.forward_last` (the single
run's own fast path, so there is one model definition), the backward is one ``autograd.grad``
of the summed member losses (members share no weights, so each gets exactly its own gradient),
and AdamW is the single run's update with the per-member learning rate and weight decay as
broadcast tensors.

Members may differ in ``seed``, ``data_seed``, ``lr``, ``weight_decay`` and ``frac_train``;
everything else is shared. Members with different ``frac_train`` have training sets of
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

import argparse
import ctypes
import itertools
import json
import sys
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Callable

import torch
from torch.func import vmap

from .config import Config
from .errors import GrokvizError
from .model import Params, forward_last, init_params
from .graphs import replayable
from .optim import AdamWState, Hyper
from .runs import (
    SWEEP_FILE,
    SWEEP_FORMAT,
    LogWriter,
    atomic_write,
    require_new_folder,
    save_checkpoint,
    write_run_file,
)
from .tasks import dataset_for
from .train import (
    CUDA_FLUSH_EVERY,
    _new_events,
    add_config_flags,
    add_runtime_flags,
    apply_update,
    checkpoint_schedule,
    configure_cpu,
    cross_entropy64,
    log_record,
    loss_and_accuracy,
    matmul_precision,
    pick_device,
)
from .writer import BackgroundWriter, Clock, ready_event, to_host

# Config fields that may differ between the members of one ensemble (in the order of the name).
MEMBER_FIELDS = ("weight_decay", "frac_train", "lr", "seed", "data_seed")
SAVE_MODES = ("ends", "schedule")


def keep_freed_memory() -> None:
    """On glibc, keep freed memory for reuse instead of returning it to the OS (CPU only).

    glibc serves blocks above its mmap threshold (at most 32 MB by default) with a fresh mmap and
    unmaps them on free, so every step pays page faults on every big activation again. At p = 113
    an ensemble of 8 has [member, pairs, d_mlp] activations of 63 MB: measured 730 -> 457 ms per
    step on a 2-core VM. Process-wide; harmless elsewhere (a no-op without glibc).
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # from malloc.h
    libc.mallopt(M_TRIM_THRESHOLD, 1 << 30)
    libc.mallopt(M_MMAP_THRESHOLD, 1 << 30)


def member_name(cfg: Config) -> str:
    """Folder name of a member, from its per-member fields: ``wd1_frac0.3_lr0.001_seed0``."""
    name = f"wd{cfg.weight_decay:g}_frac{cfg.frac_train:g}_lr{cfg.lr:g}_seed{cfg.seed}"
    return name if cfg.data_seed is None else f"{name}_data{cfg.data_seed}"


def grid_configs(base: Config, *, seeds=None, weight_decays=None, frac_trains=None, lrs=None) -> list[Config]:
    """The product of the given axes (an axis left out keeps ``base``'s value), weight decay outermost."""
    axes = (weight_decays or [base.weight_decay], frac_trains or [base.frac_train], lrs or [base.lr], seeds or [base.seed])
    return [base.replace(weight_decay=wd, frac_train=frac, lr=lr, seed=seed)
            for wd, frac, lr, seed in itertools.product(*axes)]


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


def make_groups(configs: list[Config], dev: torch.device) -> list[Group]:
    by_size: dict[int, list[int]] = {}
    datasets = [dataset_for(cfg) for cfg in configs]
    for i, data in enumerate(datasets):
        by_size.setdefault(len(data.train_idx), []).append(i)
    groups = []
    for members in by_size.values():
        def split(which: str) -> tuple[torch.Tensor, ...]:
            parts = [[t[getattr(datasets[i], which)] for t in (datasets[i].a, datasets[i].b, datasets[i].labels)] for i in members]
            return tuple(torch.stack(column).to(dev) for column in zip(*parts))

        params = stack([init_params(configs[i], dev) for i in members])
        params = {k: v.requires_grad_(True) for k, v in params.items()}
        group_configs = [configs[i] for i in members]
        groups.append(Group(members, group_configs, params, AdamWState.zeros_like(params), Hyper.of(group_configs, dev),
                            split("train_idx"), split("test_idx")))
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
        apply_update(group.params, group.state, train_loss.sum(), group.hyper)
    return metrics


def group_steps(group: Group, use_graphs: bool) -> tuple[Callable[[], torch.Tensor], Callable[[], None]]:
    """(logged, plain) step functions of ``group``, each replayed as a CUDA graph on CUDA."""
    state = [*group.params.values(), *group.state.tensors()]
    logged = replayable(lambda: step_group(group, evaluate=True), state, use_graph=use_graphs)
    plain = replayable(lambda: step_group(group, evaluate=False), state, use_graph=use_graphs)
    return logged, plain


def write_sweep_file(out: Path, configs: list[Config], axes: dict[str, list]) -> None:
    body = {"format": SWEEP_FORMAT, "source": "grokviz.ensemble", "axes": axes,
            "members": [{"name": member_name(c), **{f: getattr(c, f) for f in MEMBER_FIELDS}} for c in configs]}
    atomic_write(out / SWEEP_FILE, lambda tmp: Path(tmp).write_text(json.dumps(body, indent=2) + "\n"))


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
) -> list[Path]:
    """Train every config as one member of a sweep folder ``out``; returns the member folders.

    ``use_graphs`` (CUDA only) replays each group's steps as CUDA graphs; False runs eagerly."""
    _check_members(configs)
    if save not in SAVE_MODES:
        raise GrokvizError(f"save={save!r} must be one of {SAVE_MODES}")
    out = Path(out)
    require_new_folder(out)
    dev = pick_device(device)
    if dev.type == "cpu":
        configure_cpu(threads)
        keep_freed_memory()
    with matmul_precision(configs[0], dev):
        return _train_ensemble(configs, out, dev, axes, save, progress, use_graphs)


def _train_ensemble(configs: list[Config], out: Path, dev: torch.device, axes: dict[str, list] | None, save: str,
                    progress: bool, use_graphs: bool) -> list[Path]:
    first = configs[0]
    groups = make_groups(configs, dev)
    steps_of = [group_steps(group, use_graphs) for group in groups]  # before any file: see graphs.replayable
    out.mkdir(parents=True, exist_ok=True)
    axes = axes or {f: sorted({getattr(c, f) for c in configs}, key=str) for f in MEMBER_FIELDS
                    if len({getattr(c, f) for c in configs}) > 1}
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
        rows = [(step, group, to_host(metrics), snapshot, elapsed) for step, group, metrics, snapshot, elapsed in pending]
        pending.clear()

        def write() -> None:
            for step, group, metrics, snapshot, elapsed in rows:
                for index, (values, member) in enumerate(zip(metrics.tolist(), group.members)):
                    record = log_record(step, values, clock.seconds(elapsed))
                    logs[member].append(record)
                    last_test[member] = record["test_accuracy"]
                    crossed = save == "schedule" and _new_events(record, fired[member])
                    if snapshot is not None and (crossed or step in schedule):
                        weights = {k: writer.fetch(v[index]) for k, v in snapshot.items()}  # this member only
                        save_checkpoint(folders[member], step, weights, configs[member])
            bar.set_postfix_str(f"test accuracy >= 99%: {sum(a >= 0.99 for a in last_test)}/{len(configs)}", refresh=False)

        writer.submit(write, ready=ready_event(dev))

    from tqdm import tqdm

    bar = tqdm(total=first.steps, disable=not progress, unit="step", dynamic_ncols=True,
               desc=f"{len(configs)} members")
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
                if pending and (step in schedule or last or len(pending) * first.log_every >= flush_every * len(groups)):
                    flush()
                if not last:
                    bar.update(1)
    finally:
        bar.close()
        for log in logs:
            log.close()
    return folders


# --- command line ----------------------------------------------------------------------------


def parse_seeds(text: str) -> list[int]:
    """'0-7' -> [0..7]; '0,3,5' -> [0, 3, 5]; '0-3,10' -> [0, 1, 2, 3, 10]."""
    seeds: list[int] = []
    try:
        for part in text.split(","):
            low, _, high = part.strip().partition("-")
            seeds.extend(range(int(low), int(high) + 1) if high else [int(low)])
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a list of seeds like 0-7 or 0,3,5") from None
    return seeds


def parse_floats(text: str) -> list[float]:
    try:
        return [float(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of numbers") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m grokviz.ensemble",
        description="Train many models at once (seeds x weight decay x train fraction x lr) into one sweep folder.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--out", required=True, help="sweep folder to create (one run folder per member inside)")
    parser.add_argument("--seeds", type=parse_seeds, default=[0], help="initialisation seeds, e.g. 0-63 or 0,3,5")
    defaults = Config()
    parser.add_argument("--weight-decay", type=parse_floats, default=[defaults.weight_decay], help="weight decays, e.g. 0.3,1,3")
    parser.add_argument("--frac-train", type=parse_floats, default=[defaults.frac_train], help="train fractions, e.g. 0.2,0.4,0.6")
    parser.add_argument("--lr", type=parse_floats, default=[defaults.lr], help="learning rates, e.g. 1e-3,3e-3")
    parser.add_argument("--save", default="ends", choices=SAVE_MODES,
                        help="checkpoints per member: first and last step, or the single run's full schedule")
    add_runtime_flags(parser)
    add_config_flags(parser, skip=frozenset({"seed", "weight_decay", "frac_train", "lr"}))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        base = Config(**{f.name: getattr(args, f.name) for f in fields(Config)
                         if f.name not in {"seed", "weight_decay", "frac_train", "lr"}})
        configs = grid_configs(base, seeds=args.seeds, weight_decays=args.weight_decay,
                               frac_trains=args.frac_train, lrs=args.lr)
        axes = {"weight_decay": args.weight_decay or [base.weight_decay], "frac_train": args.frac_train or [base.frac_train],
                "lr": args.lr or [base.lr], "seed": args.seeds}
        folders = train_ensemble(configs, args.out, axes=axes, save=args.save, device=args.device,
                                 threads=args.threads, progress=not args.no_progress, use_graphs=not args.eager)
    except GrokvizError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.out}: {len(folders)} members trained")
    return 0


if __name__ == "__main__":
    sys.exit(main())
