"""The frame around a trainer's steps, shared by the single run and the adder: the progress bar,
Ctrl-C/SIGTERM as a request to stop at a step boundary, the background writer, closing the log,
and the one line that says how to go on after a stop.

A trainer writes its own step (what it computes, logs and saves); this owns only what every
trainer does around it::

    with TrainingLoop(cfg.steps, start, progress, stop_after_steps, log) as loop:
        for step in loop.steps():
            if loop.stopping(step):
                ...save a resume state with loop.writer...
                break
            ...one step; loop.bar.update(1)...
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

from grokviz.storage.log import LogWriter
from grokviz.training.stop import StopFlag
from grokviz.training.trackers import Guarded
from grokviz.training.writer import BackgroundWriter


class TrainingLoop:
    """Steps ``start`` .. ``total`` (inclusive: the last one is only evaluated), with a progress bar
    that starts at ``start``. ``stop_after_steps`` stops after that many steps of this call as a kill
    would (tests of ``--resume``)."""

    def __init__(
        self,
        total: int,
        start: int,
        progress: bool,
        stop_after_steps: int | None,
        log: LogWriter,
        tracker: Guarded | None = None,
    ):
        self.total, self.start, self.step = total, start, start
        self.progress, self.stop_after_steps, self.log = progress, stop_after_steps, log
        self.tracker = tracker  # closed after the writer has sent it the last rows
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> TrainingLoop:
        from tqdm import tqdm  # imported here: the commands' --help must not wait for it

        self.bar = tqdm(
            total=self.total, initial=self.start, disable=not self.progress, unit="step", dynamic_ncols=True
        )
        # Unwound in reverse: the writer finishes its jobs when the loop ends (and raises their
        # error, if any) while the stop flag still turns SIGTERM into a request rather than a kill;
        # the tracker, the bar and the log close last, whatever happened.
        self._stack.callback(self.log.close)
        self._stack.callback(self.bar.close)
        if self.tracker is not None:
            self._stack.callback(self.tracker.close)
        self.stop = self._stack.enter_context(StopFlag())
        self.writer = self._stack.enter_context(BackgroundWriter())
        return self

    def __exit__(self, *exc) -> None:
        self._stack.__exit__(*exc)
        if exc[0] is None and self.stop.requested:
            print(f"stopped at step {self.step}; continue with --resume", file=sys.stderr)

    def steps(self) -> Iterator[int]:
        for step in range(self.start, self.total + 1):
            self.step = step  # the step a stop message names
            yield step

    def stopping(self, step: int) -> bool:
        """Whether to save a resume state and stop before ``step`` (never before the first)."""
        asked = self.stop.requested or (
            self.stop_after_steps is not None and step - self.start >= self.stop_after_steps
        )
        return asked and step > self.start
