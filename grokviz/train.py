"""The trainer and its command line: ``python -m grokviz.train --out checkpoints/NAME``.

Full-batch AdamW on the fast path of ``grokviz.model`` (position 2 only, token tables), float64
loss, on CUDA when present. Writes a run folder (see ``grokviz.runs``) as it goes:

* a log row every ``log_every`` steps (train and test loss/accuracy, test set evaluated then);
* checkpoints on a schedule that is dense where things happen: log-spaced early steps, every
  ``save_every`` steps, and an extra one whenever test (or train) accuracy first crosses one of
  ``ACCURACY_EVENTS`` — which puts checkpoints around the grokking transition wherever it falls;
* the AdamW state of the latest checkpoint, for an exact ``--resume``.

Ctrl-C or SIGTERM stops at the next step boundary and saves; SIGKILL loses at most the steps
since the last checkpoint. Metrics stay on the device between flushes, so a CUDA run does not
synchronise with the host on every step.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import signal
import sys
from dataclasses import MISSING, dataclass, fields
from pathlib import Path

import torch
import torch.nn.functional as F

from .config import Config
from .errors import GrokvizError
from .model import Params, forward_last, init_params
from .graphs import replayable
from .optim import AdamWState, Hyper, adamw_step
from .runs import (
    RESUME_FILE,
    LogWriter,
    Run,
    load_resume_state,
    open_run,
    require_new_folder,
    save_checkpoint,
    save_resume_state,
    write_run_file,
)
from .tasks import dataset_for
from .writer import BackgroundWriter, Clock, ready_event, to_host

# Accuracy levels whose first crossing triggers a checkpoint (test: the grokking transition;
# train: memorisation).
ACCURACY_EVENTS = {
    "test_accuracy": (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 0.999),
    "train_accuracy": (0.5, 0.9, 0.99, 1.0),
}
# On CUDA, metrics are copied to the host once per this many steps (one sync), not per log row.
CUDA_FLUSH_EVERY = 500


def checkpoint_schedule(cfg: Config) -> set[int]:
    """Steps saved whatever happens: 0, the end, every ``save_every`` and log-spaced early ones."""
    log_spaced = {
        min(cfg.steps, max(1, round(math.exp(i * math.log(cfg.steps) / max(cfg.save_log_points - 1, 1)))))
        for i in range(cfg.save_log_points)
    }
    regular = set(range(0, cfg.steps + 1, cfg.save_every))
    return {0, cfg.steps} | regular | log_spaced


def pick_device(requested: str) -> torch.device:
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested == "cuda" and not torch.cuda.is_available():
        raise GrokvizError("--device cuda was asked for, but torch sees no CUDA device")
    return torch.device(requested)


@contextlib.contextmanager
def matmul_precision(cfg: Config, dev: torch.device):
    """Compute float32 matrix products as ``cfg.matmul`` says while training (restored after)."""
    if cfg.matmul == "tf32" and dev.type != "cuda":
        raise GrokvizError("matmul='tf32' needs a CUDA device; on a CPU train with matmul='fp32'")
    before = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = cfg.matmul == "tf32"
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = before


def configure_cpu(threads: int | None) -> None:
    # After memorisation weights and gradients reach denormal floats, which slow CPU arithmetic
    # several-fold; flushing them to zero changes nothing that matters at fp32.
    torch.set_flush_denormal(True)
    # None keeps torch's thread count (all cores). For a step of the reference recipe on an idle
    # 2-core machine two threads take 36 ms against 58 for one; on one busy with other work, 105.
    if threads is not None:
        torch.set_num_threads(threads)


@dataclass
class _Pending:
    """A log row not yet written: device tensors, and a copy of the weights in case it is saved."""

    step: int
    metrics: torch.Tensor  # [4]: train_loss, train_accuracy, test_loss, test_accuracy
    params: Params
    elapsed: float | torch.cuda.Event  # a Clock mark


class _StopFlag:
    """SIGINT/SIGTERM ask the loop to stop at the next step boundary (a second Ctrl-C aborts at once,
    without waiting for pending writes: every file is written atomically, so none is left half-written)."""

    def __init__(self) -> None:
        self.requested = False
        self._previous = {}

    def __enter__(self) -> "_StopFlag":
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


def cross_entropy64(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """logits [batch, p], labels [batch] -> mean loss as a 0-d float64 device tensor."""
    # Float64 loss: at the end of training the loss is ~1e-7 and fp32 log-softmax loses it.
    return F.cross_entropy(logits.double(), labels)


def loss_and_accuracy(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """logits [batch, p], labels [batch] -> (float64 loss, accuracy) as 0-d device tensors."""
    accuracy = (logits.argmax(dim=-1) == labels).double().mean()
    return cross_entropy64(logits, labels), accuracy


def apply_update(params: Params, state: AdamWState, loss: torch.Tensor, hyper: Hyper) -> None:
    """Backward from ``loss`` and one AdamW update of ``params`` in place."""
    grads = torch.autograd.grad(loss, list(params.values()))
    adamw_step(params, dict(zip(params, grads)), state, hyper)


def log_record(step: int, metrics: list[float], elapsed_s: float) -> dict[str, float]:
    """A log row from the four metrics of a step (the trainers' one layout)."""
    train_loss, train_accuracy, test_loss, test_accuracy = metrics
    return {"step": step, "train_loss": train_loss, "train_accuracy": train_accuracy,
            "test_loss": test_loss, "test_accuracy": test_accuracy, "elapsed_s": elapsed_s}


@dataclass
class SingleStep:
    """A single run's step over fixed tensors (captured as CUDA graphs by ``grokviz.graphs``)."""

    params: Params  # requires grad; updated in place
    state: AdamWState
    hyper: Hyper
    train: tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # a, b, labels: [n_train]
    test: tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # a, b, labels: [n_test]

    def __call__(self, *, evaluate: bool, update: bool = True) -> torch.Tensor | None:
        """One full-batch step: [4] metrics of the weights before the update (train loss, train
        accuracy, test loss, test accuracy) if ``evaluate``, then one AdamW update if ``update``."""
        logits = forward_last(self.params, *self.train[:2])
        metrics = None
        if not evaluate:  # most steps: no accuracy, no test set
            train_loss = cross_entropy64(logits, self.train[2])
        else:
            train_loss, train_acc = loss_and_accuracy(logits, self.train[2])
            with torch.no_grad():
                test_loss, test_acc = loss_and_accuracy(forward_last(self.params, *self.test[:2]), self.test[2])
            metrics = torch.stack([train_loss.detach(), train_acc, test_loss, test_acc])
        if update:
            apply_update(self.params, self.state, train_loss, self.hyper)
        return metrics

    def state_tensors(self) -> list[torch.Tensor]:
        return [*self.params.values(), *self.state.tensors()]


def train(
    cfg: Config,
    out: str | os.PathLike,
    *,
    resume: bool = False,
    device: str = "auto",
    threads: int | None = None,
    progress: bool = True,
    stop_after_steps: int | None = None,
    use_graphs: bool = True,
) -> Run:
    """Train ``cfg`` into the run folder ``out`` and return it opened.

    ``resume`` continues from ``out``'s resume state (the config must match).
    ``stop_after_steps`` stops early after that many steps of this call, as a kill would
    (used by tests of ``--resume``); the run is left resumable.
    ``use_graphs`` (CUDA only) replays each kind of step as a CUDA graph; False runs eagerly.
    """
    out = Path(out)
    dev = pick_device(device)
    if dev.type == "cpu":
        configure_cpu(threads)
    with matmul_precision(cfg, dev):
        return _train(cfg, out, dev, resume, progress, stop_after_steps, use_graphs)


def _train(cfg: Config, out: Path, dev: torch.device, resume: bool, progress: bool,
           stop_after_steps: int | None, use_graphs: bool) -> Run:
    dataset = dataset_for(cfg)
    train_data = tuple(t[dataset.train_idx].to(dev) for t in (dataset.a, dataset.b, dataset.labels))
    test_data = tuple(t[dataset.test_idx].to(dev) for t in (dataset.a, dataset.b, dataset.labels))

    start_step, params, state = _prepare_run(cfg, out, resume, dev)
    step_of = SingleStep(params, state, Hyper.of(cfg, dev), train_data, test_data)
    # Two captured kinds of step; the last step (metrics, no update) runs once, eagerly.
    logged = replayable(lambda: step_of(evaluate=True), step_of.state_tensors(), use_graph=use_graphs)
    plain = replayable(lambda: step_of(evaluate=False), step_of.state_tensors(), use_graph=use_graphs)
    if not resume:
        write_run_file(out, cfg)  # only now: a step that cannot be captured leaves no folder behind

    log = LogWriter(out, keep_below_step=start_step if resume else None)
    fired = _events_already_fired(open_run(out)) if resume else set()
    schedule = checkpoint_schedule(cfg)
    flush_every = CUDA_FLUSH_EVERY if dev.type == "cuda" else 1
    pending: list[_Pending] = []
    clock = Clock(dev)

    def flush(step: int, resume_state: tuple[Params, Params, Params] | None) -> None:
        """Hand pending rows (and the resume state of ``step``) to the writer; no host sync here."""
        rows = [(row.step, row.elapsed, row.params) for row in pending]
        metrics = to_host(torch.stack([row.metrics for row in pending])) if pending else None
        pending.clear()

        def write() -> None:
            saved = set()
            for (row_step, elapsed, snapshot), values in zip(rows, metrics.tolist() if rows else []):
                record = log_record(row_step, values, clock.seconds(elapsed))
                log.append(record)
                if _new_events(record, fired) or row_step in schedule:
                    save_checkpoint(out, row_step, {k: writer.fetch(v) for k, v in snapshot.items()}, cfg)
                    saved.add(row_step)
                train_loss, train_acc, test_loss, test_acc = values
                bar.set_postfix_str(f"train {train_loss:.2e} ({train_acc:.1%})  test {test_loss:.2e} ({test_acc:.1%})",
                                    refresh=False)
            if resume_state is not None:
                # The resume state before its step's checkpoint: a kill between the two leaves a step
                # that the resumed run redoes (and whose checkpoint it writes).
                save_resume_state(out, step, *resume_state)
                if step not in saved:
                    save_checkpoint(out, step, resume_state[0], cfg)

        writer.submit(write, ready=ready_event(dev))

    def host_state() -> tuple[Params, Params, Params]:
        return tuple({k: to_host(v) for k, v in group.items()} for group in (params, state.exp_avg, state.exp_avg_sq))

    from tqdm import tqdm

    bar = tqdm(total=cfg.steps, initial=start_step, disable=not progress, unit="step", dynamic_ncols=True)
    step = start_step
    try:
        # The writer finishes its jobs when the loop ends (and raises their error, if any), while
        # the stop flag still turns SIGTERM into a request rather than a kill.
        with _StopFlag() as stop, BackgroundWriter() as writer:
            for step in range(start_step, cfg.steps + 1):
                interrupted = stop.requested or (stop_after_steps is not None and step - start_step >= stop_after_steps)
                if interrupted and step > start_step:
                    flush(step, host_state())
                    break
                last = step == cfg.steps
                is_log_step = step % cfg.log_every == 0 or last or step in schedule
                saves_state = step in schedule or last
                # Copies of the weights before this step's update: a log row may become a checkpoint.
                snapshot = {k: v.detach().clone() for k, v in params.items()} if is_log_step else None
                resume_state = host_state() if saves_state else None
                if last:
                    metrics = step_of(evaluate=True, update=False)
                else:
                    metrics = (logged if is_log_step else plain)()
                if is_log_step:
                    # Replays overwrite their outputs in place: keep a copy.
                    pending.append(_Pending(step, metrics.clone(), snapshot, clock.mark()))
                if saves_state or len(pending) * cfg.log_every >= flush_every:
                    flush(step, resume_state)
                if not last:
                    bar.update(1)
    finally:
        bar.close()
        log.close()
    if stop.requested:
        print(f"stopped at step {step}; continue with --resume", file=sys.stderr)
    return open_run(out)


def _prepare_run(cfg: Config, out: Path, resume: bool, dev: torch.device) -> tuple[int, Params, AdamWState]:
    if resume:
        run = open_run(out)
        if run.config != cfg:
            raise GrokvizError(f"{out}: --resume needs the run's own config; it differs from the one given")
        if not (out / RESUME_FILE).is_file():
            raise GrokvizError(f"{out}: no {RESUME_FILE}; this run cannot be resumed")
        step, params, exp_avg, exp_avg_sq = load_resume_state(out)
        # Checkpoints after the resume point stay: the resumed loop is deterministic and rewrites
        # them with the same contents. Temporary files of a killed write are removed.
        for entry in out.glob(".*.tmp"):
            entry.unlink(missing_ok=True)
        to_dev = lambda group: {k: v.to(dev) for k, v in group.items()}  # noqa: E731
        params = {k: v.requires_grad_(True) for k, v in to_dev(params).items()}
        step_count = torch.tensor(step, dtype=torch.int64, device=dev)
        return step, params, AdamWState(step=step_count, exp_avg=to_dev(exp_avg), exp_avg_sq=to_dev(exp_avg_sq))
    require_new_folder(out, other_choice=" or pass --resume")
    params = {k: v.requires_grad_(True) for k, v in init_params(cfg, dev).items()}
    return 0, params, AdamWState.zeros_like(params)


def _new_events(record: dict, fired: set[tuple[str, float]]) -> bool:
    crossed = False
    for metric, levels in ACCURACY_EVENTS.items():
        for level in levels:
            if (metric, level) not in fired and record[metric] >= level:
                fired.add((metric, level))
                crossed = True
    return crossed


def _events_already_fired(run: Run) -> set[tuple[str, float]]:
    fired: set[tuple[str, float]] = set()
    for record in run.log().to_dict("records"):
        _new_events(record, fired)
    return fired


# --- command line ----------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m grokviz.train",
        description="Train the 1-layer modular-arithmetic transformer and write a grokviz run folder.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--out", required=True, help="run folder to create (or continue with --resume)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    add_runtime_flags(parser)
    add_config_flags(parser)
    return parser


def add_runtime_flags(parser: argparse.ArgumentParser) -> None:
    """How to train, not what (not stored in the run): shared with ``grokviz.ensemble``."""
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="auto = cuda when present")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads (default: torch's, all cores; 1 is faster on a machine busy with other work)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--eager", action="store_true",
                        help="on CUDA, launch each kernel from Python instead of replaying CUDA graphs (for checks)")


