"""The single-run trainer: ``train(cfg, out)``.

Full-batch (or, with ``batch_size``, minibatch: ``grokviz.training.batches``) AdamW on the fast path of ``grokviz.core.fast_path`` (position 2 only, token tables),
float64 loss, on CUDA when present. Writes a run folder (see ``grokviz.storage.runs``) as it goes:

* a log row every ``log_every`` steps (train and test loss/accuracy, test set evaluated then);
* checkpoints on the schedule of ``grokviz.training.schedule``: log-spaced early steps, every
  ``save_every`` steps, and an extra one whenever test (or train) accuracy first crosses a level;
* the AdamW state of the latest checkpoint, for an exact ``--resume``.

Ctrl-C or SIGTERM stops at the next step boundary and saves; SIGKILL loses at most the steps
since the last checkpoint. Metrics stay on the device between flushes, so a CUDA run does not
synchronise with the host on every step. The command line is ``grokviz.train``.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from grokviz.core.architecture import REFERENCE, Architecture
from grokviz.core.config import Config, dataset_for
from grokviz.core.families import family_of
from grokviz.core.fast_path import forward_last
from grokviz.core.params import Params, init_params
from grokviz.errors import GrokvizError
from grokviz.storage.lock import FolderLock
from grokviz.storage.log import LogWriter
from grokviz.storage.resume import RESUME_FILE, save_resume_state
from grokviz.storage.runs import Run, open_run, save_checkpoint, write_run_file
from grokviz.training import memory, trackers
from grokviz.training.batches import BatchDraw
from grokviz.training.batches import draw_for as batch_draw_for
from grokviz.training.device import configure_cpu, matmul_precision, pick_device
from grokviz.training.dropout import DropoutDraw, capturable, draw_for
from grokviz.training.graphs import replayable
from grokviz.training.grokfast import STATE_PREFIX as GROKFAST_PREFIX
from grokviz.training.grokfast import Grokfast
from grokviz.training.loop import TrainingLoop
from grokviz.training.optim import AdamWState, Hyper
from grokviz.training.options import RunOptions
from grokviz.training.resume import fresh_start, resumed_start
from grokviz.training.schedule import CUDA_FLUSH_EVERY, checkpoint_schedule, events_already_fired, new_events
from grokviz.training.step import apply_update, cross_entropy64, log_record, loss_and_accuracy
from grokviz.training.writer import Clock, ready_event, to_host


@dataclass
class _Pending:
    """A log row not yet written: device tensors, and a copy of the weights in case it is saved."""

    step: int
    metrics: torch.Tensor  # [4]: train_loss, train_accuracy, test_loss, test_accuracy
    params: Params
    elapsed: float | torch.cuda.Event  # a Clock mark


@dataclass
class SingleStep:
    """A single run's step over fixed tensors (captured as CUDA graphs by ``grokviz.training.graphs``)."""

    params: Params  # requires grad; updated in place
    state: AdamWState
    hyper: Hyper
    train: tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # a, b, labels: [n_train]
    test: tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # a, b, labels: [n_test]
    grokfast: Grokfast | None = None  # the gradient filter (its state is updated in place)
    arch: Architecture = REFERENCE
    dropout: DropoutDraw | None = None  # masks per step (None: no dropout; the step stays capturable)
    batches: BatchDraw | None = None  # minibatch indices per step (None: full batch; the step stays capturable)

    def __call__(self, *, evaluate: bool, update: bool = True) -> torch.Tensor | None:
        """One full-batch step: [4] metrics of the weights before the update (train loss, train
        accuracy, test loss, test accuracy) if ``evaluate``, then one AdamW update if ``update``.

        With dropout or a minibatch the update's loss is the dropped-out or minibatch one, and the
        logged train metrics are the model's own over the whole training set (no dropout, as
        analysis sees it), from one more forward on log steps."""
        step = int(self.state.step) if self.dropout is not None or self.batches is not None else 0
        masks = self.dropout.at(step) if self.dropout is not None else None
        a, b, labels = self.train
        if self.batches is not None:
            rows = self.batches.at(step)  # [batch_size]
            a, b, labels = a[rows], b[rows], labels[rows]
        logits = forward_last(self.params, a, b, arch=self.arch, dropout=masks)
        metrics = None
        if not evaluate:  # most steps: no accuracy, no test set
            train_loss = cross_entropy64(logits, labels)
        else:
            train_loss, train_acc = loss_and_accuracy(logits, labels)
            with torch.no_grad():
                logged_loss, logged_acc = train_loss.detach(), train_acc
                if masks is not None or self.batches is not None:
                    logged_loss, logged_acc = loss_and_accuracy(
                        forward_last(self.params, *self.train[:2], arch=self.arch), self.train[2]
                    )
                test_logits = forward_last(self.params, *self.test[:2], arch=self.arch)
                test_loss, test_acc = loss_and_accuracy(test_logits, self.test[2])
            metrics = torch.stack([logged_loss, logged_acc, test_loss, test_acc])
        if update:
            apply_update(self.params, self.state, train_loss, self.hyper, self.grokfast)
        return metrics

    def state_tensors(self) -> list[torch.Tensor]:
        return [*self.params.values(), *self.state.tensors(), *(self.grokfast.tensors() if self.grokfast else [])]


