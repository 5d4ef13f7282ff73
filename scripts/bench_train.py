"""Training speed on this machine: the reference loop, grokviz's single run, grokviz's ensemble.

    python scripts/bench_train.py [--device auto|cpu|cuda] [--members 8] [--rounds 5] [--steps 20]

Prints one table: ms per step, the time 25,000 steps take (the reference recipe's length) and
model-steps per second (members x steps / s), for

1. the reference loop as the public notebooks write it: full forward over all three positions,
   eager, ``torch.optim.AdamW`` with a ``LambdaLR`` warm-up, train loss and (in inference mode)
   test loss computed and read with ``.item()`` every step;
2. grokviz's single run: the trainer's own step (position-2 fast path, AdamW scalars on the
   device, test set every ``log_every`` steps), replayed as CUDA graphs on a GPU, and on a GPU
   also launched eagerly, to show what the graphs buy;
3. grokviz's ensemble step over ``--members`` models (the ensemble trainer's vmapped step,
   CUDA graphs on a GPU).

On a CPU, 1 and 2 run at PyTorch's default thread count (the trainers' default too) and with one
thread, so each pair compares like with like; denormals are flushed in ours, as the trainers do.

Every variant trains the reference config (p = 113, 3,830 training pairs) from the same weights
(by default the bundled run's step 5,000, where weights have reached denormal values; every
ensemble member starts from them too). Variants are measured interleaved, round by round, in one
process, so machine noise hits all alike. The trainer's per-step bookkeeping (snapshots, log
rows, files) is not in these numbers; ``scripts/check_gpu.py`` times whole runs.
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
from grokviz.core.forward import forward
from grokviz.core.params import init_params
from grokviz.storage.runs import nearest_step, open_run
from grokviz.training.device import keep_freed_memory, pick_device
from grokviz.training.graphs import replayable
from grokviz.training.members import group_steps, make_groups, stack
from grokviz.training.optim import AdamWState, Hyper
from grokviz.training.single import SingleStep

DEFAULT_THREADS = torch.get_num_threads()
REPO = Path(__file__).resolve().parents[1]
RECIPE_STEPS = 25_000


def starting_weights(cfg: Config, run_path: Path | None, step: int) -> tuple[dict[str, torch.Tensor], str]:
    if run_path is not None and (run_path / "run.json").exists():
        run = open_run(run_path)
        if run.steps():
            chosen = nearest_step(run.steps(), step)
            return run.load(chosen), f"{run_path.name} step {chosen}"
    return init_params(cfg), "initialisation"


def every_log_every(cfg: Config, logged, plain):
    """A step function that evaluates the test set every ``log_every`` steps, as the trainer does."""
    counter = [0]

    def step() -> None:
        (logged if counter[0] % cfg.log_every == 0 else plain)()
        counter[0] += 1

    return step


def make_ours(cfg: Config, params, data, dev: torch.device, use_graphs: bool):
    params = {k: v.to(dev).clone().requires_grad_(True) for k, v in params.items()}
    state = AdamWState.zeros_like(params, step=cfg.warmup_steps)  # past warm-up, as mid-run
    (ta, tb, ty), (va, vb, vy) = data
    step_of = SingleStep(
        params, state, Hyper.of(cfg, dev), (ta.to(dev), tb.to(dev), ty.to(dev)), (va.to(dev), vb.to(dev), vy.to(dev))
    )
    logged = replayable(lambda: step_of(evaluate=True), step_of.state_tensors(), use_graph=use_graphs)
    plain = replayable(lambda: step_of(evaluate=False), step_of.state_tensors(), use_graph=use_graphs)
    return every_log_every(cfg, logged, plain)


def make_ensemble(cfg: Config, params, members: int, dev: torch.device, use_graphs: bool):
    (group,) = make_groups([cfg.replace(seed=seed) for seed in range(members)], dev)
    group.params = {k: v.to(dev).requires_grad_(True) for k, v in stack([params] * members).items()}
    group.state = AdamWState.zeros_like(group.params, step=cfg.warmup_steps)
    logged, plain = group_steps(group, use_graphs)
    return every_log_every(cfg, logged, plain)


def make_reference(cfg: Config, params, data, dev: torch.device):
    params = {k: v.to(dev).clone().requires_grad_(True) for k, v in params.items()}
    optimizer = torch.optim.AdamW(
        params.values(), lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(cfg.beta1, cfg.beta2)
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + cfg.warmup_steps) / cfg.warmup_steps, 1)
    )
    (ta, tb, ty), (va, vb, vy) = ((t.to(dev) for t in split) for split in data)
    eq = lambda a: torch.full_like(a, cfg.p)  # noqa: E731
    train_tokens, test_tokens = torch.stack([ta, tb, eq(ta)], 1), torch.stack([va, vb, eq(va)], 1)

    def step() -> None:
        train_loss = torch.nn.functional.cross_entropy(forward(params, train_tokens).double(), ty)
        train_loss.backward()
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
        with torch.inference_mode():
            test_loss = torch.nn.functional.cross_entropy(forward(params, test_tokens).double(), vy)
        train_loss.item(), test_loss.item()

    return step


def machine(dev: torch.device) -> str:
    if dev.type == "cuda":
        return f"{torch.cuda.get_device_name(dev)}; torch {torch.__version__}"
    return (
        f"{platform.processor() or platform.machine()}, default torch threads {DEFAULT_THREADS}; "
        f"torch {torch.__version__}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--members", type=int, default=None, help="ensemble size (default 8 on a CPU, 64 on a GPU)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=None, help="steps per variant per round (default 20 CPU, 200 GPU)")
    parser.add_argument("--step-from", type=Path, default=REPO / "checkpoints" / "add-p113")
    parser.add_argument("--at-step", type=int, default=5000, help="checkpoint step to start from")
    args = parser.parse_args()

    dev = pick_device(args.device)
    on_gpu = dev.type == "cuda"
    members = args.members or (64 if on_gpu else 8)
    steps = args.steps or (200 if on_gpu else 20)
    cfg = Config()
    dataset = dataset_for(cfg)
    data = tuple(
        tuple(t[idx] for t in (dataset.a, dataset.b, dataset.labels)) for idx in (dataset.train_idx, dataset.test_idx)
    )
    params, origin = starting_weights(cfg, args.step_from, args.at_step)
    if not on_gpu:
        keep_freed_memory()  # as the ensemble trainer does on a CPU

    # name -> (step function, models per step, CPU threads, flush denormals)
    if on_gpu:
        variants = {
            "reference loop": (make_reference(cfg, params, data, dev), 1, None, False),
            "grokviz single run, eager": (make_ours(cfg, params, data, dev, use_graphs=False), 1, None, False),
            "grokviz single run, CUDA graphs": (make_ours(cfg, params, data, dev, use_graphs=True), 1, None, False),
            f"grokviz ensemble of {members}, CUDA graphs": (
                make_ensemble(cfg, params, members, dev, True),
                members,
                None,
                False,
            ),
        }
    else:
        variants = {
            "reference loop (default threads)": (make_reference(cfg, params, data, dev), 1, DEFAULT_THREADS, False),
            "reference loop (1 thread)": (make_reference(cfg, params, data, dev), 1, 1, False),
            "grokviz single run (default threads)": (
                make_ours(cfg, params, data, dev, False),
                1,
                DEFAULT_THREADS,
                True,
            ),
            "grokviz single run (1 thread)": (make_ours(cfg, params, data, dev, use_graphs=False), 1, 1, True),
            f"grokviz ensemble of {members} (default threads)": (
                make_ensemble(cfg, params, members, dev, False),
                members,
                DEFAULT_THREADS,
                True,
            ),
        }
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, (step, _, threads, flush) in variants.items():
            if threads is not None:
                torch.set_num_threads(threads)
            torch.set_flush_denormal(flush)
            step()  # warm this variant's caches after the switch
            if on_gpu:
                torch.cuda.synchronize()
            start = time.perf_counter()
            for _ in range(steps):
                step()
            if on_gpu:
                torch.cuda.synchronize()
            times[name].append((time.perf_counter() - start) / steps * 1e3)

    reference = statistics.median(next(iter(times.values())))
    print(f"machine: {machine(dev)}")
    print(
        f"p={cfg.p}, {len(data[0][0])} train pairs, start: {origin}; {args.rounds} interleaved rounds x {steps} steps\n"
    )
    print(
        f"| {'variant':40} | ms/step (median) | min      | {RECIPE_STEPS:,} steps | model-steps/s | speed-up vs reference |"
    )
    print(f"|{'-' * 42}|------------------|----------|--------------|---------------|-----------------------|")
    for name, (_, models, _, _) in variants.items():
        median = statistics.median(times[name])
        print(
            f"| {name:40} | {median:16.3f} | {min(times[name]):8.3f} | {median * RECIPE_STEPS / 1e3:10.1f} s "
            f"| {models * 1e3 / median:13.0f} | {models * reference / median:20.1f}x |"
        )
    print("\nspeed-up: model-steps per second against the first row's (for an ensemble, all its members count).")


if __name__ == "__main__":
    main()
