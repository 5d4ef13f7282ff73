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
import time
from collections.abc import Callable

import torch


def to_host(tensor: torch.Tensor) -> torch.Tensor:
    """A host copy of ``tensor`` as it is now, valid once the stream has passed this point (see
    ``ready_event``): on CUDA an asynchronous copy into pinned memory, on a CPU a clone."""
    if tensor.is_cuda:
        return tensor.detach().to("cpu", non_blocking=True)
    return tensor.detach().clone()


def ready_event(device: torch.device) -> torch.cuda.Event | None:
    """An event on the current stream after everything enqueued so far (None on a CPU)."""
    if device.type != "cuda":
        return None
    event = torch.cuda.Event(blocking=True)  # the writer sleeps on it instead of spinning a core
    event.record()
    return event


class Clock:
    """Seconds since the loop started, as the device sees them.

    On CUDA the host runs ahead of the device (by up to a launch queue), so the host's clock says
    when a step was queued, not when it ran: a mark is a timing event recorded on the stream,
    resolved by a writer job once its ``ready`` event has passed. On a CPU it is the host clock.
    """

    def __init__(self, device: torch.device) -> None:
        self._cuda = device.type == "cuda"
        self._host_start = time.perf_counter()
        if self._cuda:
            self._start = torch.cuda.Event(enable_timing=True)
            self._start.record()

    def mark(self) -> float | torch.cuda.Event:
        if not self._cuda:
            return time.perf_counter() - self._host_start
        event = torch.cuda.Event(enable_timing=True)
        event.record()
        return event

    def seconds(self, mark: float | torch.cuda.Event) -> float:
        """In a writer job: the mark in seconds (its event has completed by then)."""
        return mark if isinstance(mark, float) else self._start.elapsed_time(mark) / 1e3


class BackgroundWriter:
    """One thread that runs write jobs in order, each after its CUDA event (if any) has completed.

    A context manager: leaving the block waits for the jobs and raises their first error; leaving
    it with an exception lets that exception through, after the jobs finish (after Ctrl-C, only
    the job already running finishes; the rest are dropped: every file is written atomically).
    """

    def __init__(self) -> None:
        self._jobs: queue.Queue = queue.Queue()
        self._error: BaseException | None = None
        self._reported = False
        self._cancelled = False
        self._copy_stream = None
        self._thread = threading.Thread(target=self._work, name="grokviz-writer", daemon=True)
        self._thread.start()

    def __enter__(self) -> BackgroundWriter:
        return self

    def __exit__(self, kind, error, traceback) -> None:
        if kind is None:
            self.close()
            return
        self.close(cancel=issubclass(kind, KeyboardInterrupt), raise_error=False)
        if self._error is not None and not self._reported and hasattr(error, "add_note"):
            error.add_note(f"(a file write had also failed: {self._error!r})")

    def submit(self, job: Callable[[], None], ready: torch.cuda.Event | None = None) -> None:
        self._raise_if_failed()
        self._jobs.put((job, ready))

    def fetch(self, tensor: torch.Tensor) -> torch.Tensor:
        """In a job: a host copy of a tensor its event covers (a CPU tensor is returned as it is).

        Device tensors are copied on the writer's own stream, so the copy neither waits for the
        steps the loop has launched since nor holds them up, and only what is saved is copied.
        """
        if not tensor.is_cuda:
            return tensor.detach()
        if self._copy_stream is None:
            self._copy_stream = torch.cuda.Stream(tensor.device)
        with torch.cuda.stream(self._copy_stream):
            # Blocking, and that is what makes it safe: the copy has finished before the caller
            # can drop the tensor and the allocator hand its memory to the loop's stream. A
            # non-blocking copy would need tensor.record_stream(self._copy_stream) and a sync.
            return tensor.detach().to("cpu")

    def close(self, *, cancel: bool = False, raise_error: bool = True) -> None:
        """Wait for every job submitted so far (``cancel``: only the one running); raise the first
        error any of them hit."""
        self._cancelled = self._cancelled or cancel
        if self._thread.is_alive():
            self._jobs.put(None)
            self._thread.join()
        if raise_error:
            self._raise_if_failed()

    def _raise_if_failed(self) -> None:
        if self._error is not None and not self._reported:
            self._reported = True  # once: close() in a `finally` must not raise it a second time
            raise self._error

    def _work(self) -> None:
        while (item := self._jobs.get()) is not None:
            if self._error is not None or self._cancelled:
                continue  # after a failure, later jobs would write a folder with a hole in it
            job, ready = item
            try:
                if ready is not None:
                    ready.synchronize()  # blocks this thread only; the loop keeps launching steps
                job()
            except BaseException as exc:  # noqa: BLE001 - handed to the loop, which raises it
                self._error = exc
