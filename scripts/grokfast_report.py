"""Milestones and progress measures of runs side by side: how much sooner a run groks, and in which phase.

    python scripts/grokfast_report.py checkpoints/add-p113 checkpoints/add-p113-grokfast

Prints, per run: the first logged step at which test accuracy reaches 50%, 90%, 99% and 99.9%;
the phase boundaries by the rule of ``grokviz.analysis.progress`` (from the run's log and its
timeline of progress measures); how long each phase lasted; and the progress measures
(restricted and excluded loss, Gini of the W_E and W_L spectra, sum of squared weights) at the
checkpoints nearest the phase ends. Reads the timeline cache beside each run (computes it once).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere without installing

import torch

from grokviz.analysis.progress import phase_boundaries
from grokviz.storage.runs import nearest_step, open_run
from grokviz.storage.timeline import timeline

LEVELS = (0.5, 0.9, 0.99, 0.999)
MEASURES = ("restricted_loss", "excluded_loss", "test_loss", "gini_embed", "gini_unembed", "sum_sq_weights")


def first_step(log, level: float) -> int | None:
    hits = log.step[log.test_accuracy >= level]
    return int(hits.iloc[0]) if len(hits) else None


def fmt(value) -> str:
    if value is None:
        return "never"
    if isinstance(value, float):
        return f"{value:.3g}"
    return f"{value:,}"


def main(paths: list[str]) -> None:
    torch.set_num_threads(1)
    print(
        "| run | "
        + " | ".join(f"test acc {level:.1%}" for level in LEVELS)
        + " | memorised by | circuit formed by | cleaned up by |"
    )
    print("|---" * (len(LEVELS) + 4) + "|")
    details = []
    for path in paths:
        run = open_run(path)
        log, frame = run.log(), timeline(run)
        phases = phase_boundaries(log, frame)
        ends = (phases.memorisation_end, phases.circuit_formation_end, phases.cleanup_end)
        print(
            f"| {run.name} | "
            + " | ".join(fmt(first_step(log, lv)) for lv in LEVELS)
            + " | "
            + " | ".join(fmt(e) for e in ends)
            + " |"
        )
        details.append((run, frame, ends))
    print()
    for run, frame, ends in details:
        starts = (0, *ends[:2])
        lengths = [None if e is None or s is None else e - s for s, e in zip(starts, ends)]
        print(
            f"{run.name}: phases last {', '.join(fmt(n) for n in lengths)} steps; key frequencies {frame.attrs['key_freqs']}"
        )
        print("| step | " + " | ".join(MEASURES) + " |\n|---" * 1 + "|---" * len(MEASURES) + "|")
        for end in (e for e in ends if e is not None):
            row = frame[frame.step == nearest_step(frame.step.tolist(), end)].iloc[0]
            print(f"| {int(row.step):,} | " + " | ".join(fmt(float(row[m])) for m in MEASURES if m in row) + " |")
        print()


if __name__ == "__main__":
    main(sys.argv[1:] or ["checkpoints/add-p113", "checkpoints/add-p113-grokfast"])
