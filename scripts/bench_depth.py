"""Training speed by depth: grokviz's step against a plain PyTorch loop of the same model.

    python scripts/bench_depth.py [--threads 1] [--rounds 5] [--steps 10] [--layers 1,2,4]
                                  [--baseline /tmp/base]

Prints one table: ms per training step (one AdamW update, no evaluation) for 1, 2 and 4 layers,
full batch and minibatch (512), on Power et al.'s setup: x / y mod 97 with half the pairs
(4,656 training pairs), d_model 128, 4 heads of 32, d_mlp 512, causal attention, AdamW lr 1e-3,
weight decay 1, betas (0.9, 0.98). Each row compares

* **grokviz**: the single run's own step (``training.single.SingleStep``: the fast path of
  ``core.fast_path.forward_last``, the float64 loss, AdamW as tensor updates; minibatches drawn
  by ``training.batches.BatchDraw``), denormals flushed as the trainer does;
* **plain PyTorch**: an ``nn.Module`` written the way tutorials write it (``nn.Embedding``,
  ``nn.Linear`` projections per block, a causal mask, ReLU MLP, every block at all three
  positions, logits of the last one), ``torch.optim.AdamW``, float32 cross-entropy, minibatches by
  ``torch.randperm``; the same sizes and initial weights.

Variants run interleaved, round by round, in one process, so machine noise hits all alike; the
ratio is plain / grokviz (above 1: grokviz is faster). ``--baseline PATH`` (another checkout, e.g.
``git worktree add /tmp/base 6c1630e``) also times the 1-layer reference recipe's step (p = 113,
full batch, with the test set every 100 steps) in that checkout and in this one, back to back in
alternating order, each in a fresh process, and prints the median of the per-round ratios: the
single-layer fast path must keep its speed.
"""

from __future__ import annotations

import argparse
import math
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere without installing

from grokviz.core.config import Config, dataset_for
from grokviz.core.params import Params, init_params
from grokviz.core.recipes import RECIPES
from grokviz.training.batches import BatchDraw
from grokviz.training.optim import AdamWState, Hyper
from grokviz.training.single import SingleStep

REPO = Path(__file__).resolve().parents[1]


