"""Command-line flags that more than one command shares: the runtime flags (how to train) and one
``--flag`` per Config field (what to train)."""

from __future__ import annotations

import argparse
from dataclasses import MISSING, fields

from grokviz.core.config import Config


def add_runtime_flags(parser: argparse.ArgumentParser) -> None:
    """How to train, not what (not stored in the run): shared with ``grokviz.ensemble``."""
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="auto = cuda when present")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU threads (default: torch's, all cores; 1 is faster on a machine busy with other work)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--eager",
        action="store_true",
        help="on CUDA, launch each kernel from Python instead of replaying CUDA graphs (for checks)",
    )


def add_config_flags(parser: argparse.ArgumentParser, skip: frozenset[str] = frozenset()) -> None:
    """One ``--flag`` per Config field (defaults and help from the dataclass), except ``skip``.

    Shared with ``grokviz.ensemble``, which replaces the per-member fields by list flags.
    """
    group = parser.add_argument_group("run config (stored in the run folder)")
    for f in fields(Config):
        if f.name in skip:
            continue
        default = f.default if f.default is not MISSING else None
        flag = f"--{f.name.replace('_', '-')}"
        if str(f.type) == "bool":  # --grokfast-divide-lr / --no-grokfast-divide-lr
            group.add_argument(
                flag, dest=f.name, action=argparse.BooleanOptionalAction, default=default, help=f.metadata.get("help")
            )
            continue
        kind = {"int": int, "float": float, "str": str}.get(str(f.type).split(" ")[0], int)
        group.add_argument(flag, dest=f.name, type=kind, default=default, help=f.metadata.get("help"))
