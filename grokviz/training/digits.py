"""The digits trainer: ``train_digits(cfg, out)`` trains the 10-digit adder into a run folder.

The recipe of yhavinga/gpt-acc-jax (defaults of ``DigitsConfig``): batches drawn fresh
every step from the curriculum, loss on the 12 answer positions (float64), gradients clipped at a
global norm, then AdamW with warm-up and cosine decay. The run folder is the modular trainer's
format (``grokviz.storage.runs``, ``"family": "digits"``) with the same machinery:

* a log row every ``log_every`` steps: the step's lr and curriculum, the training batch's loss and
  exact match, and the validation set's loss, exact match and accuracy at each answer position;
* checkpoints on ``grokviz.training.schedule``'s fixed schedule plus the first log row at which
  validation exact match crosses each of ``EXACT_EVENTS`` (dense around the jumps);
* an exact ``resume``: the batch of step ``s`` depends only on the data seed and ``s``, and the
  AdamW moments are saved with the latest checkpoint;
* atomic files written by the background writer, a progress bar, Ctrl-C/SIGTERM saves and stops.

The command line is ``grokviz.train_digits``.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from grokviz.core import digits_model, digits_tasks
from grokviz.core.digits_config import DigitsConfig
from grokviz.core.families import family_of, require_family
from grokviz.core.params import Params
from grokviz.errors import GrokvizError
from grokviz.storage.log import LogWriter
from grokviz.storage.resume import save_resume_state
from grokviz.storage.runs import Run, open_run, save_checkpoint, write_run_file
from grokviz.training import trackers
from grokviz.training.device import configure_cpu, pick_device
from grokviz.training.loop import TrainingLoop
from grokviz.training.optim import AdamWState, Hyper, adamw_step, adder_learning_rate
from grokviz.training.options import RunOptions
from grokviz.training.resume import fresh_start, resumed_start
from grokviz.training.schedule import checkpoint_schedule, events_already_fired, new_events
from grokviz.training.writer import Clock

# Validation exact-match levels whose first crossing saves a checkpoint.
EXACT_EVENTS = {"val_exact": (0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995)}
_MIX = 0x9E3779B97F4A7C15  # spreads (seed, step) over the generator's seed space


def batch_generator(cfg: DigitsConfig, step: int) -> torch.Generator:
    """The generator of step ``step``'s batch: a function of the data seed and the step only."""
    return torch.Generator().manual_seed((cfg.split_seed * _MIX + step + 1) % 2**63)


