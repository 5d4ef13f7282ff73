"""Milliseconds per training step: grokviz's trainer step against the loop public notebooks write.

    python scripts/bench_train.py [--rounds 5] [--steps 20] [--step-from checkpoints/add-p113]

The reference loop is the straightforward one: full forward over all three positions, eager,
torch.optim.AdamW with a LambdaLR warm-up, train and test loss computed (and read with
``.item()``) every step, PyTorch's default thread count and denormal handling.
Ours is the trainer's own step: position-2-only fast path, test set every ``log_every`` steps,
denormals flushed, one thread. Both start from the same weights (by default a checkpoint from
the middle of the bundled run, where weights have reached denormal values) and are measured
interleaved, round by round, in one process, so machine noise hits both alike.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere without installing

from grokviz.config import Config
from grokviz.model import forward, forward_last, init_params
from grokviz.optim import AdamWState
from grokviz.runs import nearest_step, open_run
from grokviz.tasks import dataset_for
from grokviz.train import apply_update, loss_and_accuracy

DEFAULT_THREADS = torch.get_num_threads()


def starting_weights(cfg: Config, run_path: Path | None, step: int) -> tuple[dict[str, torch.Tensor], str]:
    if run_path is not None and (run_path / "run.json").exists():
        run = open_run(run_path)
        if run.steps():
            chosen = nearest_step(run.steps(), step)
            return run.load(chosen), f"{run_path.name} step {chosen}"
    return init_params(cfg), "initialisation"


def make_ours(cfg, params, data):
    params = {k: v.clone().requires_grad_(True) for k, v in params.items()}
    state = AdamWState.zeros_like(params)
    state.step = cfg.warmup_steps  # past warm-up, as mid-run
    (ta, tb, ty), (va, vb, vy) = data
    counter = [0]

    def step() -> None:
        train_loss, _ = loss_and_accuracy(forward_last(params, ta, tb), ty)
        if counter[0] % cfg.log_every == 0:
            with torch.no_grad():
                loss_and_accuracy(forward_last(params, va, vb), vy)
        apply_update(params, state, train_loss, cfg)
        counter[0] += 1

    return step


def make_reference(cfg, params, data):
    params = {k: v.clone().requires_grad_(True) for k, v in params.items()}
    optimizer = torch.optim.AdamW(params.values(), lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(cfg.beta1, cfg.beta2))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min((s + cfg.warmup_steps) / cfg.warmup_steps, 1))
    (ta, tb, ty), (va, vb, vy) = data
    eq = lambda a: torch.full_like(a, cfg.p)  # noqa: E731
    train_tokens, test_tokens = torch.stack([ta, tb, eq(ta)], 1), torch.stack([va, vb, eq(va)], 1)

    def step() -> None:
        train_loss = torch.nn.functional.cross_entropy(forward(params, train_tokens).double(), ty)
        test_loss = torch.nn.functional.cross_entropy(forward(params, test_tokens).double(), vy)
        optimizer.zero_grad()
        train_loss.backward()
        optimizer.step()
        scheduler.step()
        train_loss.item(), test_loss.item()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20, help="steps per variant per round")
    parser.add_argument("--step-from", type=Path, default=Path("checkpoints/add-p113"))
    parser.add_argument("--at-step", type=int, default=5000, help="checkpoint step to start from")
    args = parser.parse_args()

    cfg = Config()
    dataset = dataset_for(cfg)
    data = tuple(tuple(t[idx] for t in (dataset.a, dataset.b, dataset.labels)) for idx in (dataset.train_idx, dataset.test_idx))
    params, origin = starting_weights(cfg, args.step_from, args.at_step)

    variants = {
        "reference loop (default threads)": (make_reference(cfg, params, data), DEFAULT_THREADS, False),
        "reference loop (1 thread)": (make_reference(cfg, params, data), 1, False),
        "grokviz trainer step (1 thread)": (make_ours(cfg, params, data), 1, True),
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, (step, threads, flush) in variants.items():
            torch.set_num_threads(threads)
            torch.set_flush_denormal(flush)
            step()  # warm the caches of this variant after the switch
            start = time.perf_counter()
            for _ in range(args.steps):
                step()
            times[name].append((time.perf_counter() - start) / args.steps * 1e3)

    ours = statistics.median(times["grokviz trainer step (1 thread)"])
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_interop_threads()} interop threads, "
          f"default torch threads {DEFAULT_THREADS}; torch {torch.__version__}")
    print(f"p={cfg.p}, {len(data[0][0])} train pairs, start: {origin}; {args.rounds} interleaved rounds x {args.steps} steps\n")
    print(f"| {'variant':34} | ms/step (median) | min    | 25,000 steps | vs ours |")
    print(f"|{'-' * 36}|------------------|--------|--------------|---------|")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"| {name:34} | {median:16.1f} | {min(values):6.1f} | {median * 25:9.0f} s  | {median / ours:6.1f}x |")


if __name__ == "__main__":
    main()
