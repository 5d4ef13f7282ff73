"""Benchmark: the digits trainer's ms/step against a straightforward PyTorch loop of the same model.

The reference is what one writes from the recipe with ``torch.nn`` modules: embeddings, LayerNorms,
a bias-free QKV ``Linear`` and causal attention over all 33 positions, a GELU FFN, the output tied
to the embedding, ``torch.optim.AdamW`` with ``clip_grad_norm_`` and a ``LambdaLR`` schedule.
Ours: ``grokviz.training.digits.update`` (answer-positions-only last block, the AdamW of
``grokviz.training.optim``). Both draw the same batches (the trainer's tensor sampler), one thread.
Rounds alternate between the two so that load from other processes hits both alike.

    python scripts/bench_digits.py [--rounds 6] [--steps 100]
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere without installing

from grokviz.core import digits_model  # noqa: E402
from grokviz.core.digits_config import DigitsConfig  # noqa: E402
from grokviz.training.digits import training_batch, update  # noqa: E402
from grokviz.training.optim import (  # noqa: E402
    AdamWState,  # noqa: E402
    Hyper,
    adder_learning_rate,
)


class Reference(nn.Module):
    """The 777-parameter model from torch.nn modules (full-sequence forward)."""

    def __init__(self, cfg: DigitsConfig) -> None:
        super().__init__()
        d = cfg.d_model
        self.tok = nn.Embedding(cfg.d_vocab, d)
        self.pos = nn.Embedding(cfg.n_ctx, d)
        self.ln1, self.ln2, self.ln_f = (nn.LayerNorm(d, eps=1e-6) for _ in range(3))
        self.qkv = nn.Linear(d, 3 * d, bias=False)
        self.out = nn.Linear(d, d, bias=False)
        self.fc1, self.fc2 = nn.Linear(d, cfg.d_mlp, bias=False), nn.Linear(cfg.d_mlp, d, bias=False)
        self.act = nn.GELU(approximate="tanh")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[1]
        h = self.tok(x) + self.pos(torch.arange(n))
        q, k, v = self.qkv(self.ln1(h)).chunk(3, dim=-1)
        att = (q @ k.transpose(1, 2)) / math.sqrt(q.shape[-1])
        att = att.masked_fill(torch.ones(n, n, dtype=torch.bool).triu(1), float("-inf")).softmax(-1)
        h = h + self.out(att @ v)
        h = h + self.fc2(self.act(self.fc1(self.ln2(h))))
        return self.ln_f(h) @ self.tok.weight.T


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--steps", type=int, default=100)
    args = parser.parse_args()
    torch.set_num_threads(1)
    cfg = DigitsConfig()
    params = {k: v.requires_grad_(True) for k, v in digits_model.init_params(cfg).items()}
    state, hyper = AdamWState.zeros_like(params), Hyper.of(cfg, torch.device("cpu"))
    ref = Reference(cfg)
    assert sum(p.numel() for p in ref.parameters()) == 777
    opt = torch.optim.AdamW(ref.parameters(), lr=cfg.lr, betas=(0.9, 0.999), weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: adder_learning_rate(cfg, s) / cfg.lr)

    def ours(step: int) -> None:
        x, labels = training_batch(cfg, step)
        update(params, state, hyper, cfg, x, labels)

    def reference(step: int) -> None:
        x, labels = training_batch(cfg, step)
        logits = ref(x)[:, -12:]
        loss = nn.functional.cross_entropy(logits.reshape(-1, 14), labels.reshape(-1))
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(ref.parameters(), 1.0)
        opt.step()
        sched.step()

    timings: dict[str, list[float]] = {"grokviz (answer-only forward, ours)": [], "torch.nn reference": []}
    step = 0
    for _ in range(2):  # warm-up
        ours(step), reference(step)
        step += 1
    for _ in range(args.rounds):
        for name, fn in zip(timings, (ours, reference)):
            start = time.perf_counter()
            for i in range(args.steps):
                fn(step + i)
            timings[name].append((time.perf_counter() - start) / args.steps * 1e3)
        step += args.steps
    print(f"batch {cfg.batch_size}, 777 parameters, 1 thread, {args.rounds} interleaved rounds of {args.steps} steps")
    print(f"{'loop':<40} {'median ms/step':>15} {'min':>8} {'max':>8}")
    for name, values in timings.items():
        print(f"{name:<40} {statistics.median(values):>15.2f} {min(values):>8.2f} {max(values):>8.2f}")
    ratio = statistics.median(timings["torch.nn reference"]) / statistics.median(
        timings["grokviz (answer-only forward, ours)"]
    )
    print(f"reference / ours: {ratio:.2f}x")


if __name__ == "__main__":
    main()
