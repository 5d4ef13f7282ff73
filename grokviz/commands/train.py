"""``grokviz train --out checkpoints/NAME``: the single-run trainer's command line. The loop
itself is ``grokviz.training.single``; the parser and ``main`` are shared (``commands.trainer``)."""

from __future__ import annotations

import argparse
import sys

from grokviz.commands.trainer import run_options, trainer_main, trainer_parser
from grokviz.core.config import Config
from grokviz.training.single import train

__all__ = ["build_parser", "main", "train"]


def build_parser() -> argparse.ArgumentParser:
    return trainer_parser(
        "grokviz train",
        "Train the 1-layer modular-arithmetic transformer and write a grokviz run folder.",
        "continue the run in --out from its last checkpoint; with --steps N, extend it to N steps",
        Config,
    )


def _train(cfg: Config, args: argparse.Namespace):
    return train(cfg, args.out, use_graphs=not args.eager, **run_options(args))


def main(argv: list[str] | None = None) -> int:
    return trainer_main(
        argv,
        build_parser(),
        Config,
        _train,
        lambda final: f"train acc {final.train_accuracy:.4f}, test acc {final.test_accuracy:.4f}",
        extendable=True,
    )


if __name__ == "__main__":
    sys.exit(main())
