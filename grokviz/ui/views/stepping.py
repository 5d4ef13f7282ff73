"""Moving between saved steps: the checkpoint before one (the headline's deltas) and after it (Play)."""

from __future__ import annotations

from collections.abc import Sequence


def previous_step(steps: Sequence[int], step: int) -> int | None:
    earlier = [s for s in steps if s < step]
    return earlier[-1] if earlier else None


def next_step(steps: Sequence[int], step: int) -> int | None:
    later = [s for s in steps if s > step]
    return later[0] if later else None
