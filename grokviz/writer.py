"""Writing a run's log and checkpoints beside the training loop, so the loop never waits for them.

The loop hands over *host copies* that it has only started (``to_host``: on CUDA an asynchronous
copy into pinned memory, ordered on the stream after the step that produced the values) together
with a CUDA event recorded after them. The writer thread waits for that event, not the loop, then
does the slow part: deciding which checkpoints to keep and writing files. Jobs run one at a time
in the order given, so the run folder changes exactly as it would if the loop wrote it itself.

An error in a job (a full disk, say) stops the jobs after it and is raised in the loop at its next
``submit`` or at ``close``.
"""

from __future__ import annotations

import queue
import threading
from typing import Callable

import torch


def to_host(tensor: torch.Tensor, *, copy: bool = True) -> torch.Tensor:
    """A host copy of ``tensor``, valid once the stream has passed this point (see ``ready_event``).

    On a CPU, ``copy=False`` hands over the tensor itself: use it for tensors nobody changes later
    (snapshots); live ones (parameters, moments) need the copy.
    """
    if tensor.is_cuda:
        return tensor.detach().to("cpu", non_blocking=True)
    return tensor.detach().clone() if copy else tensor.detach()


def ready_event(device: torch.device) -> torch.cuda.Event | None:
    """An event on the current stream after everything enqueued so far (None on a CPU)."""
    if device.type != "cuda":
        return None
    event = torch.cuda.Event()
    event.record()
    return event


class BackgroundWriter:
    """One thread that runs write jobs in order, each after its CUDA event (if any) has completed."""

    def __init__(self) -> None:
        self._jobs: queue.Queue = queue.Queue()
        self._error: BaseException | None = None
        self._reported = False
        self._thread = threading.Thread(target=self._work, name="grokviz-writer", daemon=True)
        self._thread.start()

    def submit(self, job: Callable[[], None], ready: torch.cuda.Event | None = None) -> None:
        self._raise_if_failed()
        self._jobs.put((job, ready))

    def close(self) -> None:
        """Wait for every job submitted so far; raise the first error any of them hit."""
        if self._thread.is_alive():
            self._jobs.put(None)
            self._thread.join()
        self._raise_if_failed()

    def _raise_if_failed(self) -> None:
        if self._error is not None and not self._reported:
            self._reported = True  # once: close() in a `finally` must not raise it a second time
            raise self._error

    def _work(self) -> None:
        while (item := self._jobs.get()) is not None:
            if self._error is not None:
                continue  # a job failed: later ones would write a folder with a hole in it
            job, ready = item
            try:
                if ready is not None:
                    ready.synchronize()  # blocks this thread only; the loop keeps launching steps
                job()
            except BaseException as exc:  # noqa: BLE001 - handed to the loop, which raises it
                self._error = exc
