"""What ``--ray local`` costs against the in-process ensemble, for a small sweep, on this machine.

    python scripts/bench_ray.py [--rounds 3] [--members 8] [--group-size 4] [--steps 300]

Each round runs, one after the other (so machine noise hits all alike), the same sweep as
``grokviz ensemble`` commands in fresh processes, wall clock from start to exit:

1. in process (``--threads 1``): the groups stepped together in one process;
2. ``--ray local`` (``--threads 1``: one CPU per task): Ray started for the run, one task per group,
   Ray stopped at the end;
3. ``--ray ADDRESS`` of a Ray instance this script started once (``ray start --head``) before the
   rounds: what a sweep costs on a cluster that is already up.

Prints one table (median and every round's seconds) and the overheads against 1. The sweep is
``--members`` seeds of a small model (p = 23), ``--group-size`` members per group.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def sweep_flags(out: Path, members: int, group_size: int, steps: int) -> list[str]:
    return [
        *("--out", str(out), "--seeds", f"0-{members - 1}", "--group-size", str(group_size)),
        *("--p", "23", "--d-model", "64", "--d-mlp", "128", "--n-heads", "4", "--d-head", "16"),
        *("--steps", str(steps), "--log-every", "10", "--save-every", "100", "--threads", "1", "--no-progress"),
    ]


def timed(argv: list[str], env: dict) -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "grokviz", "ensemble", *argv], cwd=REPO, env=env, check=True, capture_output=True
    )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--members", type=int, default=8)
    parser.add_argument("--group-size", type=int, default=4)
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args()
    # RAY_AUTH_MODE=token: the driver sends the token `ray start` wrote to an explicit address (docs/ray.md).
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONPATH": path, "RAY_AUTH_MODE": "token"}
    ray_cli = Path(sys.executable).with_name("ray")
    temp = Path(tempfile.mkdtemp(prefix="grokviz-bench-ray-"))
    port = "6391"
    subprocess.run(
        [str(ray_cli), "start", "--head", f"--port={port}", "--num-cpus=2", "--include-dashboard=false"],
        env=env,
        check=True,
        capture_output=True,
    )
    variants = {
        "in process": [],
        "--ray local": ["--ray", "local"],
        "--ray (cluster already up)": ["--ray", f"127.0.0.1:{port}"],
    }
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    try:
        for round_ in range(args.rounds):
            for name, extra in variants.items():
                out = temp / f"{round_}-{len(seconds[name])}-{name.split()[0].strip('-')}"
                seconds[name].append(timed(sweep_flags(out, args.members, args.group_size, args.steps) + extra, env))
                shutil.rmtree(out)
    finally:
        subprocess.run([str(ray_cli), "stop"], env=env, capture_output=True)
        shutil.rmtree(temp, ignore_errors=True)
    groups = -(-args.members // args.group_size)
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores; sweep of {args.members} members "
        f"({groups} groups of {args.group_size}), p=23, {args.steps} steps, --threads 1; {args.rounds} rounds\n"
    )
    base = statistics.median(seconds["in process"])
    print(f"{'variant':<28} {'median s':>9} {'overhead s':>11}   rounds (s)")
    for name, values in seconds.items():
        median = statistics.median(values)
        rounds = " ".join(f"{v:.1f}" for v in values)
        print(f"{name:<28} {median:>9.1f} {median - base:>+11.1f}   {rounds}")


if __name__ == "__main__":
    main()
