"""Benchmark: an adder ensemble of N seeds against N separate adder runs, in member-steps per second.

Separate runs: the single run's step (``grokviz.training.digits.update``) on each member's own
batch, one member after another. Ensemble: ``grokviz.training.digits_members.step_digits_group``,
all N members in one vmapped step; with ``--compile``, also through ``compiled_loss`` (Inductor's
fused loops and the attention kernel of ``grokviz.kernels.tiny_attention``). Both draw each step's
batches with the trainer's sampler (one draw per data seed, as each does in training), one thread,
the 777-parameter recipe's shape.
Rounds alternate between the two so that load from other processes hits both alike.

    python scripts/bench_ensemble_digits.py [--compile] [--members 8] [--rounds 4] [--steps 60] [--d-model 7 --d-mlp 14]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere without installing

from grokviz.core import digits_model  # noqa: E402
from grokviz.core.digits_config import DigitsConfig  # noqa: E402
from grokviz.training.digits import training_batch, update  # noqa: E402
from grokviz.training.digits_members import compiled_loss, make_digits_groups, step_digits_group  # noqa: E402
from grokviz.training.optim import AdamWState, Hyper  # noqa: E402


def separate(configs: list[DigitsConfig], steps: int, first: int) -> float:
    """Seconds for ``steps`` steps of each config as its own single run (one after another per step)."""
    runs = []
    for cfg in configs:
        params = {k: v.requires_grad_(True) for k, v in digits_model.init_params(cfg).items()}
        runs.append((cfg, params, AdamWState.zeros_like(params, step=first), Hyper.of(cfg)))
    start = time.perf_counter()
    for step in range(first, first + steps):
        for cfg, params, state, hyper in runs:
            update(params, state, hyper, cfg, *training_batch(cfg, step))
    return time.perf_counter() - start


def together(configs: list[DigitsConfig], steps: int, first: int, loss_fn=None) -> float:
    """Seconds for ``steps`` steps of the configs as one ensemble group (``loss_fn``: compiled or not)."""
    (group,) = make_digits_groups(configs, torch.device("cpu"))
    group.state.step.fill_(first)
    start = time.perf_counter()
    for step in range(first, first + steps):
        drawn = [training_batch(cfg, step) for cfg in configs]  # every member has its own data seed
        x, labels = (torch.stack([d[k] for d in drawn]) for k in (0, 1))  # [member, batch, 33|12]
        step_digits_group(group, x, labels, loss_fn=loss_fn)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=8, help="seeds in the ensemble")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--steps", type=int, default=60, help="steps per member per round")
    parser.add_argument("--d-model", type=int, default=7)
    parser.add_argument("--d-mlp", type=int, default=14)
    parser.add_argument("--compile", action="store_true", help="also time the ensemble with its step compiled")
    args = parser.parse_args()
    torch.set_num_threads(1)
    base = DigitsConfig(d_model=args.d_model, d_mlp=args.d_mlp)
    configs = [base.replace(seed=s) for s in range(args.members)]
    first = 8000  # past the curriculum: 1-10 digit operands, as most of training
    kinds = {"separate runs": separate, "ensemble": together}
    if args.compile:
        compiled = compiled_loss()
        start = time.perf_counter()
        together(configs, 1, first, compiled)  # compiles it
        print(f"compiling the ensemble's step took {time.perf_counter() - start:.0f} s")
        kinds["ensemble, compiled"] = lambda c, s, f: together(c, s, f, compiled)
    for fn in kinds.values():
        fn(configs, 3, first)  # warm-up
    rates = {name: [] for name in kinds}
    for _ in range(args.rounds):
        for name, fn in kinds.items():
            rates[name].append(args.members * args.steps / fn(configs, args.steps, first))
    median = {name: statistics.median(values) for name, values in rates.items()}
    print(
        f"{args.members} adder members, d_model {args.d_model}, d_mlp {args.d_mlp}, batch {base.batch_size}, 1 thread"
    )
    for name, rate in median.items():
        ratio = rate / median["separate runs"]
        print(f"  {name:20s} {rate:7.1f} member-steps/s  ({1e3 / rate:6.2f} ms per member-step)  {ratio:.2f}x")
    print(f"  (medians of {args.rounds} interleaved rounds of {args.steps} steps each)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
