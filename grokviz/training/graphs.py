"""A training step captured once as a CUDA graph and replayed: no kernel launches, no host syncs.

A full-batch step of this model is a few microseconds of arithmetic per kernel and ~150 kernels;
launched one by one from Python, the launches cost more than the arithmetic. A CUDA graph records
the whole sequence once and replays it with one launch. What makes the step capturable:

* every tensor it touches lives at a fixed address (parameters and moments updated in place, the
  dataset on the device, outputs in graph-owned buffers that each replay overwrites);
* no host value changes between steps: the AdamW scalars are computed on the device from a
  device step counter (``grokviz.training.optim``);
* nothing in it waits for the host (no ``.item()``, no data-dependent shapes).

On a CPU, :func:`replayable` returns the step function itself, so the trainers run one code path
everywhere and the CPU tests exercise everything but the capture. ``--eager`` (``use_graph=False``)
does the same on CUDA.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import torch

from grokviz.errors import GrokvizError

Output = TypeVar("Output")

# Eager calls before capture: they let lazy initialisation (cuBLAS handles and workspaces,
# autograd's engine, the caching allocator's pools) happen outside the graph, as PyTorch's docs
# ask for whole-network capture.
WARMUP_CALLS = 3


def replayable(
    step: Callable[[], Output], state: list[torch.Tensor], *, use_graph: bool = True
) -> Callable[[], Output]:
    """``step`` (no arguments, no host syncs) as a function that replays its CUDA graph.

    ``state`` lists every tensor ``step`` changes in place (parameters, moments, step counter).
    The warm-up calls change it; it is saved before and restored after, so the first replay is
    the first real step. Each replay returns the same output tensors, overwritten in place: copy
    what must outlive the next replay.

    Returns ``step`` itself on a CPU or when ``use_graph`` is False. An error in a warm-up call is
    the step's own error and is raised as it is. A failed capture raises ``GrokvizError`` (run
    with ``--eager``): it cannot fall back in-process, because PyTorch's allocator still counts
    the broken capture as under way, and every later capture and cache release would fail.
    """
    if not use_graph or not state or not state[0].is_cuda:
        return step
    with torch.no_grad():
        saved = [t.detach().clone() for t in state]
    caller_stream = torch.cuda.current_stream()
    try:
        side = torch.cuda.Stream()
        side.wait_stream(caller_stream)
        try:
            with torch.cuda.stream(side):
                for _ in range(WARMUP_CALLS):
                    step()
        finally:
            # Before anything else touches the state (the restore below, even after an error).
            caller_stream.wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph):
                outputs = step()
        except RuntimeError as exc:
            # The error that broke the capture is the context of the one ending it.
            cause = exc.__context__ or exc
            raise GrokvizError(
                f"this step cannot be captured as a CUDA graph ({cause}); "
                "train with --eager to launch it without graphs"
            ) from exc
    finally:
        # A failed capture can leave its capture stream current; restore the caller's first.
        torch.cuda.set_stream(caller_stream)
        with torch.no_grad():
            for tensor, value in zip(state, saved):
                tensor.copy_(value)

    def replay() -> Output:
        graph.replay()
        return outputs

    return replay
