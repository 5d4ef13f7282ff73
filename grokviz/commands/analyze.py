"""``grokviz analyze PATH [--step N] [--json] [--timeline]`` (or ``python -m grokviz analyze``): one checkpoint, summarised.

PATH is a run folder (default: its last checkpoint; ``--step N`` picks another) or a single
checkpoint file. A 10-digit adder run gets its own summary (``grokviz.analysis.digits_summary``:
exact match on the verification set, per-position accuracy, parameter count). ``--json`` prints one JSON object (the contract in docs/cli.md:
step, p, task, train/test loss and accuracy, key_frequencies, neuron_frequency_counts,
fraction_neurons_clustered, excluded_loss, restricted_loss, and a few more); without it, a short
human-readable summary. ``--timeline`` also computes the progress measures of every checkpoint
(progress bar on stderr, cached beside the run by ``grokviz.storage.timeline``) and the phases.

Errors a user can cause print ``error: ...`` on stderr and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import torch

from grokviz.analysis.progress import phase_boundaries
from grokviz.commands.flags import Parser, fail, fraction, threads
from grokviz.commands.flags import step as step_number
from grokviz.core.families import FAMILIES, SummaryRequest, family_of
from grokviz.errors import GrokvizError
from grokviz.storage.target import open_checkpoint


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="grokviz analyze",
        description="Summarise a checkpoint: losses, key frequencies, clustered neurons, progress measures.",
    )
    parser.add_argument("path", metavar="PATH", help="a run folder or one step_*.safetensors checkpoint file")
    parser.add_argument(
        "--step", type=step_number, default=None, help="checkpoint step of a run folder (None: the last)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a summary")
    parser.add_argument(
        "--timeline",
        action="store_true",
        help="also compute progress measures over every checkpoint (cached beside the run)",
    )
    parser.add_argument(
        "--key-freqs",
        default=None,
        help="comma-separated key frequencies for restricted/excluded loss (None: the checkpoint's own)",
    )
    parser.add_argument(
        "--threshold",
        type=fraction,
        default=0.85,
        help="FVE in (0, 1] from which a neuron counts as clustered on one frequency",
    )
    parser.add_argument(
        "--threads",
        type=threads,
        default=1,
        help="torch CPU threads, at least 1 (1: on a 2-core machine 2 threads made this 3x slower)",
    )
    return parser


def clean(value):
    """JSON has no NaN/inf: write null instead."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clean(v) for v in value]
    return value


def summarise_target(
    path: Path, step: int | None = None, key_freqs: str | None = None, threshold: float = 0.85, timeline: bool = False
):
    """What ``grokviz analyze PATH`` computes: (the summary object, before ``--json`` writes NaN as
    null; the family's summary module, whose ``human`` prints it; the checkpoint). Also the
    library's ``grokviz.analyze``. Every option is checked before anything is cached beside the run."""
    checkpoint = open_checkpoint(path, step)
    family = family_of(checkpoint.config)
    given = [flag for flag, value in (("--timeline", timeline), ("--key-freqs", key_freqs)) if value]
    unsupported = [flag for flag in given if flag not in family.analyze_flags]
    if unsupported:
        # The families whose runs take these options, in words ("modular-arithmetic").
        takers = [f for f in FAMILIES.values() if set(unsupported) <= set(f.analyze_flags)]
        others = " or ".join(f.label.removeprefix("a ").removesuffix(" run") for f in takers)
        verb = "is" if len(unsupported) == 1 else "are"
        raise GrokvizError(f"{path}: is {family.label}; {' and '.join(unsupported)} {verb} for {others} runs only")
    if timeline and checkpoint.run is None:
        raise GrokvizError(f"{path}: --timeline needs a run folder, not a single checkpoint file")
    summary = family.load(family.summary_path)
    run = checkpoint.run
    request = SummaryRequest(
        checkpoint.config,
        checkpoint.step,
        checkpoint.params,
        log=None if run is None else run.log,
        key_freqs=key_freqs,
        threshold=threshold,
        source=str(path),
    )
    out = summary.summarise_checkpoint(request)
    if timeline:
        out.update(_timeline(checkpoint.run, out["ablation_frequencies"] if key_freqs else None))
    return out, summary, checkpoint


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # After weight decay the weights can be denormal floats, which slow CPU arithmetic many-fold.
    torch.set_flush_denormal(True)
    # Measured on the 2-core CI machine: 1 thread ~3x faster than 2 for these p^2-row products
    # (thread wake-ups and a busy second core cost more than the split saves).
    torch.set_num_threads(args.threads)
    path = Path(args.path)
    try:
        out, summary, checkpoint = summarise_target(path, args.step, args.key_freqs, args.threshold, args.timeline)
        for problem in checkpoint.skipped:  # broken files are skipped, and said so
            print(f"warning: {problem}", file=sys.stderr)
    except GrokvizError as exc:
        return fail(exc)
    print(json.dumps(clean(out)) if args.json else summary.human(str(path), out))
    return 0


def _timeline(run, key_freqs: list[int] | None) -> dict:
    from tqdm import tqdm

    from grokviz.storage.timeline import timeline

    bar = tqdm(desc="timeline", unit="checkpoint", file=sys.stderr, disable=None)

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    frame = timeline(run, key_freqs=key_freqs, progress=progress)
    bar.close()
    phases = phase_boundaries(run.log(), frame)
    return {
        "timeline_key_frequencies": frame.attrs.get("key_freqs", []),
        "timeline": frame.to_dict("records"),
        "phases": {
            "memorisation_end": phases.memorisation_end,
            "circuit_formation_end": phases.circuit_formation_end,
            "cleanup_end": phases.cleanup_end,
            "rule": phases.rule,
        },
    }


if __name__ == "__main__":
    sys.exit(main())
