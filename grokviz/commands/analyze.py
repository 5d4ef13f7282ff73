"""``grokviz analyze PATH`` / ``python -m grokviz.analyze PATH [--step N] [--json] [--timeline]``: one checkpoint, summarised.

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
from grokviz.analysis.summary import summarise
from grokviz.commands.flags import Parser, fail, fraction, threads
from grokviz.commands.flags import step as step_number
from grokviz.core.config import check_analysable
from grokviz.errors import GrokvizError
from grokviz.storage.runs import DIGITS, family_of
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


def _parse_key_freqs(text: str | None, p: int) -> list[int] | None:
    if text is None:
        return None
    try:
        values = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise GrokvizError(f"--key-freqs={text!r}: expected comma-separated integers, e.g. 14,35,41") from None
    if not values:
        raise GrokvizError(f"--key-freqs={text!r} names no frequency; give comma-separated integers, e.g. 14,35,41")
    bad = [k for k in values if not 1 <= k <= (p - 1) // 2]
    if bad:
        raise GrokvizError(f"--key-freqs: {bad} outside 1..{(p - 1) // 2} (the frequencies of p={p})")
    return values


def _clean(value):
    """JSON has no NaN/inf: write null instead."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _human(path: Path, out: dict) -> str:
    lines = [f"{path}: step {out['step']} of {out['task']} (p={out['p']})"]
    lines.append(
        f"  train loss {out['train_loss']:.3g}, accuracy {out['train_accuracy']:.2%}   "
        f"test loss {out['test_loss']:.3g}, accuracy {out['test_accuracy']:.2%}"
    )
    counts = ", ".join(f"{k} ({n})" for k, n in out["neuron_frequency_counts"].items()) or "none"
    if out.get("basis") == "discrete-log":
        lines.append(
            f"  basis: discrete-log, generator g = {out['generator']}: frequencies over Z_{out['p'] - 1}, "
            "pairs containing 0 left out"
        )
    lines.append(f"  key frequencies (clustered neurons): {counts}")
    lines.append(
        f"  clustered neurons: {out['fraction_neurons_clustered']:.1%} of {out['n_neurons']} "
        f"(FVE >= {out['clustered_threshold']}), {out['n_dead_neurons']} dead"
    )
    lines.append(
        f"  restricted loss {out['restricted_loss']:.3g} (keep only {out['ablation_frequencies']}), "
        f"excluded loss {out['excluded_loss']:.3g} (remove them; train pairs)"
    )
    if not out["fourier_task"]:
        lines.append(
            f"  note: the Fourier measures describe addition; for task {out['task']!r} they are shown, not meaningful"
        )
    if "phases" in out:
        ph = out["phases"]
        lines.append(
            f"  timeline: {len(out['timeline'])} checkpoints; phases end at memorisation "
            f"{ph['memorisation_end']}, circuit formation {ph['circuit_formation_end']}, cleanup {ph['cleanup_end']}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # After weight decay the weights can be denormal floats, which slow CPU arithmetic many-fold.
    torch.set_flush_denormal(True)
    # Measured on the 2-core CI machine: 1 thread ~3x faster than 2 for these p^2-row products
    # (thread wake-ups and a busy second core cost more than the split saves).
    torch.set_num_threads(args.threads)
    path = Path(args.path)
    try:
        checkpoint = open_checkpoint(path, args.step)
        cfg, step, params, run = checkpoint.config, checkpoint.step, checkpoint.params, checkpoint.run
        if family_of(cfg) == DIGITS:
            return _digits(path, checkpoint, args)
        # Every option is checked before anything is printed or cached beside the run.
        check_analysable(cfg, str(path))
        key_freqs = _parse_key_freqs(args.key_freqs, cfg.p)
        if args.timeline and run is None:
            raise GrokvizError(f"{path}: --timeline needs a run folder, not a single checkpoint file")
        for problem in checkpoint.skipped:  # broken files are skipped, and said so
            print(f"warning: {problem}", file=sys.stderr)
        out = summarise(cfg, step, params, key_freqs, args.threshold)
        if args.timeline:
            out.update(_timeline(run, key_freqs))
    except GrokvizError as exc:
        return fail(exc)
    if args.json:
        print(json.dumps(_clean(out)))
    else:
        print(_human(path, out))
    return 0


def _digits(path: Path, checkpoint, args) -> int:
    """A digits (10-digit adder) checkpoint: its own summary; the modular-only options are refused."""
    from grokviz.analysis.digits_summary import human, summarise_digits

    modular_only = [flag for flag, given in (("--timeline", args.timeline), ("--key-freqs", args.key_freqs)) if given]
    if modular_only:
        return fail(
            GrokvizError(
                f"{path}: is a 10-digit adder run; {' and '.join(modular_only)} "
                f"{'is' if len(modular_only) == 1 else 'are'} for modular-arithmetic runs only"
            )
        )
    for problem in checkpoint.skipped:
        print(f"warning: {problem}", file=sys.stderr)
    log_row = None
    if checkpoint.run is not None:
        log = checkpoint.run.log()
        earlier = log[log["step"] <= checkpoint.step]
        if len(earlier):
            log_row = {k: (int(v) if k == "step" else float(v)) for k, v in earlier.iloc[-1].items()}
    out = summarise_digits(checkpoint.config, checkpoint.step, checkpoint.params, log_row)
    print(json.dumps(_clean(out)) if args.json else human(str(path), out))
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
