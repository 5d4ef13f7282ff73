"""Ctrl-C and SIGTERM as a request to stop at the next step boundary: shared by every trainer."""

from __future__ import annotations

import signal


class StopFlag:
    """SIGINT/SIGTERM ask the loop to stop at the next step boundary (a second Ctrl-C aborts at once,
    without waiting for pending writes: every file is written atomically, so none is left half-written)."""

    def __init__(self) -> None:
        self.requested = False
        self._previous = {}

    def __enter__(self) -> StopFlag:
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread: leave signals alone
                pass
        return self

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
