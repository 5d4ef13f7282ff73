"""The view the explorer's tabs draw: one small object, so a reader of a tab sees everything it depends on.

Built once per rerun by the run explorer (``grokviz.ui.pages.explore``) from the sidebar's choices
(run, step, (a, b)) and what is loaded for them. The tabs (``grokviz.ui.tabs``) read it and draw;
they never reach into module globals.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from grokviz.analysis.group import Group, group_for
from grokviz.analysis.progress import Phases
from grokviz.core.architecture import Architecture
from grokviz.core.config import Config
from grokviz.core.params import Params
from grokviz.core.tasks import Dataset
from grokviz.storage.runs import Run
from grokviz.ui import catalog


@dataclass(frozen=True)
class View:
    """Run, step, input and what the pages share about them."""

    run: Run
    steps: list[int]  # the checkpoints that load, ascending
    step: int  # the current one (the sidebar's slider)
    a: int
    b: int
    dataset: Dataset  # the run's own train/test split
    params: Params  # the weights at ``step``
    log: pd.DataFrame | None  # the training log (None when it cannot be read)
    phases: Phases
    phase_bands: pd.DataFrame  # the phases as (start, end, phase) rows, for the charts' bands
    key_counts: dict[int, int]  # key frequency -> clustered neurons, at the last checkpoint
    signature: tuple  # changes while the run trains: part of every whole-run cache key
    correct_c: int | None  # the right answer for (a, b), None where (a, b) is not a valid pair
    too_big: str | None = None  # why live analysis is refused for this run (None: it is not)
    note: str | None = None  # shown above analyses that only mean something for + and -
    mtimes: dict[int, float] = field(default_factory=dict, compare=False)  # step -> file mtime, cached

    @property
    def cfg(self) -> Config:
        return self.run.config

    @property
    def p(self) -> int:
        return self.cfg.p

    @property
    def n_layers(self) -> int:
        """The model's blocks (tabs that show neurons or attention offer a layer choice when above 1)."""
        return self.cfg.n_layers

    @property
    def arch(self) -> Architecture:
        """The function the run's checkpoints compute (every forward of the app passes it)."""
        return self.cfg.architecture

    @property
    def group(self) -> Group:
        """The Fourier analysis's group: additive Z_p, or the discrete logs for mul and div."""
        return group_for(self.cfg.task, self.cfg.p)

    @property
    def run_path(self) -> str:
        return str(self.run.path)

    @property
    def path(self) -> Path:
        return self.run.path

    @property
    def key_freqs(self) -> list[int]:
        return sorted(self.key_counts)

    @property
    def key_text(self) -> str:
        """ "1 (96), 8 (144), 21 (138)": each key frequency with its clustered neurons."""
        return ", ".join(f"{k} ({n})" for k, n in self.key_counts.items()) or "none yet"

    @property
    def phase_key(self) -> tuple:
        """The phase bands as a hashable cache key."""
        return tuple(map(tuple, self.phase_bands.itertuples(index=False)))

    def mtime(self, step: int | None = None) -> float:
        """Modification time of a checkpoint (default: the current one), read once per rerun."""
        step = self.step if step is None else step
        if step not in self.mtimes:
            self.mtimes[step] = catalog.checkpoint_mtime(self.run, step)
        return self.mtimes[step]