class PlainBlock(nn.Module):
    """One pre-norm-free block as the paper's model has it: x + attn(x), then x + mlp(x)."""

    def __init__(self, d_model: int, n_heads: int, d_mlp: int):
        super().__init__()
        self.n_heads = n_heads
        self.q, self.k, self.v, self.o = (nn.Linear(d_model, d_model, bias=False) for _ in range(4))
        self.mlp_in, self.mlp_out = nn.Linear(d_model, d_mlp), nn.Linear(d_mlp, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: [batch, pos, d_model]
        batch, n_ctx, d_model = x.shape
        d_head = d_model // self.n_heads

        def heads(t: torch.Tensor) -> torch.Tensor:  # [batch, pos, d_model] -> [batch, head, pos, d_head]
            return t.view(batch, n_ctx, self.n_heads, d_head).transpose(1, 2)

        q, k, v = heads(self.q(x)), heads(self.k(x)), heads(self.v(x))
        scores = q @ k.transpose(-1, -2) / math.sqrt(d_head)  # [batch, head, q_pos, k_pos]
        future = torch.ones(n_ctx, n_ctx, dtype=torch.bool, device=x.device).triu(1)
        z = scores.masked_fill(future, float("-inf")).softmax(-1) @ v  # [batch, head, pos, d_head]
        x = x + self.o(z.transpose(1, 2).reshape(batch, n_ctx, d_model))
        return x + self.mlp_out(torch.relu(self.mlp_in(x)))


class PlainModel(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.embed = nn.Embedding(cfg.p + 1, cfg.d_model)
        self.pos = nn.Parameter(torch.zeros(3, cfg.d_model))
        self.blocks = nn.ModuleList(PlainBlock(cfg.d_model, cfg.n_heads, cfg.d_mlp) for _ in range(cfg.n_layers))
        self.unembed = nn.Linear(cfg.d_model, cfg.p, bias=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:  # tokens [batch, pos] -> logits [batch, p]
        x = self.embed(tokens) + self.pos
        for block in self.blocks:
            x = block(x)
        return self.unembed(x)[:, -1]

    def load_grokviz(self, params: Params) -> PlainModel:
        """The same initial weights as grokviz's (TransformerLens layout -> nn.Linear's [out, in])."""
        with torch.no_grad():
            self.embed.weight.copy_(params["embed.W_E"])
            self.pos.copy_(params["pos_embed.W_pos"])
            self.unembed.weight.copy_(params["unembed.W_U"].T)
            for i, block in enumerate(self.blocks):
                name = f"blocks.{i}"
                for letter, linear in zip("QKV", (block.q, block.k, block.v)):
                    # [head, d_model, d_head] -> [head*d_head, d_model]
                    linear.weight.copy_(params[f"{name}.attn.W_{letter}"].transpose(1, 2).flatten(0, 1))
                block.o.weight.copy_(params[f"{name}.attn.W_O"].flatten(0, 1).T)  # [d_model, head*d_head]
                block.mlp_in.weight.copy_(params[f"{name}.mlp.W_in"].T)
                block.mlp_in.bias.copy_(params[f"{name}.mlp.b_in"])
                block.mlp_out.weight.copy_(params[f"{name}.mlp.W_out"].T)
                block.mlp_out.bias.copy_(params[f"{name}.mlp.b_out"])
        return self


def splits(cfg: Config):
    dataset = dataset_for(cfg)
    return tuple(
        tuple(t[idx] for t in (dataset.a, dataset.b, dataset.labels)) for idx in (dataset.train_idx, dataset.test_idx)
    )


def make_grokviz(cfg: Config, params: Params, data):
    """The single run's update step (no evaluation), past warm-up."""
    params = {k: v.clone().requires_grad_(True) for k, v in params.items()}
    state = AdamWState.zeros_like(params, step=cfg.warmup_steps)
    train, test = data
    batches = BatchDraw(cfg, len(train[0]), torch.device("cpu")) if cfg.batch_size is not None else None
    step_of = SingleStep(params, state, Hyper.of(cfg), train, test, arch=cfg.architecture, batches=batches)
    return lambda: step_of(evaluate=False)


def make_plain(cfg: Config, params: Params, data):
    model = PlainModel(cfg).load_grokviz(params)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(cfg.beta1, cfg.beta2)
    )
    (a, b, labels), _ = data
    tokens = torch.stack([a, b, torch.full_like(a, cfg.p)], dim=1)  # [n_train, pos]

    def step() -> None:
        rows = torch.randperm(len(labels))[: cfg.batch_size] if cfg.batch_size is not None else slice(None)
        loss = nn.functional.cross_entropy(model(tokens[rows]), labels[rows])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


# The 1-layer reference recipe's step in a checkout (run as `python -c` there): ms per step over
# `steps` steps with the test set every 100 steps, as the trainer logs, from fresh weights.
_REFERENCE_STEP = """
import sys, time, torch
sys.path.insert(0, sys.argv[1])
torch.set_num_threads(int(sys.argv[2])); torch.set_flush_denormal(True)
from grokviz.core.config import Config, dataset_for
from grokviz.core.params import init_params
from grokviz.training.optim import AdamWState, Hyper
from grokviz.training.single import SingleStep
cfg = Config(); d = dataset_for(cfg)
data = [tuple(t[i] for t in (d.a, d.b, d.labels)) for i in (d.train_idx, d.test_idx)]
params = {k: v.requires_grad_(True) for k, v in init_params(cfg).items()}
step = SingleStep(params, AdamWState.zeros_like(params, step=cfg.warmup_steps), Hyper.of(cfg), *data)
steps = int(sys.argv[3])
for i in range(3): step(evaluate=False)
start = time.perf_counter()
for i in range(steps): step(evaluate=i % 100 == 0)
print((time.perf_counter() - start) / steps * 1e3)
"""


def reference_step_ms(checkout: Path, threads: int, steps: int) -> float:
    done = subprocess.run(
        [sys.executable, "-c", _REFERENCE_STEP, str(checkout), str(threads), str(steps)],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(done.stdout.strip().splitlines()[-1])


def machine(threads: int) -> str:
    cores = len(__import__("os").sched_getaffinity(0))
    return f"{platform.processor() or platform.machine()}, {cores} cores, {threads} torch thread(s); torch {torch.__version__}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=10, help="steps per variant per round")
    parser.add_argument("--layers", default="1,2,4", help="depths to time, e.g. 1,2,4")
    parser.add_argument("--batch", type=int, default=512, help="the minibatch size (Power et al.'s 512)")
    parser.add_argument("--baseline", type=Path, default=None, help="another checkout: time its 1-layer step too")
    parser.add_argument("--baseline-steps", type=int, default=100)
    parser.add_argument("--baseline-rounds", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)  # as the trainers do (grokviz.training.device)

    base = RECIPES["power2022"].apply(Config(task="div", frac_train=0.5))
    variants = {}
    for depth in (int(n) for n in args.layers.split(",")):
        for batch in (None, args.batch):
            cfg = base.replace(n_layers=depth, batch_size=batch)
            params, data = init_params(cfg), splits(cfg)
            label = f"{depth} layer{'s' if depth > 1 else ''}, {'full batch' if batch is None else f'batch {batch}'}"
            variants[label] = (make_grokviz(cfg, params, data), make_plain(cfg, params, data))
    times = {label: ([], []) for label in variants}
    for _ in range(args.rounds):
        for label, steps in variants.items():
            for fn, found in zip(steps, times[label]):
                fn()  # warm after the switch
                start = time.perf_counter()
                for _ in range(args.steps):
                    fn()
                found.append((time.perf_counter() - start) / args.steps * 1e3)

    n_train = len(splits(base)[0][0])
    print(f"machine: {machine(args.threads)}")
    print(
        f"Power et al.'s setup: x/y mod {base.p}, {n_train:,} training pairs, d_model {base.d_model}, "
        f"{base.n_heads} heads, d_mlp {base.d_mlp}; median of {args.rounds} interleaved rounds of {args.steps} steps"
    )
    print(f"{'model':<26}{'grokviz ms/step':>17}{'plain PyTorch ms/step':>23}{'plain / grokviz':>17}")
    for label, (ours, plain) in times.items():
        ours_ms, plain_ms = statistics.median(ours), statistics.median(plain)
        print(f"{label:<26}{ours_ms:>17.1f}{plain_ms:>23.1f}{plain_ms / ours_ms:>16.2f}x")

    if args.baseline is not None:
        found = {"baseline": [], "this checkout": []}
        checkouts = [("baseline", args.baseline), ("this checkout", REPO)]
        for round_ in range(args.baseline_rounds):
            # Back to back, in alternating order (ABBA...), so that a drift in the machine's load
            # favours neither; the ratio of each round's pair is what is compared.
            for name, checkout in checkouts if round_ % 2 == 0 else checkouts[::-1]:
                found[name].append(reference_step_ms(checkout, args.threads, args.baseline_steps))
        old, new = (statistics.median(found[n]) for n in ("baseline", "this checkout"))
        ratios = [b / a for a, b in zip(found["baseline"], found["this checkout"])]
        print(
            f"\n1-layer reference recipe step (p 113, full batch, test set every 100 steps), "
            f"{args.baseline_rounds} rounds of one process per checkout, {args.baseline_steps} steps each:"
        )
        print(
            f"  baseline {args.baseline}: {old:.1f} ms   this checkout: {new:.1f} ms (medians)   "
            f"median of per-round ratios (this / baseline): {statistics.median(ratios):.3f}"
        )
        print(f"  per-round ratios: {[round(x, 3) for x in ratios]}")


if __name__ == "__main__":
    main()
