"""What the two ``train`` commands share: their parser's layout and their ``main``.

Each family's command module (``train``, ``train_digits``) names only what is its own: the
config class, the training loop, whether ``--resume --steps N`` may extend a run, and the one
line it prints about the finished run.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from grokviz.commands.flags import (
    Parser,
    add_config_flags,
    add_run_folder_flags,
    add_runtime_flags,
    config_from_args,
    config_on_resume,
    fail,
)
from grokviz.errors import GrokvizError
from grokviz.training.trackers import TRACKERS


def trainer_parser(
    prog: str, description: str, resume_help: str, config_class, device: str = "auto", eager: bool = True
) -> argparse.ArgumentParser:
    """A trainer's flags: the run folder, how to train (``device``: the ``--device`` default;
    ``eager``: offer ``--eager``), then one flag per field of ``config_class``."""
    parser = Parser(prog=prog, description=description)
    add_run_folder_flags(parser, resume_help)
    add_runtime_flags(parser, device=device, eager=eager)
    add_tracker_flag(parser)
    add_config_flags(parser, config_class=config_class)
    return parser


def add_tracker_flag(parser: argparse.ArgumentParser) -> None:
    """``--tracker NAME``: also send the log rows to an experiment tracker (``training.trackers``)."""
    parser.add_argument(
        "--tracker",
        default=None,
        choices=tuple(TRACKERS),
        help="also send each log row and checkpoint's measures to TensorBoard (event files in the run folder), "
        "Weights & Biases (offline unless WANDB_MODE says otherwise) or MLflow (MLFLOW_TRACKING_URI, else a file "
        "store in the run folder); needs the extra of that name (pip install 'grokviz[tensorboard]')",
    )


def run_options(args: argparse.Namespace) -> dict:
    """The trainer flags as ``training.options.RunOptions`` keyword arguments."""
    return {
        "resume": args.resume,
        "device": args.device,
        "threads": args.threads,
        "progress": not args.no_progress,
        "tracker": args.tracker,
    }


def trainer_main(
    argv: list[str] | None,
    parser: argparse.ArgumentParser,
    config_class,
    train: Callable[[object, argparse.Namespace], object],
    report: Callable[[object], str],
    extendable: bool = False,
    build_config: Callable[[argparse.Namespace, list[str]], object] | None = None,
) -> int:
    """Parse ``argv``, build the config (or read the run's own on ``--resume``), call
    ``train(cfg, args)`` and print ``<run>: step N, <report(last log row)>, K checkpoints``.

    ``build_config(args, argv)`` replaces the plain flags-to-config step (``train``'s ``--recipe``).
    A :class:`GrokvizError` ends as one ``error:`` line and exit status 2, nothing half-written."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    try:
        if args.resume and getattr(args, "recipe", None):
            raise GrokvizError("--resume continues the run with its own config; drop --recipe")
        if args.resume:
            command = f"{parser.prog} --resume"
            cfg = config_on_resume(args, argv, config_class.family, command, extendable=extendable)
        elif build_config is not None:
            cfg = build_config(args, argv)
        else:
            cfg = config_from_args(args, config_class)
        run = train(cfg, args)
    except GrokvizError as exc:
        return fail(exc)
    final = run.log().iloc[-1]
    print(f"{run.path}: step {int(final.step)}, {report(final)}, {len(run.steps())} checkpoints")
    return 0
