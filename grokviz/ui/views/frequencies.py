"""Frequencies as the user reads and picks them: a key frequency's label with its neuron count, and a
list of frequencies read back from the URL (kept to the ints in range)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping


def frequency_label(k: int, counts: Mapping[int, int]) -> str:
    """'14 · 87 neurons' for a key frequency, '14' otherwise."""
    n = counts.get(int(k), 0)
    return f"{k} · {n} neuron{'s' if n != 1 else ''}" if n else str(k)


def ints_in_range(values: Iterable, low: int, high: int) -> list[int]:
    """Sorted distinct ints within [low, high] from possibly messy input (e.g. URL strings)."""
    out = set()
    for value in values:
        try:
            number = int(value)
        except (TypeError, ValueError):
            continue
        if low <= number <= high:
            out.add(number)
    return sorted(out)
