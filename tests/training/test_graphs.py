"""What makes the training step replayable as a CUDA graph, checked without a GPU.

A CUDA graph replays a fixed sequence of kernels, so the step must never read a tensor's value on
the host (``.item()``, data-dependent shapes) and must keep every per-step scalar on the device.
On the ``meta`` device tensors have shapes but no values, so any such read fails there: a step
that runs on ``meta`` is free of host syncs. The capture itself needs a GPU
(``scripts/check_gpu.py``); everything around it is checked here.
"""

from __future__ import annotations

import threading

import pytest
import torch

from grokviz.core.config import Config
from grokviz.core.params import init_params
from grokviz.errors import GrokvizError
from grokviz.training.graphs import replayable
from grokviz.training.members import make_groups, step_group
from grokviz.training.optim import AdamWState, Hyper, adamw_step, learning_rate
from grokviz.training.single import SingleStep
from grokviz.training.writer import BackgroundWriter, Clock, to_host

META = torch.device("meta")


def small() -> Config:
    return Config(p=13, d_model=8, n_heads=2, d_head=4, d_mlp=16, warmup_steps=3)


def test_meta_device_catches_host_reads() -> None:
    # The premise of the tests below: a host read of a meta tensor fails.
    with pytest.raises(RuntimeError, match="meta"):
        torch.ones(3, device=META).sum().item()


def test_single_run_step_has_no_host_sync() -> None:
    cfg = small()
    params = {k: v.to(META).requires_grad_(True) for k, v in init_params(cfg).items()}
    state = AdamWState.zeros_like(params)
    data = tuple(torch.zeros(40, dtype=torch.long, device=META) for _ in range(3))
    step = SingleStep(params, state, Hyper.of(cfg, META), data, data)
    assert step(evaluate=True).shape == (4,)
    assert step(evaluate=False) is None
    assert all(t.device == META for t in step.state_tensors())


def test_ensemble_step_has_no_host_sync() -> None:
    (group,) = make_groups([small().replace(seed=s, lr=lr) for s, lr in ((0, 1e-3), (1, 3e-3))], META)
    assert step_group(group, evaluate=True).shape == (2, 4)
    assert step_group(group, evaluate=False) is None
    assert group.hyper.table.shape == (small().steps, 3, 2) and group.hyper.table.device == META


def test_device_schedule_follows_the_host_learning_rate() -> None:
    # The row the device step counter picks is that of the host formula: with zero gradients and
    # zero moments an update only decays the weights by 1 - lr * wd.
    cfg = small().replace(weight_decay=0.5, lr=0.01)
    params = {"w": torch.ones(3, dtype=torch.float64)}
    state = AdamWState.zeros_like(params)
    for step in range(6):
        before = params["w"].clone()
        adamw_step(params, {"w": torch.zeros(3, dtype=torch.float64)}, state, Hyper.of(cfg))
        expected = torch.tensor(1 - learning_rate(cfg, step) * cfg.weight_decay).float().double()
        torch.testing.assert_close(params["w"] / before, expected.expand(3), rtol=1e-7, atol=0)
    assert state.step.item() == 6 and state.step.dtype == torch.int64


class _Fakes:
    """Stand-ins for torch.cuda's streams and graphs that record what replayable does with them."""

    def __init__(self, capture_error: Exception | None = None) -> None:
        self.calls: list[str] = []
        self.current = "caller"
        self.capture_error = capture_error
        fakes = self

        class Stream:
            def __init__(self, name="side"):
                self.name = name

            def wait_stream(self, other):
                fakes.calls.append(f"{self.name} waits for {other.name}")

        class StreamContext:
            def __init__(self, stream):
                self.stream, self.before = stream, None

            def __enter__(self):
                self.before, fakes.current = fakes.current, self.stream.name

            def __exit__(self, *exc):
                fakes.current = self.before

        class CUDAGraph:
            def replay(self):
                fakes.calls.append("replay")

        class Graph:  # as torch.cuda.graph: on a failed capture its exit raises, stream left changed
            def __init__(self, graph):
                pass

            def __enter__(self):
                fakes.current = "capture"
                fakes.calls.append("capture")

            def __exit__(self, *exc):
                if fakes.capture_error is not None:
                    raise RuntimeError("operation failed due to a previous error during capture") from None
                fakes.current = "caller"

        self.Stream, self.StreamContext, self.CUDAGraph, self.Graph = Stream, StreamContext, CUDAGraph, Graph

    def install(self, monkeypatch) -> None:
        monkeypatch.setattr(torch.cuda, "Stream", self.Stream)
        monkeypatch.setattr(torch.cuda, "stream", self.StreamContext)
        monkeypatch.setattr(torch.cuda, "current_stream", lambda: self.Stream(self.current))
        monkeypatch.setattr(torch.cuda, "set_stream", lambda stream: setattr(self, "current", stream.name))
        monkeypatch.setattr(torch.cuda, "CUDAGraph", self.CUDAGraph)
        monkeypatch.setattr(torch.cuda, "graph", self.Graph)


class _OnDevice(torch.Tensor):
    """A CPU tensor that says it is on CUDA, so replayable takes its capture path with the fakes."""

    @property
    def is_cuda(self) -> bool:
        return True


