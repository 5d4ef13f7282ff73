"""Where a trainer starts: step 0 in a new run folder, or the step ``--resume`` continues from.

Shared by the single run (``training.single``) and the adder (``training.digits``): each checks
its own config against the run's first (the adder's must match; the single run's may extend
``steps``), then takes its weights and AdamW moments from here.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from grokviz.core.params import Params
from grokviz.errors import GrokvizError
from grokviz.storage.resume import RESUME_FILE, load_resume_state
from grokviz.storage.runs import require_new_folder
from grokviz.training.optim import AdamWState


def trainable(params: Params, dev: torch.device) -> Params:
    """``params`` on ``dev``, each a leaf that requires grad."""
    return {k: v.to(dev).requires_grad_(True) for k, v in params.items()}


def fresh_start(out: Path, init: Callable[[], Params], dev: torch.device) -> tuple[int, Params, AdamWState]:
    """Step 0: ``out`` must be new (or empty), the weights are ``init()`` and the moments zero."""
    require_new_folder(out, other_choice=" or pass --resume")
    params = trainable(init(), dev)
    return 0, params, AdamWState.zeros_like(params)


def resumed_start(out: Path, dev: torch.device) -> tuple[int, Params, AdamWState, dict[str, Params]]:
    """(step, weights, AdamW state, other named state such as the Grokfast filter's) from
    ``out``'s resume state, on ``dev``: a bit-exact continuation of the run.

    Checkpoints after the resume point stay: the resumed loop is deterministic and rewrites them
    with the same contents. Temporary files of a killed write are removed."""
    if not (out / RESUME_FILE).is_file():
        raise GrokvizError(f"{out}: no {RESUME_FILE}; this run cannot be resumed")
    step, params, exp_avg, exp_avg_sq, extra = load_resume_state(out)
    for entry in out.glob(".*.tmp"):
        entry.unlink(missing_ok=True)
    to_dev = lambda group: {k: v.to(dev) for k, v in group.items()}  # noqa: E731
    state = AdamWState(
        step=torch.tensor(step, dtype=torch.int64, device=dev), exp_avg=to_dev(exp_avg), exp_avg_sq=to_dev(exp_avg_sq)
    )
    return step, trainable(params, dev), state, extra
