"""``grokviz train-digits --out checkpoints/NAME``: the 10-digit adder's trainer (gpt-acc-jax's
777-parameter recipe by default). The loop is ``grokviz.training.digits``; the parser and
``main`` are shared (``commands.trainer``)."""

from __future__ import annotations

import argparse
import sys

from grokviz.commands.trainer import run_options, trainer_main, trainer_parser
from grokviz.core.digits_config import DigitsConfig

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    # The adder trains on the CPU unless asked (its tiny model is launch-bound on a GPU), and its
    # loop replays no CUDA graphs, so there is no --eager to offer.
    return trainer_parser(
        "grokviz train-digits",
        "Train the 10-digit addition transformer (default: the 777-parameter recipe) into a run folder.",
        "continue the run in --out from its last checkpoint",
        DigitsConfig,
        device="cpu",
        eager=False,
    )


def _train(cfg: DigitsConfig, args: argparse.Namespace):
    from grokviz.training.digits import train_digits  # imported here: --help must not load torch

    return train_digits(cfg, args.out, **run_options(args))


def main(argv: list[str] | None = None) -> int:
    return trainer_main(
        argv,
        build_parser(),
        DigitsConfig,
        _train,
        lambda final: f"validation exact match {final.val_exact:.4f}, loss {final.val_loss:.4f}",
    )


if __name__ == "__main__":
    sys.exit(main())