def training_batch(cfg: DigitsConfig, step: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(input [batch, 33], answer labels [batch, 12]) of update ``step``, on the CPU."""
    a, b = digits_tasks.sample_operands(cfg.batch_size, cfg.max_digits_at(step), batch_generator(cfg, step))
    return digits_tasks.split_sequence(digits_tasks.encode(a, b))


def validation_pairs(cfg: DigitsConfig) -> digits_tasks.PairSet:
    return digits_tasks.validation_set(cfg.val_size, (cfg.split_seed * _MIX + 2**62) % 2**63)


def clip_by_global_norm(grads: list[torch.Tensor], max_norm: float) -> None:
    """optax.clip_by_global_norm in place: scale all gradients by max_norm / max(norm, max_norm)."""
    norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
    torch._foreach_mul_(grads, max_norm / torch.clamp(norm, min=max_norm))


def update(params, state: AdamWState, hyper: Hyper, cfg: DigitsConfig, x, labels) -> tuple[torch.Tensor, torch.Tensor]:
    """One step on a batch: (loss, exact match) of the weights before it, then the AdamW update."""
    logits = digits_model.forward(params, x, answer_only=True)  # [batch, 12, d_vocab]
    loss = torch.nn.functional.cross_entropy(logits.double().reshape(-1, logits.shape[-1]), labels.reshape(-1))
    grads = list(torch.autograd.grad(loss, list(params.values())))
    if cfg.grad_clip > 0:
        clip_by_global_norm(grads, cfg.grad_clip)
    adamw_step(params, dict(zip(params, grads)), state, hyper)
    exact = (logits.detach().argmax(-1) == labels).all(-1).double().mean()
    return loss.detach(), exact


@torch.no_grad()
def evaluate(params, pairs: digits_tasks.PairSet, chunk: int = 4096) -> tuple[float, float, list[float]]:
    """(loss, exact match, accuracy per answer position) of ``params`` on a fixed set."""
    device = next(iter(params.values())).device
    x, labels = digits_tasks.split_sequence(pairs.tokens)
    losses, exact, per_pos = [], [], []
    for start in range(0, len(pairs), chunk):
        xs, ys = x[start : start + chunk].to(device), labels[start : start + chunk].to(device)
        loss, ex, pos = digits_model.answer_scores(digits_model.forward(params, xs, answer_only=True), ys)
        n = xs.shape[0]
        losses.append(loss * n), exact.append(ex * n), per_pos.append(pos * n)
    n = len(pairs)
    return float(sum(losses) / n), float(sum(exact) / n), (sum(per_pos) / n).tolist()


def train_digits(cfg: DigitsConfig, out: str | os.PathLike, **options) -> Run:
    """Train ``cfg`` into the run folder ``out`` and return it opened. ``options``: the fields of
    :class:`~grokviz.training.options.RunOptions`; ``device`` defaults to ``"cpu"`` here (the
    adder's tiny model is launch-bound on a GPU)."""
    opts = RunOptions(**{"device": "cpu", **options})
    resume, progress, stop_after_steps = opts.resume, opts.progress, opts.stop_after_steps
    out = Path(out)
    dev = pick_device(opts.device)
    if dev.type == "cpu":
        configure_cpu(opts.threads)
    start, params, state = _prepare(cfg, out, resume, dev)
    hyper = Hyper.of(cfg, dev)
    val = validation_pairs(cfg)
    if not resume:
        write_run_file(out, cfg, source="grokviz.train_digits")
    log = LogWriter(out, family_of(cfg).log_columns, keep_below_step=start if resume else None)
    tracker = trackers.resolve(opts.tracker, out, cfg.to_dict())
    fired = events_already_fired(open_run(out), EXACT_EVENTS) if resume else set()
    schedule = checkpoint_schedule(cfg)
    clock = Clock(dev)
    with TrainingLoop(cfg.steps, start, progress, stop_after_steps, log, tracker) as loop:
        bar, writer = loop.bar, loop.writer
        for step in loop.steps():
            last = step == cfg.steps
            if loop.stopping(step):
                host = _host(params, state)
                writer.submit(lambda s=step, h=host: _save_state(out, s, h, cfg, also_checkpoint=True))
                break
            is_log = step % cfg.log_every == 0 or last or step in schedule
            keep_state = step in schedule or last
            host = _host(params, state) if (is_log or keep_state) else None
            row = None
            if is_log:
                val_loss, val_exact, val_acc = evaluate(params, val)
                row = {"step": step, "max_digits": cfg.max_digits_at(step), "lr": adder_learning_rate(cfg, step)}
                row |= {"val_loss": val_loss, "val_exact": val_exact}
                row |= {f"val_acc_{k}": v for k, v in enumerate(val_acc)}
            x, labels = (t.to(dev) for t in training_batch(cfg, step))
            if last:
                with torch.no_grad():
                    logits = digits_model.forward(params, x, answer_only=True)
                    train_loss, train_exact, _ = digits_model.answer_scores(logits, labels)
            else:
                train_loss, train_exact = update(params, state, hyper, cfg, x, labels)
                bar.update(1)
            if row is not None:
                row |= {"train_loss": float(train_loss), "train_exact": float(train_exact)}
                row["elapsed_s"] = clock.seconds(clock.mark())
                save = bool(new_events(row, fired, EXACT_EVENTS)) or step in schedule
                writer.submit(lambda r=row, h=host, s=save: _write_row(out, log, r, h, cfg, s, tracker))
                bar.set_postfix_str(
                    f"loss {row['train_loss']:.3f}  val exact {row['val_exact']:.2%}  digits 1-{row['max_digits']}",
                    refresh=False,
                )
            if keep_state:
                writer.submit(lambda s=step, h=host: _save_state(out, s, h, cfg, also_checkpoint=False))
    return open_run(out)


def _host(params, state: AdamWState):
    """CPU copies of the weights and AdamW moments as they are now."""
    copy = lambda group: {k: v.detach().to("cpu", copy=True) for k, v in group.items()}  # noqa: E731
    return copy(params), copy(state.exp_avg), copy(state.exp_avg_sq)


def _write_row(out: Path, log: LogWriter, row: dict, host, cfg: DigitsConfig, save: bool, tracker=None) -> None:
    log.append(row)
    if tracker is not None:
        tracker.log(row | trackers.row_extras(cfg, row["step"], host[0]), row["step"])
    if save:
        save_checkpoint(out, row["step"], host[0], cfg)


def _save_state(out: Path, step: int, host, cfg: DigitsConfig, also_checkpoint: bool) -> None:
    # The resume state first: a kill between the two leaves a step the resumed run redoes.
    save_resume_state(out, step, *host)
    if also_checkpoint or not (out / f"step_{step:06d}.safetensors").exists():
        save_checkpoint(out, step, host[0], cfg)


def _prepare(cfg: DigitsConfig, out: Path, resume: bool, dev: torch.device) -> tuple[int, Params, AdamWState]:
    if not resume:
        return fresh_start(out, lambda: digits_model.init_params(cfg, dev), dev)
    run = open_run(out)
    require_family(run.config, "digits", str(out), "grokviz train-digits --resume")
    if run.config != cfg:
        raise GrokvizError(f"{out}: --resume needs the run's own config; it differs from the one given")
    step, params, state, _extra = resumed_start(out, dev)  # the adder has no Grokfast state
    return step, params, state
