"""Which steps become checkpoints: a fixed schedule, plus accuracy events.

The fixed schedule is step 0, the end, every ``save_every`` steps and ``save_log_points``
log-spaced early steps. On top of it, the first log row at which test (or train) accuracy
crosses one of ``ACCURACY_EVENTS`` is saved too, which puts checkpoints around the grokking
transition wherever it falls.
"""

from __future__ import annotations

import math

from grokviz.core.config import Config
from grokviz.storage.runs import Run

# Accuracy levels whose first crossing triggers a checkpoint (test: the grokking transition;
# train: memorisation).
ACCURACY_EVENTS = {
    "test_accuracy": (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 0.999),
    "train_accuracy": (0.5, 0.9, 0.99, 1.0),
}
# On CUDA, metrics are copied to the host once per this many steps (one sync), not per log row.
CUDA_FLUSH_EVERY = 500

Fired = set[tuple[str, float]]


def checkpoint_schedule(cfg: Config) -> set[int]:  # or a DigitsConfig: the same fields
    """Steps saved whatever happens: 0, the end, every ``save_every`` and log-spaced early ones."""
    log_spaced = {
        min(cfg.steps, max(1, round(math.exp(i * math.log(cfg.steps) / max(cfg.save_log_points - 1, 1)))))
        for i in range(cfg.save_log_points)
    }
    regular = set(range(0, cfg.steps + 1, cfg.save_every))
    return {0, cfg.steps} | regular | log_spaced


def new_events(record: dict, fired: Fired, events: dict[str, tuple[float, ...]] = ACCURACY_EVENTS) -> bool:
    """Whether the log row ``record`` crosses an accuracy level of ``events`` (metric -> levels) for
    the first time (``fired`` is updated)."""
    crossed = False
    for metric, levels in events.items():
        for level in levels:
            if (metric, level) not in fired and record[metric] >= level:
                fired.add((metric, level))
                crossed = True
    return crossed


def events_already_fired(run: Run, events: dict[str, tuple[float, ...]] = ACCURACY_EVENTS) -> Fired:
    """The accuracy events a run's log has already crossed (a resumed run must not fire them again)."""
    fired: Fired = set()
    for record in run.log().to_dict("records"):
        new_events(record, fired, events)
    return fired