def train(cfg: Config, out: str | os.PathLike, *, use_graphs: bool = True, **options) -> Run:
    """Train ``cfg`` into the run folder ``out`` and return it opened.

    ``options``: the fields of :class:`~grokviz.training.options.RunOptions` (``resume``, ``device``,
    ``threads``, ``progress``, ``stop_after_steps``, ``tracker``). ``resume`` continues from ``out``'s resume
    state (the config must match, except that a larger ``steps`` extends the run to that many
    steps: see :func:`check_extension`); ``stop_after_steps`` stops early as a kill would, leaving
    the run resumable. The trainer holds ``out``'s writer lock (``grokviz.storage.lock``) while it
    runs. ``use_graphs`` (CUDA only) replays each kind of step as a CUDA graph; False runs eagerly.
    """
    opts = RunOptions(**options)
    out = Path(out)
    dev = pick_device(opts.device)
    # Refused in words, before any allocation or file, when it cannot fit in memory.
    note = memory.check_fits(memory.estimate(cfg), dev)
    if note and opts.progress:
        print(f"note: {note}", file=sys.stderr)
    if dev.type == "cpu":
        configure_cpu(opts.threads)
    # Locked before anything in the folder is read: a second trainer must not even start from
    # a resume state that the first one is about to replace.
    with FolderLock(out, create=not opts.resume), matmul_precision(cfg, dev):
        return _train(cfg, out, dev, opts.resume, opts.progress, opts.stop_after_steps, use_graphs, opts.tracker)


