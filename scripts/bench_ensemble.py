"""Training throughput: the single-run trainer step against the ensemble's batched step.

    python scripts/bench_ensemble.py [--rounds 5] [--steps 10] [--members 1,4,8]

Every variant trains the reference config (p = 113, 3,830 training pairs) from the same weights
(by default the bundled run's step 5,000; every ensemble member starts from them too), with the
test set evaluated every ``log_every`` steps as the trainers do. Variants are measured
interleaved, round by round, in one process, with one thread and denormals flushed, so machine
noise hits all alike. Reported: ms per step, and model-steps per second (members x steps / s).
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
sys.path.insert(0, str(Path(__file__).resolve().parent))  # the single-run step of bench_train.py

from bench_train import make_ours, starting_weights  # noqa: E402

from grokviz.config import Config
from grokviz.ensemble import keep_freed_memory, make_groups, stack, step_group
from grokviz.optim import AdamWState
from grokviz.tasks import dataset_for
from grokviz.train import configure_cpu


def make_ensemble(cfg: Config, params, members: int):
    """The ensemble's batched step over ``members`` models (seeds 0.., same train fraction: one group)."""
    (group,) = make_groups([cfg.replace(seed=seed) for seed in range(members)], torch.device("cpu"))
    group.params = {k: v.requires_grad_(True) for k, v in stack([params] * members).items()}
    group.state = AdamWState.zeros_like(group.params)
    group.state.step = cfg.warmup_steps
    counter = [0]

    def step() -> None:
        step_group(group, evaluate_test=counter[0] % cfg.log_every == 0)
        counter[0] += 1

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=10, help="steps per variant per round")
    parser.add_argument("--members", default="1,4,8", help="ensemble sizes")
    parser.add_argument("--step-from", type=Path, default=Path(__file__).resolve().parents[1] / "checkpoints" / "add-p113")
    parser.add_argument("--at-step", type=int, default=5000)
    args = parser.parse_args()

    configure_cpu(threads=1)  # as both trainers do on CPU
    keep_freed_memory()  # as the ensemble trainer does on CPU (the single run's blocks are reused anyway)
    cfg = Config()
    params, origin = starting_weights(cfg, args.step_from, args.at_step)
    sizes = [int(m) for m in args.members.split(",")]
    data = dataset_for(cfg)
    splits = tuple(tuple(t[idx] for t in (data.a, data.b, data.labels)) for idx in (data.train_idx, data.test_idx))
    variants = {"single-run trainer step": (make_ours(cfg, params, splits), 1)}
    variants.update({f"ensemble step, M = {m}": (make_ensemble(cfg, params, m), m) for m in sizes})
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, (step, _) in variants.items():
            step()  # warm this variant's caches after the switch
            start = time.perf_counter()
            for _ in range(args.steps):
                step()
            times[name].append((time.perf_counter() - start) / args.steps * 1e3)

    single = statistics.median(times["single-run trainer step"])
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch thread; "
          f"torch {torch.__version__}")
    print(f"p={cfg.p}, start: {origin}; {args.rounds} interleaved rounds x {args.steps} steps\n")
    print(f"| {'variant':26} | ms/step (median) | min     | model-steps/s | vs M single steps |")
    print(f"|{'-' * 28}|------------------|---------|---------------|-------------------|")
    for name, (_, members) in variants.items():
        median = statistics.median(times[name])
        print(f"| {name:26} | {median:16.1f} | {min(times[name]):7.1f} | {members * 1e3 / median:13.1f} "
              f"| {members * single / median:16.2f}x |")


if __name__ == "__main__":
    main()
