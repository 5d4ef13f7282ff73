"""How to train one run, not what: the keyword options both single-run trainers take.

Nothing here is stored in the run folder (that is the config's job), so two calls with other
options on the same config write the same run. ``training.single.train`` (modular) and
``training.digits.train_digits`` (the adder) take these as keyword arguments; the sweep's
counterpart is ``training.ensemble.EnsembleOptions``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from grokviz.errors import GrokvizError


@dataclass(frozen=True)
class RunOptions:
    """``resume``: continue the run folder from its resume state instead of starting a new one.
    ``device``: ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"``, ...; ``threads``: CPU threads
    (None: torch's own count, all cores; see ``training.device.configure_cpu``).
    ``progress``: draw a progress bar and print notes. ``stop_after_steps``: stop after that many
    steps of this call as a kill would, leaving the run resumable (tests of ``--resume``)."""

    resume: bool = False
    device: str = "auto"
    threads: int | None = None
    progress: bool = True
    stop_after_steps: int | None = None
    tracker: Any = None  # str | trackers.Tracker | None

    def __post_init__(self) -> None:
        if self.threads is not None and self.threads < 1:
            raise GrokvizError(f"threads={self.threads} must be at least 1")
        if self.stop_after_steps is not None and self.stop_after_steps < 0:
            raise GrokvizError(f"stop_after_steps={self.stop_after_steps} must be at least 0")
        from grokviz.training.trackers import check

        check(self.tracker)