def _counter_step(weights: torch.Tensor, fakes: _Fakes, fail_at: int | None = None):
    def step() -> torch.Tensor:
        fakes.calls.append(f"step on {fakes.current}")
        if fail_at is not None and weights.sum() >= fail_at:
            if fakes.current == "capture":
                try:
                    raise RuntimeError("operation not permitted when stream is capturing")
                except RuntimeError:
                    fakes.capture_error = True
                    raise
            raise ValueError("the step's own error")
        weights.add_(1)
        return weights * 10

    return step


def test_replayable_warms_up_captures_and_restores_the_state(monkeypatch) -> None:
    fakes = _Fakes()
    fakes.install(monkeypatch)
    weights = torch.zeros(2).as_subclass(_OnDevice)
    replay = replayable(_counter_step(weights, fakes), [weights])
    # Three warm-up calls on the side stream, one captured call, then the state as it was.
    assert fakes.calls == ["side waits for caller"] + ["step on side"] * 3 + [
        "caller waits for side",
        "capture",
        "step on capture",
    ]
    assert weights.tolist() == [0.0, 0.0] and fakes.current == "caller"
    replay()
    assert fakes.calls[-1] == "replay"


def test_replayable_raises_a_failed_capture_with_its_cause_and_restores_stream_and_state(monkeypatch) -> None:
    fakes = _Fakes()
    fakes.install(monkeypatch)
    weights = torch.zeros(2).as_subclass(_OnDevice)
    with pytest.raises(GrokvizError, match="not permitted when stream is capturing.*--eager"):
        replayable(_counter_step(weights, fakes, fail_at=6), [weights])  # 3 warm-ups: sum 6
    assert fakes.current == "caller"  # the capture left its own stream current; restored
    assert weights.tolist() == [0.0, 0.0]


def test_replayable_raises_a_warm_up_error_as_it_is_after_waiting_for_the_side_stream(monkeypatch) -> None:
    fakes = _Fakes()
    fakes.install(monkeypatch)
    weights = torch.zeros(2).as_subclass(_OnDevice)
    with pytest.raises(ValueError, match="the step's own error"):
        replayable(_counter_step(weights, fakes, fail_at=2), [weights])
    assert "caller waits for side" in fakes.calls and fakes.current == "caller"
    assert weights.tolist() == [0.0, 0.0]


def test_replayable_runs_the_step_itself_on_cpu() -> None:
    def step() -> str:
        return "ran"

    assert replayable(step, [torch.zeros(1)]) is step
    assert replayable(step, [torch.zeros(1)], use_graph=False) is step


def test_writer_runs_jobs_in_order_and_reports_the_first_error_once() -> None:
    done: list[int] = []
    writer = BackgroundWriter()
    threads: set[str] = set()

    def job(i: int):
        def run() -> None:
            threads.add(threading.current_thread().name)
            if i == 3:
                raise OSError("disk full")
            done.append(i)

        return run

    for i in range(3):
        writer.submit(job(i))
    writer.submit(job(3))
    writer.submit(job(4))  # after the failure: skipped, not run on a folder with a hole
    with pytest.raises(OSError, match="disk full"):
        writer.close()
    assert done == [0, 1, 2] and threads == {"grokviz-writer"}
    writer.close()  # reported once; a close in a `finally` does not raise it again


def test_to_host_copies_live_tensors_on_cpu() -> None:
    live = torch.zeros(2)
    copy = to_host(live)
    live += 1
    assert copy.tolist() == [0.0, 0.0]


def test_writer_lets_the_loops_own_error_through() -> None:
    # A failing job must not replace the error that stopped the loop (say, a CUDA error).
    def fail() -> None:
        raise OSError("disk full")

    with pytest.raises(ValueError, match="the loop's error"):
        with BackgroundWriter() as writer:
            writer.submit(fail)
            raise ValueError("the loop's error")
    with pytest.raises(OSError, match="disk full"):
        with BackgroundWriter() as writer:
            writer.submit(fail)
    # The loop's error carries a note of the failed write.
    with pytest.raises(ValueError) as caught:
        with BackgroundWriter() as writer:
            writer.submit(fail)
            writer.close(raise_error=False)
            raise ValueError("the loop's error")
    assert any("disk full" in note for note in getattr(caught.value, "__notes__", ["disk full"]))


def test_writer_after_ctrl_c_finishes_only_the_running_job() -> None:
    started, release, done = threading.Event(), threading.Event(), []

    def slow() -> None:
        started.set()
        release.wait(5)
        done.append("slow")

    with pytest.raises(KeyboardInterrupt):
        with BackgroundWriter() as writer:
            writer.submit(slow)
            writer.submit(lambda: done.append("queued"))
            started.wait(5)
            threading.Timer(0.05, release.set).start()
            raise KeyboardInterrupt
    # The running job finished before the block was left (the log it writes is still open);
    # the queued one was dropped.
    assert done == ["slow"]


def test_clock_on_a_cpu_is_the_host_clock() -> None:
    import time

    clock = Clock(torch.device("cpu"))
    mark = clock.mark()
    time.sleep(0.02)
    assert 0 <= clock.seconds(mark) < 0.02 <= clock.seconds(clock.mark())
