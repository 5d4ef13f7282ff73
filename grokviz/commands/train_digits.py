"""``grokviz train-digits`` / ``python -m grokviz train-digits --out checkpoints/NAME``: the 10-digit
adder's trainer (gpt-acc-jax's 777-parameter recipe by default). The loop is ``grokviz.training.digits``."""

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
from grokviz.core.digits_config import DigitsConfig
from grokviz.errors import GrokvizError

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="grokviz train-digits",
        description="Train the 10-digit addition transformer (default: the 777-parameter recipe) into a run folder.",
    )
    add_run_folder_flags(parser, "continue the run in --out from its last checkpoint")
    add_runtime_flags(parser, device="cpu", eager=False)
    add_config_flags(parser, config_class=DigitsConfig)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    try:
        if args.resume:
            cfg = config_on_resume(args, argv, DigitsConfig.family, "grokviz train-digits --resume")
        else:
            cfg = config_from_args(args, DigitsConfig)
        from grokviz.training.digits import train_digits

        run = train_digits(
            cfg, args.out, resume=args.resume, device=args.device, threads=args.threads, progress=not args.no_progress
        )
    except GrokvizError as exc:
        return fail(exc)
    final = run.log().iloc[-1]
    print(
        f"{run.path}: step {int(final.step)}, validation exact match {final.val_exact:.4f}, "
        f"loss {final.val_loss:.4f}, {len(run.steps())} checkpoints"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
