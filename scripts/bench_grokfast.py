"""What a Grokfast filter costs per step: the single-run trainer's step, plain and with each filter.

    python scripts/bench_grokfast.py [--device auto|cpu|cuda] [--threads 1] [--rounds 5] [--steps 20]

Prints one table: ms per step (median over rounds) and the ratio to the plain step, for the reference
recipe (p = 113) started from the bundled run's step 5,000, with no filter, the EMA filter
(alpha 0.98, lamb 2) and the MA filter (window 100, lamb 5; its ring of 100 gradients is full, so
every step filters). Variants are measured interleaved, round by round, in one process. The
trainer's own bookkeeping (snapshots, log rows, files) is not in these numbers.
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

from grokviz.core.config import Config, dataset_for
from grokviz.storage.runs import nearest_step, open_run
from grokviz.training.device import configure_cpu, pick_device
from grokviz.training.graphs import replayable
from grokviz.training.grokfast import Grokfast
from grokviz.training.optim import AdamWState, Hyper
from grokviz.training.single import SingleStep

REPO = Path(__file__).resolve().parents[1]
VARIANTS = {
    "plain": Config(),
    "Grokfast EMA (alpha 0.98, lamb 2)": Config(grokfast="ema"),
    "Grokfast MA (window 100, lamb 5)": Config(grokfast="ma"),
}


def make_step(cfg: Config, params, data, dev: torch.device):
    params = {k: v.to(dev).clone().requires_grad_(True) for k, v in params.items()}
    state = AdamWState.zeros_like(params, step=1000)  # past warm-up and past a full MA window
    (train, test) = (tuple(t.to(dev) for t in split) for split in data)
    step_of = SingleStep(params, state, Hyper.of(cfg, dev), train, test, Grokfast.of(cfg, params))
    logged = replayable(lambda: step_of(evaluate=True), step_of.state_tensors())
    plain = replayable(lambda: step_of(evaluate=False), step_of.state_tensors())
    counter = [0]

    def step() -> None:  # the test set every log_every steps, as the trainer does
        (logged if counter[0] % cfg.log_every == 0 else plain)()
        counter[0] += 1

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    dev = pick_device(args.device)
    if dev.type == "cpu":
        configure_cpu(args.threads)
    run = open_run(REPO / "checkpoints" / "add-p113")
    start = nearest_step(run.steps(), 5000)
    params = run.load(start)
    dataset = dataset_for(Config())
    data = [
        tuple(t[idx] for t in (dataset.a, dataset.b, dataset.labels)) for idx in (dataset.train_idx, dataset.test_idx)
    ]
    steps = {name: make_step(cfg, params, data, dev) for name, cfg in VARIANTS.items()}
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(args.rounds):
        for name, step in steps.items():
            step()
            if dev.type == "cuda":
                torch.cuda.synchronize()
            began = time.perf_counter()
            for _ in range(args.steps):
                step()
            if dev.type == "cuda":
                torch.cuda.synchronize()
            times[name].append((time.perf_counter() - began) / args.steps * 1e3)
    machine = torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor() or platform.machine()
    print(
        f"machine: {machine}; torch {torch.__version__}; threads {torch.get_num_threads()}; from add-p113 step {start}"
    )
    print(f"{args.rounds} rounds x {args.steps} steps per variant, interleaved\n")
    plain = statistics.median(times["plain"])
    print("| variant | ms/step (median) | min | vs plain |\n|---|---|---|---|")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"| {name} | {median:.1f} | {min(values):.1f} | {median / plain:.2f}x |")


if __name__ == "__main__":
    main()
