"""``grokviz train --out checkpoints/NAME``: the single-run trainer's command line. The loop
itself is ``grokviz.training.single``; the parser and ``main`` are shared (``commands.trainer``)."""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields

from grokviz.commands.flags import config_from_args, given_flags
from grokviz.commands.trainer import run_options, trainer_main, trainer_parser
from grokviz.core.config import Config
from grokviz.core.recipes import RECIPES
from grokviz.training.single import train

__all__ = ["build_parser", "main", "train"]


def build_parser() -> argparse.ArgumentParser:
    parser = trainer_parser(
        "grokviz train",
        "Train the modular-arithmetic transformer (1 to 4 layers) and write a grokviz run folder.",
        "continue the run in --out from its last checkpoint; with --steps N, extend it to N steps",
        Config,
    )
    parser.add_argument(
        "--recipe",
        choices=tuple(RECIPES),
        default=None,
        help="a published setup's values under the flags given: power2022 is Power et al.'s (2 layers, width 128, "
        "4 heads, AdamW lr 1e-3, weight decay 1, minibatch 512 or half the training set, p = 97; docs/depth.md)",
    )
    return parser


def _config(args: argparse.Namespace, argv: list[str]) -> Config:
    """The flags' config, with ``--recipe``'s values where no flag was given explicitly."""
    cfg = config_from_args(args, Config)
    if args.recipe is None:
        return cfg
    return RECIPES[args.recipe].apply(cfg, keep=given_flags(argv, [f.name for f in fields(Config)]))


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
        build_config=_config,
    )


if __name__ == "__main__":
    sys.exit(main())
