"""A training step captured once as a CUDA graph and replayed: no kernel launches, no host syncs.

A full-batch step of this model is a few microseconds of arithmetic per kernel and ~150 kernels;
launched one by one from Python, the launches cost more than the arithmetic. A CUDA graph records
the whole sequence once and replays it with one launch. What makes the step capturable:

* every tensor it touches lives at a fixed address (parameters and moments updated in place, the
  dataset on the device, outputs in graph-owned buffers that each replay overwrites);
* no host value changes between steps: the AdamW scalars are computed on the device from a
  device step counter (``grokviz.optim``);
* nothing in it waits for the host (no ``.item()``, no data-dependent shapes).

On a CPU, :func:`replayable` returns the step function itself, so the trainers run one code path
everywhere and the CPU tests exercise everything but the capture.
"""

from __future__ import annotations

import warnings
from typing import Callable, TypeVar

import torch

Output = TypeVar("Output")

# Eager calls before capture: they let lazy initialisation (cuBLAS handles and workspaces,
# autograd's engine, the caching allocator's pools) happen outside the graph, as PyTorch's docs
# ask for whole-network capture.
WARMUP_CALLS = 3


class GraphCaptureWarning(RuntimeWarning):
    """A step could not be captured and runs eagerly (slower, same results)."""


def replayable(step: Callable[[], Output], state: list[torch.Tensor], *, use_graph: bool = True) -> Callable[[], Output]:
    """``step`` (no arguments, no host syncs) as a function that replays its CUDA graph.

    ``state`` lists every tensor ``step`` changes in place (parameters, moments, step counter).
    The warm-up calls change it; it is saved before and restored after, so the first replay is
    the first real step. Each replay returns the same output tensors, overwritten in place: copy
    what must outlive the next replay.

    Returns ``step`` itself on a CPU or when ``use_graph`` is False. When the capture itself fails
    it warns (``GraphCaptureWarning``; checks turn it into an error) and returns ``step`` too, so
    a run never depends on the capture succeeding. An error in a warm-up call is the step's own
    error (it would fail eagerly too) and is raised.
    """
    if not use_graph or not state or not state[0].is_cuda:
        return step
    with torch.no_grad():
        saved = [t.detach().clone() for t in state]
    graph: torch.cuda.CUDAGraph | None = None
    try:
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        try:
            with torch.cuda.stream(side):
                for _ in range(WARMUP_CALLS):
                    step()
        finally:
            # Before anything else touches the state (the restore below, even after an error).
            torch.cuda.current_stream().wait_stream(side)
        try:
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                outputs = step()
        except RuntimeError as exc:  # an op that cannot be captured: run eagerly instead
            graph = None
            warnings.warn(f"CUDA graph capture failed, this step runs eagerly: {exc}", GraphCaptureWarning, stacklevel=2)
    finally:
        with torch.no_grad():
            for tensor, value in zip(state, saved):
                tensor.copy_(value)
    if graph is None:
        return step

    def replay() -> Output:
        graph.replay()
        return outputs

    return replay
