"""``grokviz forecast RUN [--at STEP] [--signals train|all] [--json]``: will the run grok, and when.

Reads only the run's config, its log rows and its checkpoints at steps <= STEP (default: the last
step) and says whether the run will grok (test accuracy >= 95% from some step to the end) and at
which step, with an 80% interval (method and measured error: docs/forecast.md). ``--signals
train`` uses the weights and the training pairs only; ``all`` also the test split. ``--json``
prints one object: at_step, will_grok, grok_step, low, high, horizon, signals, signal_set, reason,
observed. The per-checkpoint measures are computed once (progress bar on stderr) and cached
beside the run (``grokviz.storage.timeline``). Too early to say, or a run of another family: one
``error: ...`` line, exit 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from grokviz.analysis.forecast import SIGNALS, fitted_constants, forecast
from grokviz.commands.analyze import clean
from grokviz.commands.flags import Parser, fail, threads
from grokviz.commands.flags import step as step_number
from grokviz.errors import GrokvizError
from grokviz.storage.forecast import observe
from grokviz.storage.runs import open_run


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="grokviz forecast",
        description="Say whether a run will grok, and when, from what it shows up to one step.",
    )
    parser.add_argument("run", metavar="RUN", help="a run folder (a modular-arithmetic run)")
    parser.add_argument(
        "--at", type=step_number, default=None, help="forecast from the files at steps <= this one (None: the last)"
    )
    parser.add_argument(
        "--signals",
        choices=SIGNALS,
        default="train",
        help="train: weights and training pairs only; all: the test split too",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a sentence")
    parser.add_argument("--threads", type=threads, default=1, help="torch CPU threads, at least 1")
    return parser


def main(argv: list[str] | None = None) -> int:
    from tqdm import tqdm

    from grokviz.storage.timeline import timeline

    args = build_parser().parse_args(argv)
    torch.set_flush_denormal(True)
    torch.set_num_threads(args.threads)
    try:
        run = open_run(Path(args.run))
        if run.family != "modular":
            observe(run, args.at)  # refuses in words
        bar = tqdm(desc="progress measures", unit="checkpoint", file=sys.stderr, disable=None)

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.n = done
            bar.refresh()

        frame = timeline(run, progress=progress)
        bar.close()
        made = forecast(observe(run, args.at, frame), args.signals, fitted_constants())
    except GrokvizError as exc:
        return fail(exc)
    print(json.dumps(clean(made.to_dict())) if args.json else made.sentence())
    return 0


if __name__ == "__main__":
    sys.exit(main())
