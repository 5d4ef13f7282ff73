"""Time what the app computes per step, per ablation change, and for a 100-checkpoint timeline.

    python scripts/bench_analysis.py [--run checkpoints/add-p113] [--threads 1] [--repeats 5]

Uses the last checkpoint of ``--run`` when it has one (else a freshly initialised p = 113 model:
the cost does not depend on the weights). Prints a table of median wall times; the budgets are
the issue's (250 ms per step change, 100 ms per ablation change, 30 s per 100-checkpoint timeline).
Not a test: timings depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from grokviz.analysis.ablation import ablate_baseline, predict
from grokviz.analysis.attention import attention_to
from grokviz.analysis.baseline import baseline
from grokviz.analysis.fourier import embed_spectrum, unembed_spectrum
from grokviz.analysis.neurons import key_frequencies, neuron_stats, probe, term_correlations
from grokviz.core.config import (
    Config,
    dataset_for,
)
from grokviz.core.params import init_params
from grokviz.storage.runs import open_run, save_checkpoint, write_run_file
from grokviz.storage.timeline import timeline


def median_ms(fn, repeats: int) -> float:
    fn()  # warm-up: first calls allocate and build cached bases
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def load_model(run_path: Path):
    if (run_path / "run.json").is_file():
        run = open_run(run_path)
        steps = run.steps()
        if steps:
            start = time.perf_counter()
            params = run.load(steps[-1])
            load_ms = 1000 * (time.perf_counter() - start)
            return run.config, params, f"{run_path} step {steps[-1]}", load_ms
    cfg = Config()
    return cfg, init_params(cfg), "freshly initialised p=113 model (no run found)", float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default=str(REPO / "checkpoints" / "add-p113"))
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: the app's setting on 2 cores)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--timeline-checkpoints", type=int, default=100)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)  # weight-decayed checkpoints hold denormals; they slow CPU math

    cfg, params, what, load_ms = load_model(Path(args.run))
    dataset = dataset_for(cfg)
    base = baseline(params)
    stats = neuron_stats(base.acts, blocks=base.blocks)
    keys = sorted(key_frequencies(stats)) or [1, 2, 3]
    other = sorted(set(keys[:-1]) | {keys[-1] % ((cfg.p - 1) // 2) + 1})  # a different set, same size

    def step_change():
        fresh = baseline(params)  # one all-pairs forward (its frequency blocks come with the neuron table)
        embed_spectrum(params), unembed_spectrum(params)
        fresh_stats = neuron_stats(fresh.acts, blocks=fresh.blocks)
        fresh_stats.table()
        chosen = sorted(key_frequencies(fresh_stats)) or [1]
        ablate_baseline(fresh, params, dataset, chosen, "remove", "logits")

    rows = [("load checkpoint (safetensors -> fp32)", load_ms, None)]
    rows.append(
        (
            "step change: baseline (all-pairs forward + frequency blocks)",
            median_ms(lambda: baseline(params).blocks, args.repeats),
            None,
        )
    )
    rows.append(
        (
            "step change: spectra (W_E, W_L)",
            median_ms(lambda: (embed_spectrum(params), unembed_spectrum(params)), args.repeats),
            None,
        )
    )
    rows.append(
        (
            "step change: neuron table (FVE, frequencies)",
            median_ms(lambda: neuron_stats(base.acts, blocks=base.blocks).table(), args.repeats),
            None,
        )
    )
    rows.append(
        (
            "step change: ablation at defaults (remove keys, logits)",
            median_ms(lambda: ablate_baseline(base, params, dataset, keys, "remove", "logits"), args.repeats),
            None,
        )
    )
    rows.append(("STEP CHANGE TOTAL (all of the above but loading)", median_ms(step_change, args.repeats), 250))
    for site in ("logits", "neurons", "embedding"):
        for mode in ("remove", "keep"):
            rows.append(
                (
                    f"ablation change: {mode} {len(other)} freqs at {site}",
                    median_ms(lambda: ablate_baseline(base, params, dataset, other, mode, site), args.repeats),
                    100,
                )
            )
    everything = list(range(1, (cfg.p - 1) // 2 + 1))
    rows.append(
        (
            "ablation change: keep all 56 at neurons (worst case)",
            median_ms(lambda: ablate_baseline(base, params, dataset, everything, "keep", "neurons"), args.repeats),
            100,
        )
    )
    rows.append(("probe (one neuron, one input)", median_ms(lambda: probe(base.acts, 0, 3, 5), args.repeats), None))
    rows.append(
        (
            "term correlations (all neurons)",
            median_ms(lambda: term_correlations(base.acts, keys[0]), args.repeats),
            None,
        )
    )
    rows.append(("attention pattern (all pairs)", median_ms(lambda: attention_to(params), args.repeats), None))
    rows.append(("prediction for one (a, b)", median_ms(lambda: predict(params, 3, 5, keys, 8), args.repeats), None))

    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "bench-run"
        cfg16 = cfg.replace(save_dtype="float16")  # as the bundled run stores them
        write_run_file(run_dir, cfg16)
        for i in range(args.timeline_checkpoints):
            save_checkpoint(run_dir, 100 * i, params, cfg16)
        run = open_run(run_dir)
        start = time.perf_counter()
        timeline(run, use_cache=True)
        cold = time.perf_counter() - start
        start = time.perf_counter()
        timeline(run, use_cache=True)
        warm = time.perf_counter() - start
    rows.append((f"timeline of {args.timeline_checkpoints} checkpoints (computed, then cached)", 1000 * cold, 30_000))
    rows.append((f"timeline of {args.timeline_checkpoints} checkpoints (from the cache)", 1000 * warm, None))

    print(
        f"model: {what}; p={cfg.p}, d_mlp={cfg.d_mlp}; torch {torch.__version__}, {args.threads} thread(s); "
        f"median of {args.repeats}"
    )
    width = max(len(name) for name, _, _ in rows)
    print(f"{'what':<{width}}  {'ms':>9}  {'budget':>7}  ok")
    for name, ms, budget in rows:
        verdict = "" if budget is None else ("yes" if ms <= budget else "NO")
        print(f"{name:<{width}}  {ms:>9.1f}  {'' if budget is None else budget:>7}  {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
