"""The view the Groups page's tabs draw: one small object, so a reader of a tab sees everything it depends on.

Built once per rerun by the Groups page (``grokviz.ui.pages.groups``) from the sidebar's choices
(run, step) and the checkpoint's headline numbers; the tabs (``grokviz.ui.groups_tabs``) read it and
draw. It also owns what several tabs share: the key irreps of the last checkpoint, the clustering
threshold they start from, and a result computed at every checkpoint (cached, with a progress bar).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from grokviz.core.groups import FiniteGroup
from grokviz.storage.runs import Run
from grokviz.ui import catalog, loaders
from grokviz.ui import groups_loaders as gl

DEFAULT_THRESHOLD = 0.85  # FVE at which a neuron counts as clustered on its irrep, as the modular one


@dataclass(frozen=True)
class GroupView:
    """What every tab draws from: the run, its checkpoints, the step, its group and its headline numbers."""

    run: Run
    steps: list[int]  # the checkpoints that load, ascending
    step: int  # the current one (the sidebar's slider)
    group: FiniteGroup
    info: dict  # groups_loaders.checkpoint at the step

    @property
    def path(self) -> str:
        return str(self.run.path)

    def mtime(self, step: int | None = None) -> float:
        """Modification time of a checkpoint (default: the current one)."""
        return catalog.checkpoint_mtime(self.run, self.step if step is None else step)

    @property
    def signature(self) -> tuple:
        """(step, mtime) of every checkpoint: what keys a result over the run."""
        return tuple((s, catalog.checkpoint_mtime(self.run, s)) for s in self.steps)

    @property
    def last(self) -> tuple[int, float]:
        return self.steps[-1], self.mtime(self.steps[-1])

    @property
    def last_key(self) -> list[str]:
        """The key irreps of the last checkpoint: the restricted / excluded loss and the ablation's default use them."""
        return gl.key_irreps(self.path, *self.last)

    def over_run(self, kind: str, point: Callable[[int, float], object], label: str, extra: tuple = ()) -> dict:
        """{step: ``point(step, mtime)``} at every checkpoint, with a progress bar the first time; kept in
        the memo store under ``kind`` and (path, signature, *extra)."""

        def compute(report) -> dict:
            out = {}
            for i, (s, m) in enumerate(self.signature):
                out[s] = point(s, m)
                report(i + 1, len(self.steps))
            return out

        return loaders.remembered(kind, (self.path, self.signature, *extra), compute, label)