def add_config_flags(parser: argparse.ArgumentParser, skip: frozenset[str] = frozenset()) -> None:
    """One ``--flag`` per Config field (defaults and help from the dataclass), except ``skip``.

    Shared with ``grokviz.ensemble``, which replaces the per-member fields by list flags.
    """
    group = parser.add_argument_group("run config (stored in the run folder)")
    for f in fields(Config):
        if f.name in skip:
            continue
        default = f.default if f.default is not MISSING else None
        kind = {"int": int, "float": float, "str": str}.get(str(f.type).split(" ")[0], int)
        group.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name, type=kind, default=default, help=f.metadata.get("help"))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.resume:
            # The run's stored config is authoritative; flags given on the command line are ignored.
            cfg = open_run(args.out).config
        else:
            cfg = Config(**{f.name: getattr(args, f.name) for f in fields(Config)})
        run = train(cfg, args.out, resume=args.resume, device=args.device, threads=args.threads,
                    progress=not args.no_progress, use_graphs=not args.eager)
    except GrokvizError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    final = run.log().iloc[-1]
    print(f"{run.path}: step {int(final.step)}, train acc {final.train_accuracy:.4f}, "
          f"test acc {final.test_accuracy:.4f}, {len(run.steps())} checkpoints")
    return 0


if __name__ == "__main__":
    sys.exit(main())
