"""The trainer's GPU checks and figures, in one command for a machine with a CUDA GPU.

    python scripts/check_gpu.py [--out DIR] [--quick]

1. CUDA graphs == eager: a small run (p = 23, 300 steps) trained on the GPU with its steps
   replayed as CUDA graphs and launched eagerly reaches the same weights and the same log.
2. Ensemble member == single run, both on the GPU with CUDA graphs.
3. The reference recipe (p = 113, 25,000 steps) trained end to end by ``grokviz.train`` with
   CUDA graphs, in fp32 and in tf32: wall time, training time (the loop alone, from the log),
   and the step at which test accuracy first reached 99%.
4. 64 seeds of the recipe by ``grokviz.ensemble`` (tf32, and fp32 unless ``--quick``): the same
   figures and how many members grokked.
5. The benchmark table of ``scripts/bench_train.py --device cuda``.
6. The general path (the PyTorch encoder's architecture: post-LN, every bias, no positions, dropout 0.1) on
   the GPU: graphs on a run without dropout == eager, the dropout run eager (it says so) with its
   member == single run, the GPU run near the CPU run, and its step time.
7. Composition in S5 (the groups family, ``grokviz train-group``) on the GPU: graphs == eager on a
   short run, an ensemble member == its single run, and the ms per step of the S5 recipe's shape.

Prints a summary and writes it to ``DIR/check_gpu.json``; exits 1 if a check fails or a step
cannot be captured as a CUDA graph.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run from anywhere without installing

from grokviz.core.config import Config
from grokviz.errors import GrokvizError
from grokviz.storage.resume import RESUME_FILE
from grokviz.storage.runs import open_run
from grokviz.training.ensemble import train_ensemble
from grokviz.training.single import train

SMALL = Config(
    p=23,
    d_model=64,
    d_mlp=128,
    n_heads=4,
    d_head=16,
    frac_train=0.5,
    steps=300,
    log_every=10,
    save_every=100,
    save_log_points=6,
)
LOG_COLUMNS = ["train_loss", "train_accuracy", "test_loss", "test_accuracy"]


def max_weight_difference(a, b) -> float:
    first, second = a.load(a.steps()[-1]), b.load(b.steps()[-1])
    return max((first[k] - second[k]).abs().max().item() for k in first)


def max_log_difference(a, b) -> float:
    both = a.log().merge(b.log(), on="step", suffixes=("_a", "_b"))
    return max(float((both[f"{c}_a"] - both[f"{c}_b"]).abs().max()) for c in LOG_COLUMNS)


def grokked_at(run) -> int | None:
    log = run.log()
    crossed = log.step[log.test_accuracy >= 0.99]
    return int(crossed.iloc[0]) if len(crossed) else None


def timed(fn):
    torch.cuda.synchronize()
    start = time.perf_counter()
    result = fn()
    torch.cuda.synchronize()
    return result, time.perf_counter() - start


def main() -> int:
    try:
        return checks()
    except GrokvizError as exc:  # a step that cannot be captured as a CUDA graph, say
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1


def checks() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=None, help="folder for check_gpu.json (default: a temporary one)")
    parser.add_argument("--quick", action="store_true", help="skip the fp32 64-seed ensemble")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("error: no CUDA device; this script checks the GPU path", file=sys.stderr)
        return 2
    report: dict = {"device": torch.cuda.get_device_name(), "torch": torch.__version__}
    failures: list[str] = []
    work = Path(tempfile.mkdtemp(prefix="grokviz-gpu-"))

    # 1. graphs == eager, on the same GPU (same kernels: expected bit-identical or at rounding).
    graphs = train(SMALL, work / "small-graphs", device="cuda", progress=False)
    eager = train(SMALL, work / "small-eager", device="cuda", progress=False, use_graphs=False)
    cpu = train(SMALL, work / "small-cpu", device="cpu", progress=False)
    report["graphs_vs_eager"] = {
        "max_weight_diff": max_weight_difference(graphs, eager),
        "max_log_diff": max_log_difference(graphs, eager),
    }
    report["gpu_vs_cpu"] = {
        "max_weight_diff": max_weight_difference(graphs, cpu),
        "final_train_accuracy": [float(r.log().train_accuracy.iloc[-1]) for r in (graphs, cpu)],
    }
    if report["graphs_vs_eager"]["max_weight_diff"] > 1e-5 or report["graphs_vs_eager"]["max_log_diff"] > 1e-6:
        failures.append("CUDA-graph run differs from the eager run")
    if not (graphs.path / RESUME_FILE).is_file():
        failures.append("graph run left no resume state")

    # 2. ensemble member == single run, on the GPU.
    (member,) = [open_run(f) for f in train_ensemble([SMALL], work / "small-ensemble", device="cuda", progress=False)]
    report["member_vs_single"] = {
        "max_weight_diff": max_weight_difference(member, graphs),
        "max_log_diff": max_log_difference(member, graphs),
    }
    if report["member_vs_single"]["max_weight_diff"] > 1e-4:
        failures.append("ensemble member differs from its single run")

    # 3. the reference recipe, end to end.
    for matmul in ("fp32", "tf32"):
        cfg = Config(matmul=matmul)
        run, wall = timed(lambda: train(cfg, work / f"recipe-{matmul}", device="cuda", progress=False))
        log = run.log()
        report[f"recipe_{matmul}"] = {
            "wall_s": wall,
            "training_s": float(log.elapsed_s.iloc[-1]),
            "ms_per_step": float(log.elapsed_s.iloc[-1]) / cfg.steps * 1e3,
            "test_acc_99_at": grokked_at(run),
            "final_test_accuracy": float(log.test_accuracy.iloc[-1]),
        }
        print(matmul, "recipe:", report[f"recipe_{matmul}"], flush=True)

    # 4. 64 seeds of it.
    for matmul in ("tf32",) if args.quick else ("tf32", "fp32"):
        configs = [Config(matmul=matmul, seed=seed) for seed in range(64)]
        folders, wall = timed(lambda: train_ensemble(configs, work / f"seeds-{matmul}", device="cuda", progress=False))
        runs = [open_run(f) for f in folders]
        grokked = sorted(s for s in map(grokked_at, runs) if s is not None)
        report[f"seeds64_{matmul}"] = {
            "wall_s": wall,
            "training_s": max(float(r.log().elapsed_s.iloc[-1]) for r in runs),
            "grokked": len(grokked),
            "test_acc_99_at_median": grokked[len(grokked) // 2] if grokked else None,
        }
        print(matmul, "64 seeds:", report[f"seeds64_{matmul}"], flush=True)

    # 5. the benchmark table.
    bench = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "bench_train.py"), "--device", "cuda"], capture_output=True, text=True
    )
    report["bench_train"] = bench.stdout + bench.stderr
    print(report["bench_train"])
    if bench.returncode:
        failures.append(f"bench_train.py exited with status {bench.returncode}")

    # 6. the general path (architecture options), on the GPU.
    general = SMALL.replace(layernorm="post", biases="all", pos_embed="none", attention="bidirectional")
    g_graphs = train(general, work / "general-graphs", device="cuda", progress=False)
    g_eager = train(general, work / "general-eager", device="cuda", progress=False, use_graphs=False)
    dropped = general.replace(dropout=0.1)
    d_single = train(dropped, work / "dropout-single", device="cuda", progress=False)
    (d_member,) = [
        open_run(f) for f in train_ensemble([dropped], work / "dropout-ensemble", device="cuda", progress=False)
    ]
    d_cpu = train(dropped, work / "dropout-cpu", device="cpu", progress=False)
    report["general_path"] = {
        "graphs_vs_eager_max_weight_diff": max_weight_difference(g_graphs, g_eager),
        "dropout_member_vs_single_max_log_diff": max_log_difference(d_member, d_single),
        "dropout_gpu_vs_cpu_final_test_accuracy": [float(r.log().test_accuracy.iloc[-1]) for r in (d_single, d_cpu)],
        "ms_per_step_graphs": float(g_graphs.log().elapsed_s.iloc[-1]) / general.steps * 1e3,
        "ms_per_step_dropout_eager": float(d_single.log().elapsed_s.iloc[-1]) / dropped.steps * 1e3,
    }
    print("general path:", report["general_path"], flush=True)
    if report["general_path"]["graphs_vs_eager_max_weight_diff"] > 1e-5:
        failures.append("general path: CUDA-graph run differs from the eager run")
    if report["general_path"]["dropout_member_vs_single_max_log_diff"] > 1e-5:
        failures.append("general path: dropout ensemble member differs from its single run")

    # 7. the groups family: the modular trainer on S5's table, on the GPU.
    from grokviz.core.groups_config import GroupsConfig

    s5 = GroupsConfig(group="S5", steps=300, log_every=20, save_every=100, save_log_points=0)
    s_graphs = train(s5, work / "s5-graphs", device="cuda", progress=False)
    s_eager = train(s5, work / "s5-eager", device="cuda", progress=False, use_graphs=False)
    (s_member,) = [open_run(f) for f in train_ensemble([s5], work / "s5-ensemble", device="cuda", progress=False)]
    report["groups_s5"] = {
        "graphs_vs_eager_max_weight_diff": max_weight_difference(s_graphs, s_eager),
        "member_vs_single_max_log_diff": max_log_difference(s_member, s_graphs),
        "ms_per_step_graphs": float(s_graphs.log().elapsed_s.iloc[-1]) / s5.steps * 1e3,
    }
    print("groups (S5):", report["groups_s5"], flush=True)
    if report["groups_s5"]["graphs_vs_eager_max_weight_diff"] > 1e-5:
        failures.append("groups: S5 CUDA-graph run differs from the eager run")
    if report["groups_s5"]["member_vs_single_max_log_diff"] > 1e-5:
        failures.append("groups: S5 ensemble member differs from its single run")

    report["failures"] = failures
    out = args.out or work
    out.mkdir(parents=True, exist_ok=True)
    (out / "check_gpu.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k != "bench_train"}, indent=2))
    print("FAILED: " + "; ".join(failures) if failures else "all GPU checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
