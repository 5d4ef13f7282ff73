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
    batch_sizes,
    config_from_args,
    fail,
    given_flags,
    integer,
    mlp_sizes,
    numbers,
    ray_address,
    seeds,
    shapes,
    sizes,
)
from grokviz.commands.trainer import add_tracker_flag
from grokviz.core.config import Config
from grokviz.errors import GrokvizError
from grokviz.storage.sweeps import member_name
from grokviz.training import distributed, memory
from grokviz.training.device import pick_device
from grokviz.training.ensemble import SAVE_MODES, train_ensemble
from grokviz.training.grids import digits_grid, grid_configs, shape_grid

# Config fields given as lists (one value per grid point) instead of the single-value flags.
SIZE_AXES = frozenset({"d_model", "d_mlp", "n_heads"})
# Depth and batch size: modular members only (each value its own group, as a model size is).
RUN_AXES = frozenset({"n_layers", "batch_size"})
PER_MEMBER = frozenset({"seed", "weight_decay", "frac_train", "lr", "grokfast_lamb"}) | SIZE_AXES | RUN_AXES
DIGITS_PER_MEMBER = frozenset({"seed", "weight_decay", "lr"}) | SIZE_AXES


def add_axis_flags(parser: argparse.ArgumentParser, defaults) -> None:
    """The sweep axes both families have: seeds, weight decays, learning rates and model sizes."""
    parser.add_argument("--out", required=True, help="sweep folder to create (one run folder per member inside)")
    parser.add_argument("--seeds", type=seeds, default=[0], help="initialisation seeds, e.g. 0-63 or 0,3,5")
    parser.add_argument(
        "--weight-decay", type=numbers, default=[defaults.weight_decay], help="weight decays, e.g. 0.3,1,3"
    )
    parser.add_argument("--lr", type=numbers, default=[defaults.lr], help="learning rates, e.g. 1e-3,3e-3")
    sizes_group = parser.add_argument_group(
        "model sizes (members of one shape are stepped together; each shape is its own group)"
    )
    sizes_group.add_argument(
        "--d-model", type=sizes, default=None, help=f"residual widths, e.g. 4,7,16 ({defaults.d_model})"
    )
    sizes_group.add_argument(
        "--d-mlp",
        type=mlp_sizes,
        default=None,
        help=f"MLP widths, e.g. 14,28, or multiples of each d_model like 4x ({defaults.d_mlp})",
    )
    sizes_group.add_argument(
        "--n-heads", type=sizes, default=None, help=f"attention heads, e.g. 1,2 ({defaults.n_heads})"
    )
    sizes_group.add_argument(
        "--shapes",
        type=shapes,
        default=None,
        metavar="D_MODEL:D_MLP,...",
        help="(d_model, d_mlp) pairs instead of the product of --d-model and --d-mlp, e.g. 7:14,6:24",
    )


def add_sweep_flags(parser: argparse.ArgumentParser) -> None:
    """How the sweep is trained and stored (both families)."""
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
        help="members stepped together, at least 1 (None: all members with one train-set size and shape); "
        "fewer need less memory",
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


def build_digits_parser() -> argparse.ArgumentParser:
    """``grokviz ensemble --adder``: adder members (the digits family, gpt-acc-jax's recipe)."""
    from grokviz.core.digits_config import DigitsConfig

    parser = Parser(
        prog="grokviz ensemble --adder",
        description="Train many 10-digit adders (seeds x lr x weight decay x model size) into one sweep folder; "
        "every setting not swept is grokviz train-digits's.",
    )
    parser.add_argument("--adder", action="store_true", help="adder members (this parser)")
    add_axis_flags(parser, DigitsConfig())
    add_sweep_flags(parser)
    parser.add_argument(
        "--compile",
        action="store_true",
        help="compile each group's step with torch.compile: 5-30 s per shape to start (cached on disk after),"
        " then 2.6-2.9x the member-steps per second of separate runs on a CPU (members equal their single"
        " runs to float tolerance)",
    )
    add_runtime_flags(parser, device="cpu", eager=False)
    add_config_flags(parser, skip=DIGITS_PER_MEMBER, config_class=DigitsConfig)
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="grokviz ensemble",
        description="Train many models at once (seeds x weight decay x train fraction x lr x model size) into one"
        " sweep folder; with --adder, 10-digit adders (see grokviz ensemble --adder --help).",
    )
    parser.add_argument(
        "--adder",
        action="store_true",
        help="train 10-digit adders instead (its flags: grokviz ensemble --adder --help)",
    )
    defaults = Config()
    add_axis_flags(parser, defaults)
    parser.add_argument(
        "--frac-train", type=numbers, default=[defaults.frac_train], help="train fractions, e.g. 0.2,0.4,0.6"
    )
    parser.add_argument(
        "--grokfast-lamb",
        type=numbers,
        default=None,
        help="Grokfast amplifications, e.g. 0,1,2,5 (with --grokfast; unset: 2.0 for ema, 5.0 for ma)",
    )
    depth_group = parser.add_argument_group(
        "depth and minibatches (each value is its own group of members, as a model size is)"
    )
    # String defaults: argparse reads them with the flag's type, and --help shows them as written.
    depth_group.add_argument(
        "--n-layers", type=sizes, default=str(defaults.n_layers), help="transformer blocks, e.g. 1,2 (1 to 4)"
    )
    depth_group.add_argument(
        "--batch-size",
        type=batch_sizes,
        default="full",
        help="training pairs per step, e.g. 128,512,full (full: the whole training set every step; each member "
        "draws its single run's batches from its seed and the step)",
    )
    add_sweep_flags(parser)
    add_runtime_flags(parser)
    add_tracker_flag(parser)
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
    if "--adder" in argv:
        return main_digits(argv)
    args = build_parser().parse_args(argv)
    if args.group is not None and not given_flags(argv, ["frac_train"]):
        from grokviz.core.groups_config import GroupsConfig

        args.frac_train = [GroupsConfig.frac_train]  # the groups default (Chughtai et al.'s), not the modular one
    try:
        base = base_config(args, argv)
        axes = {"weight_decay": args.weight_decay, "frac_train": args.frac_train, "lr": args.lr, "seed": args.seeds}
        if base.grokfast != "none":
            axes["grokfast_lamb"] = args.grokfast_lamb or [base.grokfast_lamb]
        shape_changes = _shapes(args, base, keep_d_head=bool(given_flags(argv, ["d_head"])))
        largest = base.replace(frac_train=max(args.frac_train))
        # Depth and batch size: one group per value, like a shape (sweep.json names them when given).
        run_axes = {name: getattr(args, name) for name in given_flags(argv, ["n_layers", "batch_size"])}
        group_changes = [
            change | {"n_layers": depth, "batch_size": batch}
            for change in shape_changes
            for depth in args.n_layers
            for batch in args.batch_size
        ]
        _check_axes(base, axes, group_changes, args.group_size, largest)
        # The memory the grid needs, before anything is allocated (one config per group stands for its members).
        per_shape = math.prod(len(values) for values in axes.values())
        _check_memory(args, [largest.replace(**change) for change in group_changes], per_shape)
        configs = grid_configs(
            base,
            seeds=args.seeds,
            weight_decays=args.weight_decay,
            frac_trains=args.frac_train,
            lrs=args.lr,
            grokfast_lambs=args.grokfast_lamb,
            shapes=shape_changes if len(shape_changes) > 1 or _sizes_given(args) else None,
            n_layers=args.n_layers,
            batch_sizes=args.batch_size,
        )
        axes |= run_axes
        return _train(args, configs, _with_size_axes(axes, shape_changes))
    except GrokvizError as exc:
        return fail(exc)


