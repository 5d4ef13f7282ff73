"""``grokviz train-group --group S5 --out checkpoints/NAME``: train the modular family's 1-layer
transformer on composition in a finite group (S_n, A_n, D_n, Z_n; ``grokviz.core.groups``). The
loop is the modular single run's (``grokviz.training.single``); the parser and ``main`` are shared
(``commands.trainer``)."""

from __future__ import annotations

import argparse
import sys

from grokviz.commands.trainer import run_options, trainer_main, trainer_parser
from grokviz.core.groups_config import GroupsConfig

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    return trainer_parser(
        "grokviz train-group",
        "Train the 1-layer transformer on composition a∘b in a finite group (--group S5, A5, D12, ...) "
        "and write a grokviz run folder.",
        "continue the run in --out from its last checkpoint; with --steps N, extend it to N steps",
        GroupsConfig,
    )


def _train(cfg: GroupsConfig, args: argparse.Namespace):
    from grokviz.training.single import train  # imported here: --help must not load torch

    return train(cfg, args.out, use_graphs=not args.eager, **run_options(args))


def main(argv: list[str] | None = None) -> int:
    return trainer_main(
        argv,
        build_parser(),
        GroupsConfig,
        _train,
        lambda final: f"train acc {final.train_accuracy:.4f}, test acc {final.test_accuracy:.4f}",
        extendable=True,
    )


if __name__ == "__main__":
    sys.exit(main())