def _train(
    cfg: Config,
    out: Path,
    dev: torch.device,
    resume: bool,
    progress: bool,
    stop_after_steps: int | None,
    use_graphs: bool,
    tracker_choice=None,
) -> Run:
    dataset = dataset_for(cfg)
    train_data = tuple(t[dataset.train_idx].to(dev) for t in (dataset.a, dataset.b, dataset.labels))
    test_data = tuple(t[dataset.test_idx].to(dev) for t in (dataset.a, dataset.b, dataset.labels))

    start_step, params, state, grokfast = _prepare_run(cfg, out, resume, dev)
    batches = batch_draw_for(cfg, len(train_data[0]), dev)
    dropout = draw_for(cfg, len(train_data[0]) if batches is None else batches.batch_size, dev)
    hyper = Hyper.of(cfg, dev)
    step_of = SingleStep(params, state, hyper, train_data, test_data, grokfast, cfg.architecture, dropout, batches)
    use_graphs = capturable(use_graphs, dev, dropout is not None or batches is not None)
    # Two captured kinds of step; the last step (metrics, no update) runs once, eagerly.
    logged = replayable(lambda: step_of(evaluate=True), step_of.state_tensors(), use_graph=use_graphs)
    plain = replayable(lambda: step_of(evaluate=False), step_of.state_tensors(), use_graph=use_graphs)
    if not resume or open_run(out).config != cfg:
        # Only now: a step that cannot be captured leaves no folder behind (or an extension undone).
        write_run_file(out, cfg)

    log = LogWriter(out, family_of(cfg).log_columns, keep_below_step=start_step if resume else None)
    tracker = trackers.resolve(tracker_choice, out, cfg.to_dict())
    fired = events_already_fired(open_run(out)) if resume else set()
    schedule = checkpoint_schedule(cfg)
    flush_every = CUDA_FLUSH_EVERY if dev.type == "cuda" else 1
    pending: list[_Pending] = []
    clock = Clock(dev)

    def flush(step: int, resume_state: tuple[Params, Params, Params, dict[str, Params]] | None) -> None:
        """Hand pending rows (and the resume state of ``step``) to the writer; no host sync here."""
        rows = [(row.step, row.elapsed, row.params) for row in pending]
        metrics = to_host(torch.stack([row.metrics for row in pending])) if pending else None
        pending.clear()

        def write() -> None:
            saved = set()
            for (row_step, elapsed, snapshot), values in zip(rows, metrics.tolist() if rows else []):
                record = log_record(row_step, values, clock.seconds(elapsed))
                log.append(record)
                host = {k: writer.fetch(v) for k, v in snapshot.items()} if tracker is not None else None
                if tracker is not None:
                    tracker.log(record | trackers.row_extras(cfg, row_step, host), row_step)
                if new_events(record, fired) or row_step in schedule:
                    host = host or {k: writer.fetch(v) for k, v in snapshot.items()}
                    save_checkpoint(out, row_step, host, cfg)
                    saved.add(row_step)
                    if tracker is not None:
                        tracker.log(trackers.checkpoint_measures(cfg, host), row_step)
                train_loss, train_acc, test_loss, test_acc = values
                bar.set_postfix_str(
                    f"train {train_loss:.2e} ({train_acc:.1%})  test {test_loss:.2e} ({test_acc:.1%})", refresh=False
                )
            if resume_state is not None:
                # The resume state before its step's checkpoint: a kill between the two leaves a step
                # that the resumed run redoes (and whose checkpoint it writes).
                save_resume_state(out, step, *resume_state)
                if step not in saved:
                    save_checkpoint(out, step, resume_state[0], cfg)

        writer.submit(write, ready=ready_event(dev))

    def host_state() -> tuple[Params, Params, Params, dict[str, Params]]:
        groups = [params, state.exp_avg, state.exp_avg_sq]
        weights, exp_avg, exp_avg_sq = ({k: to_host(v) for k, v in group.items()} for group in groups)
        extra = {GROKFAST_PREFIX: {k: to_host(v) for k, v in grokfast.state().items()}} if grokfast else {}
        return weights, exp_avg, exp_avg_sq, extra

    with TrainingLoop(cfg.steps, start_step, progress, stop_after_steps, log, tracker) as loop:
        bar, writer = loop.bar, loop.writer
        for step in loop.steps():
            if loop.stopping(step):
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
    return open_run(out)


def check_extension(stored: Config, wanted: Config, resume_step: int, source: Path) -> None:
    """Refuse, in words, a resume whose config is not the run's own or an exact extension of it.

    ``--resume --steps N`` may change only ``steps``, to at least the step the run has reached,
    and only when the learning rate of every update does not depend on ``steps`` (the constant
    schedule after warm-up): then the extended run is bit-identical to one trained for N steps
    from the start. A cosine decay would change every learning rate after warm-up.
    """
    if stored.replace(steps=wanted.steps) != wanted:
        raise GrokvizError(f"{source}: --resume needs the run's own config; it differs from the one given")
    if wanted.steps == stored.steps:
        return
    if stored.lr_schedule != "constant":
        raise GrokvizError(
            f"{source}: this run's learning rate follows a {stored.lr_schedule} schedule over its "
            f"{stored.steps:,} steps; training it to {wanted.steps:,} would change the learning rate of every "
            "update after warm-up, so it cannot be extended exactly. Train a new run with --steps "
            f"{wanted.steps} instead"
        )
    if wanted.steps < resume_step:
        raise GrokvizError(
            f"{source}: the run is already at step {resume_step:,}; --steps {wanted.steps} would shorten it "
            f"(give at least {resume_step})"
        )


def _prepare_run(
    cfg: Config, out: Path, resume: bool, dev: torch.device
) -> tuple[int, Params, AdamWState, Grokfast | None]:
    if not resume:
        step, params, state = fresh_start(out, lambda: init_params(cfg, dev), dev)
        return step, params, state, Grokfast.of(cfg, params)
    run = open_run(out)
    step, params, state, extra = resumed_start(out, dev)
    check_extension(run.config, cfg, step, out)
    grokfast = Grokfast.of(cfg, params)
    if grokfast is not None:
        grokfast.load_state(extra.get(GROKFAST_PREFIX, {}), str(out / RESUME_FILE))
    return step, params, state, grokfast