def main_digits(argv: list[str]) -> int:
    """``grokviz ensemble --adder ...``: a sweep of adder members."""
    from grokviz.core.digits_config import DigitsConfig

    args = build_digits_parser().parse_args(argv)
    try:
        base = config_from_args(args, DigitsConfig, skip=DIGITS_PER_MEMBER)
        axes = {"lr": args.lr, "weight_decay": args.weight_decay, "seed": args.seeds}
        shape_changes = _shapes(args, base)
        _check_axes(base, axes, shape_changes, args.group_size)
        per_shape = math.prod(len(values) for values in axes.values())
        _check_memory(args, [base.replace(**change) for change in shape_changes], per_shape)
        configs = digits_grid(
            base, seeds=args.seeds, lrs=args.lr, weight_decays=args.weight_decay, shapes=shape_changes
        )
        return _train(args, configs, _with_size_axes(axes, shape_changes))
    except GrokvizError as exc:
        return fail(exc)


def _sizes_given(args) -> bool:
    return any(getattr(args, name) is not None for name in ("d_model", "d_mlp", "n_heads", "shapes"))


def _shapes(args, base, keep_d_head: bool = False) -> list[dict]:
    return shape_grid(
        base, d_models=args.d_model, d_mlps=args.d_mlp, n_heads=args.n_heads, pairs=args.shapes, keep_d_head=keep_d_head
    )


def _with_size_axes(axes: dict, shape_changes: list[dict]) -> dict:
    """``axes`` and each size field that takes more than one value (sweep.json's axes)."""
    sized = dict(axes)
    for name in ("d_model", "d_mlp", "n_heads"):
        values = sorted({change[name] for change in shape_changes})
        if len(values) > 1:
            sized[name] = values
    return sized


def _check_axes(base, axes: dict, shape_changes: list[dict], group_size: int | None, largest=None) -> None:
    """Each axis value on its own (one small config each), so that a bad value is named before the
    whole grid is built. ``shape_changes`` are checked on ``largest`` (the largest training set,
    which a batch size must fit in), or ``base``."""
    for name, values in axes.items():
        # Seeds are integers >= 0 by their parser: the two ends stand for a range of them.
        for value in (min(values), max(values)) if name == "seed" else dict.fromkeys(values):
            base.replace(**{name: value})
    for change in shape_changes:
        (largest or base).replace(**change)
    if group_size is not None and group_size < 1:
        raise GrokvizError(f"--group-size={group_size} must be at least 1")


def _check_memory(args, shape_configs: list, per_shape: int) -> None:
    counts = [per_shape] * len(shape_configs)
    group_size = args.group_size
    if args.ray is not None:
        # Refused before anything is written; a Ray task holds one group, on its own device.
        distributed.ray_module()
        counts = [min(per_shape, group_size or per_shape)]
        shape_configs = [max(shape_configs, key=lambda c: memory.estimate_sweep([c]).total)]
    memory.check_fits(memory.estimate_sweep(shape_configs, group_size, counts), pick_device(args.device))


def _train(args, configs, axes) -> int:
    tracker = getattr(args, "tracker", None)  # the modular parser's (adder ensembles do not send yet)
    if tracker is not None and (args.ray is not None or args.resume):
        raise GrokvizError(
            "--tracker is not sent from --ray or --resume sweeps yet; send the members afterwards with "
            "grokviz convert to-tracker MEMBER --tracker NAME"
        )
    if args.ray is not None or args.resume:
        return _sweep(args, configs, axes)
    folders = train_ensemble(configs, args.out, tracker=tracker, **_training_options(args, axes))
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
        "use_graphs": not getattr(args, "eager", False),
        "group_size": args.group_size,
        "compile": getattr(args, "compile", False),
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
