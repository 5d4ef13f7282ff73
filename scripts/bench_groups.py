"""What a training step on S5 costs against one at p = 113, per training pair.

    python scripts/bench_groups.py [--rounds 7] [--steps 10] [--threads 1]

Prints one table of ms per training step (the trainer's own ``SingleStep``: forward, float64 loss,
backward, AdamW; the test set every ``log_every`` steps) for the reference recipe at p = 113 (30%
of 12,769 pairs) and for S5 composition (60% of 14,400 pairs, Chughtai et al.'s split), same model
shape, measured interleaved round by round in one process so machine noise hits both rows alike.
The last column is the per-round ratio of the cost per training pair, against p = 113: the groups
issue asks for at most 1.3x.
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

from grokviz.core.config import Config
from grokviz.core.groups_config import GroupsConfig
from grokviz.core.params import init_params
from grokviz.training.device import configure_cpu
from grokviz.training.optim import AdamWState, Hyper
from grokviz.training.single import SingleStep


def make_step(cfg: Config):
    """(a function running one trainer step of ``cfg`` from its initialisation, training pairs)."""
    dataset = cfg.dataset()
    split = lambda index: tuple(t[index] for t in (dataset.a, dataset.b, dataset.labels))  # noqa: E731
    weights = {k: v.requires_grad_(True) for k, v in init_params(cfg).items()}
    state = AdamWState.zeros_like(weights, step=cfg.warmup_steps)
    train = split(dataset.train_idx)
    step = SingleStep(weights, state, Hyper.of(cfg, torch.device("cpu")), train, split(dataset.test_idx))
    counter = [0]

    def run() -> None:
        step(evaluate=counter[0] % cfg.log_every == 0)
        counter[0] += 1

    return run, len(train[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=10, help="steps per variant per round")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    configure_cpu(args.threads)

    variants = {"modular add, p = 113": make_step(Config()), "S5 composition": make_step(GroupsConfig(group="S5"))}
    times: dict[str, list[float]] = {name: [] for name in variants}
    for step, _ in variants.values():  # warm-up
        step()
    for _ in range(args.rounds):
        for name, (step, _) in variants.items():
            start = time.perf_counter()
            for _ in range(args.steps):
                step()
            times[name].append((time.perf_counter() - start) / args.steps * 1000)

    print(
        f"machine: {platform.machine()} {platform.processor() or ''}, torch {torch.__version__}, "
        f"{args.threads} thread(s); {args.rounds} rounds x {args.steps} steps, interleaved"
    )
    base_name = next(iter(variants))
    base_pairs = variants[base_name][1]
    print(f"{'variant':<24} {'train pairs':>11} {'ms/step (median)':>17} {'us/pair':>8} {'per pair vs p=113':>18}")
    for name, values in times.items():
        pairs = variants[name][1]
        ratio = statistics.median((v / pairs) / (b / base_pairs) for v, b in zip(values, times[base_name]))
        median = statistics.median(values)
        print(f"{name:<24} {pairs:>11,} {median:>17.1f} {median / pairs * 1000:>8.2f} {ratio:>17.2f}x")


if __name__ == "__main__":
    main()
