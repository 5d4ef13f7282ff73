"""``grokviz ensemble --out checkpoints/NAME --seeds 0-7`` (or ``python -m grokviz ensemble``): many models
in one process, or over a Ray cluster with ``--ray ADDRESS|local``; ``--resume`` finishes a sweep.
The batched loop itself is ``grokviz.training.ensemble``; groups as Ray tasks and resuming are
``grokviz.training.distributed`` (docs/ray.md)."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from grokviz.commands.flags import (
    Parser,
    add_config_flags,
    add_runtime_flags,
    config_from_args,
    fail,
    given_flags,
    integer,
    numbers,
    ray_address,
    seeds,
)
from grokviz.core.config import Config
from grokviz.errors import GrokvizError
from grokviz.storage.sweeps import member_name
from grokviz.training import distributed, memory
from grokviz.training.device import pick_device
from grokviz.training.ensemble import SAVE_MODES, grid_configs, train_ensemble

# Config fields given as lists (one value per grid point) instead of the single-value flags.
PER_MEMBER = frozenset({"seed", "weight_decay", "frac_train", "lr", "grokfast_lamb"})


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="grokviz ensemble",
        description="Train many models at once (seeds x weight decay x train fraction x lr) into one sweep folder.",
    )
    parser.add_argument("--out", required=True, help="sweep folder to create (one run folder per member inside)")
    parser.add_argument("--seeds", type=seeds, default=[0], help="initialisation seeds, e.g. 0-63 or 0,3,5")
    defaults = Config()
    parser.add_argument(
        "--weight-decay", type=numbers, default=[defaults.weight_decay], help="weight decays, e.g. 0.3,1,3"
    )
    parser.add_argument(
        "--frac-train", type=numbers, default=[defaults.frac_train], help="train fractions, e.g. 0.2,0.4,0.6"
    )
    parser.add_argument("--lr", type=numbers, default=[defaults.lr], help="learning rates, e.g. 1e-3,3e-3")
    parser.add_argument(
        "--grokfast-lamb",
        type=numbers,
        default=None,
        help="Grokfast amplifications, e.g. 0,1,2,5 (with --grokfast; unset: 2.0 for ema, 5.0 for ma)",
    )
    parser.add_argument(
        "--save",
        default="ends",
        choices=SAVE_MODES,
        help="checkpoints per member: first and last step, or the single run's full schedule",
    )
    parser.add_argument(
        "--group-size",
        type=integer,
        default=None,
        help="members stepped together, at least 1 (None: all members with one train-set size); fewer need less memory",
    )
    parser.add_argument(
        "--ray",
        type=ray_address,
        nargs="?",
        const="local",
        default=None,
        metavar="ADDRESS|local",
        help="run the member groups as Ray tasks: local (start Ray for the run; also --ray alone), auto, or a"
        " cluster's host:port (needs pip install 'grokviz[ray]'; the sweep folder on a filesystem all nodes share)",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the sweep in --out (same grid flags): train only its missing or unfinished members",
    )
    add_runtime_flags(parser)
    add_config_flags(parser, skip=PER_MEMBER)
    parser.add_argument(
        "--group",
        default=None,
        help="train on composition in this finite group instead (S3..S6, A4, A5, D3..D100, Z2..Z997; "
        "--p is then the group's order and --frac-train defaults to 0.6; see grokviz train-group)",
    )
    return parser


def base_config(args: argparse.Namespace, argv: list[str]) -> Config:
    """The config every member shares: a modular one, or with ``--group`` a groups one (whose
    ``task`` and ``p`` come from the group unless given, and then must agree with it)."""
    if args.group is None:
        return config_from_args(args, Config, skip=PER_MEMBER)
    from grokviz.core.groups_config import GroupsConfig

    unset = frozenset(name for name in ("task", "p") if not given_flags(argv, [name]))
    return config_from_args(args, GroupsConfig, skip=PER_MEMBER | unset | {"group"}, group=args.group)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    if args.group is not None and not given_flags(argv, ["frac_train"]):
        from grokviz.core.groups_config import GroupsConfig

        args.frac_train = [GroupsConfig.frac_train]  # the groups default (Chughtai et al.'s), not the modular one
    try:
        base = base_config(args, argv)
        axes = {"weight_decay": args.weight_decay, "frac_train": args.frac_train, "lr": args.lr, "seed": args.seeds}
        if base.grokfast != "none":
            axes["grokfast_lamb"] = args.grokfast_lamb or [base.grokfast_lamb]
        # Each axis value on its own first (one small config each), so a bad value is named before
        # the whole grid is built; then the memory the grid needs, before anything is allocated.
        for name, values in axes.items():
            # Seeds are integers >= 0 by their parser: the two ends stand for a range of them.
            for value in (min(values), max(values)) if name == "seed" else dict.fromkeys(values):
                base.replace(**{name: value})
        if args.group_size is not None and args.group_size < 1:
            raise GrokvizError(f"--group-size={args.group_size} must be at least 1")
        members = math.prod(len(values) for values in axes.values())
        largest = base.replace(frac_train=max(args.frac_train))
        if args.ray is not None:
            # Refused before anything is written; a Ray task holds one group, on its own device.
            distributed.ray_module()
            members = min(members, args.group_size or members)
        memory.check_fits(memory.estimate(largest, members, args.group_size), pick_device(args.device))
        configs = grid_configs(
            base,
            seeds=args.seeds,
            weight_decays=args.weight_decay,
            frac_trains=args.frac_train,
            lrs=args.lr,
            grokfast_lambs=args.grokfast_lamb,
        )
        if args.ray is not None or args.resume:
            return _sweep(args, configs, axes)
        folders = train_ensemble(configs, args.out, **_training_options(args, axes))
    except GrokvizError as exc:
        return fail(exc)
    print(f"{args.out}: {len(folders)} members trained")
    return 0


def _training_options(args, axes) -> dict:
    """``axes`` and the fields of ``EnsembleOptions``: what the in-process trainer and the
    group-by-group sweep both take."""
    return {
        "axes": axes,
        "save": args.save,
        "device": args.device,
        "threads": args.threads,
        "progress": not args.no_progress,
        "use_graphs": not args.eager,
        "group_size": args.group_size,
    }


def _sweep(args, configs, axes) -> int:
    """--ray / --resume: group by group (grokviz.training.distributed); Ctrl-C says how to go on."""
    try:
        folders = distributed.run_sweep(
            configs, args.out, **_training_options(args, axes), resume=args.resume, ray_address=args.ray
        )
    except KeyboardInterrupt:
        done = sum(distributed.finished(Path(args.out) / member_name(c), c) for c in configs)
        print(
            f"stopped: {args.out} holds {done} of {len(configs)} members finished; continue with the same command"
            " and --resume",
            file=sys.stderr,
        )
        return 130
    print(f"{args.out}: {len(folders)} members, all trained")
    return 0


if __name__ == "__main__":
    sys.exit(main())
