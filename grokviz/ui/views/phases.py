"""The phases of a run (memorisation, circuit formation, cleanup) in words and as bands: which phase
a step falls in, and the (phase, start, end) rows the charts shade, from ``progress.Phases``."""

from __future__ import annotations

import pandas as pd

PHASE_NAMES = ("memorisation", "circuit formation", "cleanup", "after cleanup")


def phases_found(phases) -> bool:
    """False when no boundary could be read (e.g. a log without accuracies): the phase is unknown."""
    return any(
        getattr(phases, name, None) is not None for name in ("memorisation_end", "circuit_formation_end", "cleanup_end")
    )


def _phase_names(phases) -> tuple[str, ...]:
    # Without a grokking transition the time after memorisation is not known to be circuit formation.
    if getattr(phases, "memorisation_end", None) is not None and getattr(phases, "circuit_formation_end", None) is None:
        return ("memorisation", "after memorisation")
    return PHASE_NAMES


def phase_table(phases, last_step: int) -> pd.DataFrame:
    """Bands (phase, start, end) from a ``progress.Phases``; empty when no boundary was found.

    A run that memorised but has not grokked (yet) gets 'memorisation' and 'after memorisation'.
    """
    if not phases_found(phases):
        return pd.DataFrame(columns=["phase", "start", "end"])
    ends = [phases.memorisation_end, phases.circuit_formation_end, phases.cleanup_end, None]
    rows, start = [], 0
    for name, end in zip(_phase_names(phases), ends):
        stop = last_step if end is None else min(int(end), last_step)
        if stop > start:
            rows.append({"phase": name, "start": start, "end": stop})
        if end is None:
            break
        start = max(start, int(end))
    return pd.DataFrame(rows, columns=["phase", "start", "end"])


def phase_at(phases, step: int) -> str:
    """The phase a step falls in ('memorisation', ..., 'after cleanup'), or 'unknown'."""
    if not phases_found(phases):
        return "unknown"
    names = _phase_names(phases)
    ends = [phases.memorisation_end, phases.circuit_formation_end, phases.cleanup_end]
    for name, end in zip(names, ends):
        if end is None or step < int(end):
            return name
    return names[-1]
