""" "A run folder, or one checkpoint file, plus a step": the one resolver every command uses.

``grokviz analyze PATH [--step N]`` and ``grokviz convert export-tl PATH [--step N]`` (and any
later command that reads one checkpoint) accept the same two kinds of PATH, with the same checks
and the same messages.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from grokviz.core.config import Config
from grokviz.core.params import Params
from grokviz.errors import GrokvizError
from grokviz.storage.runs import Run, load_checkpoint_file, open_run, shown_steps


@dataclass(frozen=True)
class Checkpoint:
    """One loaded checkpoint: its config, step and weights, and the run it belongs to (None for a
    file given on its own). ``skipped`` holds one message per file of the run that could not be read."""

    config: Config
    step: int
    params: Params
    run: Run | None
    skipped: tuple[str, ...] = ()


def open_checkpoint(path: str | os.PathLike, step: int | None = None, step_flag: str = "--step") -> Checkpoint:
    """Load ``step`` (default: the last saved one) of the run folder ``path``, or the checkpoint file ``path``.

    A file's own step must equal ``step`` when one is given. ``step_flag`` names the option in messages.
    """
    path = Path(path)
    if path.is_file():
        cfg, file_step, params = load_checkpoint_file(path)
        if step is not None and step != file_step:
            raise GrokvizError(
                f"{path}: this checkpoint is step {file_step}, not {step_flag} {step}; "
                "give the run folder to choose a step"
            )
        return Checkpoint(cfg, file_step, params, None)
    if not path.exists():
        raise GrokvizError(f"{path}: no such run folder or checkpoint file")
    run = open_run(path)
    steps = run.steps()
    if not steps and run.problems:  # checkpoints there, none loadable: say why, not "none yet"
        more = f" (and {len(run.problems) - 1} more like it)" if len(run.problems) > 1 else ""
        raise GrokvizError(f"{path}: no checkpoint of the run can be read: {run.problems[0]}{more}")
    if not steps:
        raise GrokvizError(f"{path}: the run has no checkpoints yet")
    if step is None:
        step = steps[-1]
    elif step not in steps:
        raise GrokvizError(f"{path}: no checkpoint for {step_flag} {step}; saved steps are {shown_steps(steps)}")
    return Checkpoint(run.config, step, run.load(step), run, tuple(run.problems))
