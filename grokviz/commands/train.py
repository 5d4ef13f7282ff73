"""``grokviz train`` / ``python -m grokviz.train --out checkpoints/NAME``: the single-run trainer's
command line. The loop itself is ``grokviz.training.single``."""

from __future__ import annotations

import argparse
import sys

from grokviz.commands.flags import (
    Parser,
    add_config_flags,
    add_run_folder_flags,
    add_runtime_flags,
    config_from_args,
    config_on_resume,
    fail,
)
from grokviz.core.config import Config
from grokviz.errors import GrokvizError
from grokviz.training.single import train

__all__ = ["build_parser", "main", "train"]


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="grokviz train",
        description="Train the 1-layer modular-arithmetic transformer and write a grokviz run folder.",
    )
    add_run_folder_flags(
        parser, "continue the run in --out from its last checkpoint; with --steps N, extend it to N steps"
    )
    add_runtime_flags(parser)
    add_config_flags(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    try:
        if args.resume:
            cfg = config_on_resume(args, argv, Config.family, "grokviz train --resume", extendable=True)
        else:
            cfg = config_from_args(args, Config)
        run = train(
            cfg,
            args.out,
            resume=args.resume,
            device=args.device,
            threads=args.threads,
            progress=not args.no_progress,
            use_graphs=not args.eager,
        )
    except GrokvizError as exc:
        return fail(exc)
    final = run.log().iloc[-1]
    print(
        f"{run.path}: step {int(final.step)}, train acc {final.train_accuracy:.4f}, "
        f"test acc {final.test_accuracy:.4f}, {len(run.steps())} checkpoints"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
