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
import math
import os
import signal
import sys
import time
from dataclasses import MISSING, dataclass, fields
from pathlib import Path

import torch
import torch.nn.functional as F

from .config import Config
from .errors import GrokvizError
from .model import Params, forward_last, init_params
from .optim import AdamWState, adamw_step
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


def configure_cpu(threads: int) -> None:
    # After memorisation weights and gradients reach denormal floats, which slow CPU arithmetic
    # several-fold; flushing them to zero changes nothing that matters at fp32.
    torch.set_flush_denormal(True)
    # On small machines extra threads cost more in wake-ups than they save on these small ops.
    torch.set_num_threads(threads)


@dataclass
class _Pending:
    """A log row not yet written: device tensors plus a copy of the weights at that step."""

    step: int
    metrics: torch.Tensor  # [4]: train_loss, train_accuracy, test_loss, test_accuracy
    params: Params
    elapsed_s: float


class _StopFlag:
    """SIGINT/SIGTERM ask the loop to stop at the next step boundary (a second Ctrl-C aborts)."""

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


def loss_and_accuracy(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """logits [batch, p], labels [batch] -> (float64 loss, accuracy) as 0-d device tensors."""
    # Float64 loss: at the end of training the loss is ~1e-7 and fp32 log-softmax loses it.
    loss = F.cross_entropy(logits.double(), labels)
    accuracy = (logits.argmax(dim=-1) == labels).double().mean()
    return loss, accuracy


def apply_update(params: Params, state: AdamWState, loss: torch.Tensor, cfg: Config) -> None:
    """Backward from ``loss`` and one AdamW update of ``params`` in place."""
    grads = torch.autograd.grad(loss, list(params.values()))
    adamw_step(params, dict(zip(params, grads)), state, cfg)


def train(
    cfg: Config,
    out: str | os.PathLike,
    *,
    resume: bool = False,
    device: str = "auto",
    threads: int = 1,
    progress: bool = True,
    stop_after_steps: int | None = None,
) -> Run:
    """Train ``cfg`` into the run folder ``out`` and return it opened.

    ``resume`` continues from ``out``'s resume state (the config must match).
    ``stop_after_steps`` stops early after that many steps of this call, as a kill would
    (used by tests of ``--resume``); the run is left resumable.
    """
    out = Path(out)
    dev = pick_device(device)
    if dev.type == "cpu":
        configure_cpu(threads)

    dataset = dataset_for(cfg)
    train_a, train_b, train_y = (t[dataset.train_idx].to(dev) for t in (dataset.a, dataset.b, dataset.labels))
    test_a, test_b, test_y = (t[dataset.test_idx].to(dev) for t in (dataset.a, dataset.b, dataset.labels))

    start_step, params, state = _prepare_run(cfg, out, resume, dev)
    log = LogWriter(out, keep_below_step=start_step if resume else None)
    fired = _events_already_fired(open_run(out)) if resume else set()
    schedule = checkpoint_schedule(cfg)
    flush_every = CUDA_FLUSH_EVERY if dev.type == "cuda" else 1
    pending: list[_Pending] = []
    started = time.perf_counter()

    def flush(step: int, with_resume_state: bool) -> None:
        """Write pending log rows, event checkpoints and (optionally) the resume state."""
        if pending:
            values = torch.stack([row.metrics for row in pending]).cpu()  # the one host sync
            for row, (train_loss, train_acc, test_loss, test_acc) in zip(pending, values.tolist()):
                record = {"step": row.step, "train_loss": train_loss, "train_accuracy": train_acc,
                          "test_loss": test_loss, "test_accuracy": test_acc, "elapsed_s": row.elapsed_s}
                log.append(record)
                crossed = _new_events(record, fired)
                if crossed or row.step in schedule:
                    save_checkpoint(out, row.step, row.params, cfg)
                bar.set_postfix_str(
                    f"train {train_loss:.2e} ({train_acc:.1%})  test {test_loss:.2e} ({test_acc:.1%})", refresh=False
                )
            pending.clear()
        if with_resume_state:
            # The resume file first: a kill between the two leaves a step that the resumed run redoes.
            save_resume_state(out, step, params, state.exp_avg, state.exp_avg_sq)
            save_checkpoint(out, step, params, cfg)

    from tqdm import tqdm

    bar = tqdm(total=cfg.steps, initial=start_step, disable=not progress, unit="step", dynamic_ncols=True)
    step = start_step
    with _StopFlag() as stop:
        for step in range(start_step, cfg.steps + 1):
            interrupted = stop.requested or (stop_after_steps is not None and step - start_step >= stop_after_steps)
            if interrupted and step > start_step:
                flush(step, with_resume_state=True)
                break
            logits = forward_last(params, train_a, train_b)  # [n_train, p]
            train_loss, train_acc = loss_and_accuracy(logits, train_y)
            is_log_step = step % cfg.log_every == 0 or step == cfg.steps or step in schedule
            if is_log_step:
                with torch.no_grad():
                    test_loss, test_acc = loss_and_accuracy(forward_last(params, test_a, test_b), test_y)
                metrics = torch.stack([train_loss.detach(), train_acc, test_loss, test_acc])
                snapshot = {k: v.detach().clone() for k, v in params.items()}
                pending.append(_Pending(step, metrics, snapshot, time.perf_counter() - started))
            at_checkpoint = step in schedule
            if at_checkpoint or step == cfg.steps or len(pending) * cfg.log_every >= flush_every:
                flush(step, with_resume_state=at_checkpoint or step == cfg.steps)
            if step == cfg.steps:
                break
            apply_update(params, state, train_loss, cfg)
            bar.update(1)
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
        return step, params, AdamWState(step=step, exp_avg=to_dev(exp_avg), exp_avg_sq=to_dev(exp_avg_sq))
    require_new_folder(out, other_choice=" or pass --resume")
    write_run_file(out, cfg)
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
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="auto = cuda when present")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (1 is fastest for this model on small machines)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_config_flags(parser)
    return parser


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
                    progress=not args.no_progress)
    except GrokvizError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    final = run.log().iloc[-1]
    print(f"{run.path}: step {int(final.step)}, train acc {final.train_accuracy:.4f}, "
          f"test acc {final.test_accuracy:.4f}, {len(run.steps())} checkpoints")
    return 0


if __name__ == "__main__":
    sys.exit(main())
