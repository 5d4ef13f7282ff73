"""Is the reference fast path as fast as before the architecture options? And what do the others cost?

    python scripts/bench_architectures.py [--before 409e317] [--rounds 7] [--steps 20] [--threads 1]

Prints one table of ms per training step (the trainer's own ``SingleStep``: forward, float64
loss, backward, AdamW; the test set every ``log_every`` steps), measured interleaved round by
round in one process, so machine noise hits every row alike:

1. **before**: the trainer's step with ``grokviz/core/model.py`` as it was at ``--before`` (read
   with ``git show``, loaded as its own module) in place of today's forward;
2. **reference, fast path**: today's step on the reference architecture (the default);
3. **reference, general path**: the same weights through ``grokviz.core.forward.forward(last_only=True)``,
   which projects all three positions per pair instead of gathering token tables (what the
   tables save);
4. **the PyTorch encoder's architecture** (post-LN, every bias, no positions, bidirectional, dropout 0.1) at
   p = 97 with half the pairs, the bundled ``torch-encoder-p97`` run's recipe, on the table path that
   every architecture takes, and 5. the same through the general path.

Rows 1-3 train the reference recipe (p = 113, 3,830 pairs) from the same weights (the bundled
run's step 5,000 when present). The ratio column is against row 1.
"""

from __future__ import annotations

import argparse
import importlib.util
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere without installing

from grokviz.core import forward as definition  # the all-position forward (the "general path")
from grokviz.core.architecture import REFERENCE
from grokviz.core.config import Config, dataset_for
from grokviz.core.params import init_params
from grokviz.storage.runs import nearest_step, open_run
from grokviz.training import single
from grokviz.training.device import configure_cpu
from grokviz.training.dropout import draw_for
from grokviz.training.optim import AdamWState, Hyper
from grokviz.training.single import SingleStep

REPO = Path(__file__).resolve().parents[1]


def old_model(revision: str):
    """grokviz/core/model.py at ``revision``, as a module of its own."""
    text = subprocess.run(
        ["git", "-C", str(REPO), "show", f"{revision}:grokviz/core/model.py"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path = Path(tempfile.mkdtemp()) / "model_before.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location("model_before", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_step(cfg: Config, params, forward=None):
    """A function running one trainer step (test set every log_every calls) of ``cfg`` from ``params``."""
    dataset = dataset_for(cfg)
    split = lambda index: tuple(t[index] for t in (dataset.a, dataset.b, dataset.labels))  # noqa: E731
    weights = {k: v.clone().requires_grad_(True) for k, v in params.items()}
    state = AdamWState.zeros_like(weights, step=cfg.warmup_steps)
    train = split(dataset.train_idx)
    step = SingleStep(
        weights,
        state,
        Hyper.of(cfg, torch.device("cpu")),
        train,
        split(dataset.test_idx),
        arch=cfg.architecture,
        dropout=draw_for(cfg, len(train[0]), torch.device("cpu")),
    )
    counter = [0]

    def run() -> None:
        original = single.forward_last
        if forward is not None:
            single.forward_last = forward
        try:
            step(evaluate=counter[0] % cfg.log_every == 0)
        finally:
            single.forward_last = original
        counter[0] += 1

    return run


def identical(before, cfg: Config, params) -> bool:
    """Whether the old and the new fast path give the same logits and gradients, bit for bit."""
    from grokviz.core.fast_path import forward_last
    from grokviz.training.step import cross_entropy64

    dataset = dataset_for(cfg)
    a, b, labels = (t[dataset.train_idx] for t in (dataset.a, dataset.b, dataset.labels))
    results = []
    for forward in (before.forward_last, forward_last):
        weights = {k: v.clone().requires_grad_(True) for k, v in params.items()}
        logits = forward(weights, a, b)
        cross_entropy64(logits, labels).backward()
        results.append((logits.detach(), {k: v.grad for k, v in weights.items()}))
    (old_logits, old_grads), (new_logits, new_grads) = results
    return torch.equal(old_logits, new_logits) and all(torch.equal(old_grads[k], new_grads[k]) for k in old_grads)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", default="409e317", help="git revision of the model before the options")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=20, help="steps per variant per round")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    configure_cpu(args.threads)

    reference = Config()
    run_path = REPO / "checkpoints" / "add-p113"
    if (run_path / "run.json").exists():
        run = open_run(run_path)
        at = nearest_step(run.steps(), 5000)
        params, origin = run.load(at), f"add-p113 step {at}"
    else:
        params, origin = init_params(reference), "initialisation"
    before = old_model(args.before)

    def before_forward(params, a, b, hooks=None, cache=None, arch=REFERENCE, dropout=None):
        return before.forward_last(params, a, b, hooks, cache)

    def general_forward(params, a, b, hooks=None, cache=None, arch=REFERENCE, dropout=None):
        tokens = torch.stack([a, b, torch.full_like(a, params["embed.W_E"].shape[0] - 1)], dim=1)
        return definition.forward(params, tokens, arch, hooks=hooks, cache=cache, last_only=True, dropout=dropout)

    encoder = Config(
        p=97, frac_train=0.5, layernorm="post", biases="all", pos_embed="none", attention="bidirectional", dropout=0.1
    )
    variants = {
        f"before ({args.before}), reference": make_step(reference, params, before_forward),
        "now, reference, fast path": make_step(reference, params),
        "now, reference, general path": make_step(reference, params, general_forward),
        "now, the PyTorch encoder's architecture, p=97": make_step(encoder, init_params(encoder)),
        "now, the encoder's, p=97, general path": make_step(encoder, init_params(encoder), general_forward),
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    for step in variants.values():  # warm-up
        step()
    for _ in range(args.rounds):
        for name, step in variants.items():
            start = time.perf_counter()
            for _ in range(args.steps):
                step()
            times[name].append((time.perf_counter() - start) / args.steps * 1000)

    print(f"reference logits and gradients bit-identical to {args.before}'s: {identical(before, reference, params)}")
    first = times[next(iter(variants))]
    print(
        f"machine: {platform.machine()} {platform.processor() or ''}, torch {torch.__version__}, "
        f"{args.threads} thread(s); weights from {origin}; {args.rounds} rounds x {args.steps} steps, interleaved"
    )
    # The ratio is the median of per-round ratios: each round's variants ran back to back, so a
    # slow patch of the machine cancels out of it.
    print(f"{'variant':<42} {'ms/step (median)':>17} {'min':>7} {'max':>7} {'vs before (paired)':>19}")
    for name, values in times.items():
        ratio = statistics.median(v / b for v, b in zip(values, first))
        print(f"{name:<42} {statistics.median(values):>17.1f} {min(values):>7.1f} {max(values):>7.1f} {ratio:>18.3f}x")


if __name__ == "__main__":
    main()
