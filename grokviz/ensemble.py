"""``grokviz ensemble`` / ``python -m grokviz.ensemble --out checkpoints/NAME --seeds 0-7``: many models
in one process. The batched loop itself is ``grokviz.training.ensemble``."""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields

from grokviz.core.config import Config
from grokviz.errors import GrokvizError
from grokviz.flags import add_config_flags, add_runtime_flags
from grokviz.training.ensemble import SAVE_MODES, grid_configs, train_ensemble


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


# Config fields given as lists (one value per grid point) instead of the single-value flags.
PER_MEMBER = frozenset({"seed", "weight_decay", "frac_train", "lr", "grokfast_lamb"})


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="grokviz ensemble",
        description="Train many models at once (seeds x weight decay x train fraction x lr) into one sweep folder.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--out", required=True, help="sweep folder to create (one run folder per member inside)")
    parser.add_argument("--seeds", type=parse_seeds, default=[0], help="initialisation seeds, e.g. 0-63 or 0,3,5")
    defaults = Config()
    parser.add_argument(
        "--weight-decay", type=parse_floats, default=[defaults.weight_decay], help="weight decays, e.g. 0.3,1,3"
    )
    parser.add_argument(
        "--frac-train", type=parse_floats, default=[defaults.frac_train], help="train fractions, e.g. 0.2,0.4,0.6"
    )
    parser.add_argument("--lr", type=parse_floats, default=[defaults.lr], help="learning rates, e.g. 1e-3,3e-3")
    parser.add_argument(
        "--grokfast-lamb",
        type=parse_floats,
        default=None,
        help="Grokfast amplifications, e.g. 0,1,2,5 (with --grokfast; unset: 2.0 for ema, 5.0 for ma)",
    )
    parser.add_argument(
        "--save",
        default="ends",
        choices=SAVE_MODES,
        help="checkpoints per member: first and last step, or the single run's full schedule",
    )
    add_runtime_flags(parser)
    add_config_flags(parser, skip=PER_MEMBER)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        base = Config(**{f.name: getattr(args, f.name) for f in fields(Config) if f.name not in PER_MEMBER})
        configs = grid_configs(
            base,
            seeds=args.seeds,
            weight_decays=args.weight_decay,
            frac_trains=args.frac_train,
            lrs=args.lr,
            grokfast_lambs=args.grokfast_lamb,
        )
        axes = {
            "weight_decay": args.weight_decay or [base.weight_decay],
            "frac_train": args.frac_train or [base.frac_train],
            "lr": args.lr or [base.lr],
            "seed": args.seeds,
        }
        if base.grokfast != "none":
            axes["grokfast_lamb"] = args.grokfast_lamb or [base.grokfast_lamb]
        folders = train_ensemble(
            configs,
            args.out,
            axes=axes,
            save=args.save,
            device=args.device,
            threads=args.threads,
            progress=not args.no_progress,
            use_graphs=not args.eager,
        )
    except GrokvizError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.out}: {len(folders)} members trained")
    return 0


if __name__ == "__main__":
    sys.exit(main())
