"""The single source of truth for a run: one frozen dataclass, validated on construction.

The trainer's command-line flags are generated from the fields (see ``grokviz.train``), a run
folder stores it as JSON, and every module reads model sizes from here. Defaults are the
reference recipe of *Progress measures for grokking* (docs/analysis.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from grokviz.core.architecture import (
    ACTIVATIONS,
    ATTENTIONS,
    BIASES,
    LAYERNORMS,
    POS_EMBEDS,
    UNEMBEDS,
    Architecture,
)
from grokviz.core.stored import SAVE_DTYPES, ConfigError, Problems, StoredConfig
from grokviz.core.tasks import SPLITS, TASKS, Dataset, make_dataset
from grokviz.errors import GrokvizError

# Blocks of the modular model: one is the paper's; Power et al. (2022) trained two. Deeper models
# are allowed up to 4 (the analyses and the app show every layer; beyond that nothing is tested).
N_LAYERS_MIN, N_LAYERS_MAX = 1, 4

# Training needs the p^2 x d_mlp activations in memory; 997 (largest prime below 1000) keeps
# that at ~2 GB of fp32 at the default width. Below 5 there is only one Fourier frequency.
P_MIN, P_MAX = 5, 997

# Live analysis holds [p, p, d_mlp] activations and their 2-D Fourier transform several times
# over (about 1 GB at p = 257, d_mlp = 512); above this p the app and analyze CLI refuse politely.
ANALYSIS_P_MAX = 257

# How training computes float32 matrix products: exactly, or (CUDA only) with TF32 tensor cores,
# which the 64-seed ensemble needs on an H100: its fp32 arithmetic alone is ~81 s at peak.
MATMULS = ("fp32", "tf32")
# Learning rate after warm-up: constant (the reference recipe; a run extends exactly with
# --resume --steps N) or a cosine decay to 0 at the last step (it depends on --steps, so it cannot).
LR_SCHEDULES = ("constant", "cosine")
# Grokfast (Lee et al. 2024) gradient filters: none, an exponential moving average, or the mean of
# a window of gradients (grokviz.training.grokfast). Defaults as in the paper's code (ironjr/grokfast).
GROKFASTS = ("none", "ema", "ma")
GROKFAST_DEFAULTS = {
    "ema": {"grokfast_alpha": 0.98, "grokfast_lamb": 2.0},
    "ma": {"grokfast_window": 100, "grokfast_lamb": 5.0},
}


def is_prime(n: int) -> bool:
    if n < 2:
        return False
    return all(n % d for d in range(2, math.isqrt(n) + 1))


def check_frac_train(check: Problems, n_pairs: int | None) -> None:
    """``frac_train`` in (0, 1), and leaving at least one training pair of ``n_pairs`` (None: the
    task's fields are themselves invalid, so the count is unknown)."""
    if check.ok("frac_train") and not 0.0 < check.cfg.frac_train < 1.0:
        check.add("frac_train", "must be strictly between 0 and 1")
    elif check.ok("frac_train") and n_pairs is not None:
        n_train = int(check.cfg.frac_train * n_pairs)  # as tasks.make_dataset splits (frac < 1 leaves a test pair)
        if n_train < 1:
            check.add(
                "frac_train",
                f"gives {n_train} of {n_pairs} pairs for training; the training set needs at least one pair",
            )


@dataclass(frozen=True)
class Config(StoredConfig):
    """Everything that defines a run: task, model shape, optimiser, schedule, storage."""

    family = "modular"  # a class attribute, not a field: the task family (grokviz.core.families)

    # --- task and data -------------------------------------------------------------------
    task: str = field(default="add", metadata={"help": f"operation over Z_p, one of {sorted(TASKS)}"})
    p: int = field(default=113, metadata={"help": f"modulus, a prime in [{P_MIN}, {P_MAX}]"})
    frac_train: float = field(default=0.3, metadata={"help": "fraction of all pairs used for training"})
    seed: int = field(default=0, metadata={"help": "seed of the weight initialisation"})
    data_seed: int | None = field(
        default=None, metadata={"help": "seed of the train/test split (default: same as --seed)"}
    )
    split: str = field(
        default="torch",
        metadata={
            "help": "how pairs are shuffled for the split: 'torch' (torch.randperm; grokviz, the "
            "TransformerLens demo) or 'python' (random.shuffle; the paper's reference code)"
        },
    )
    # --- model (TransformerLens names) -----------------------------------------------------
    d_model: int = field(default=128, metadata={"help": "residual stream width"})
    n_heads: int = field(default=4, metadata={"help": "attention heads"})
    d_head: int = field(default=32, metadata={"help": "width of each head"})
    d_mlp: int = field(default=512, metadata={"help": "MLP neurons"})
    n_layers: int = field(
        default=1, metadata={"help": f"transformer blocks, {N_LAYERS_MIN} to {N_LAYERS_MAX} (blocks.0 ... blocks.N-1)"}
    )
    # --- architecture (defaults: the paper's; grokviz.core.architecture) ------------------------
    layernorm: str = field(
        default="none",
        metadata={"help": f"LayerNorm, one of {LAYERNORMS}: pre (before attention and MLP, and a final one) or post"},
    )
    biases: str = field(
        default="mlp",
        metadata={"help": f"one of {BIASES}: mlp (the paper's), all (attention, MLP, unembedding: PyTorch's), none"},
    )
    pos_embed: str = field(default="learned", metadata={"help": f"positional embedding, one of {POS_EMBEDS}"})
    attention: str = field(default="causal", metadata={"help": f"attention mask, one of {ATTENTIONS}"})
    dropout: float = field(
        default=0.0,
        metadata={"help": "dropout while training, where PyTorch's encoder layer has it (attention, both sublayers)"},
    )
    unembed: str = field(
        default="untied", metadata={"help": f"one of {UNEMBEDS}: tied uses W_U = W_E[:p]^T (the '=' row unused)"}
    )
    activation: str = field(default="relu", metadata={"help": f"MLP activation, one of {ACTIVATIONS} (exact GELU)"})
    # --- optimiser: full-batch AdamW ---------------------------------------------------------
    lr: float = field(default=1e-3, metadata={"help": "AdamW learning rate after warm-up"})
    weight_decay: float = field(default=1.0, metadata={"help": "AdamW decoupled weight decay"})
    beta1: float = field(default=0.9, metadata={"help": "AdamW beta1"})
    beta2: float = field(default=0.98, metadata={"help": "AdamW beta2"})
    warmup_steps: int = field(default=10, metadata={"help": "linear learning-rate warm-up from 0"})
    steps: int = field(default=25_000, metadata={"help": "optimiser steps (full batch: one step = one epoch)"})
    batch_size: int | None = field(
        default=None,
        metadata={
            "help": "training pairs per step, drawn without replacement from (seed, step), so a resumed run "
            "draws what it would have; unset: the whole training set every step (full batch)"
        },
    )
    matmul: str = field(
        default="fp32",
        metadata={
            "help": f"float32 matrix products: one of {MATMULS}; tf32 (CUDA only) uses tensor cores at ~10-bit mantissa"
        },
    )
    lr_schedule: str = field(
        default="constant",
        metadata={"help": f"learning rate after warm-up: one of {LR_SCHEDULES} (cosine decays to 0 at --steps)"},
    )
    # --- Grokfast gradient filter (after backward, before AdamW) ------------------------------
    grokfast: str = field(
        default="none",
        metadata={"help": f"Grokfast gradient filter, one of {GROKFASTS}: g += lamb * (EMA or window mean of g)"},
    )
    grokfast_alpha: float | None = field(
        default=None, metadata={"help": "EMA filter: mu <- alpha * mu + (1 - alpha) * g; unset: 0.98"}
    )
    grokfast_lamb: float | None = field(
        default=None,
        metadata={"help": "filter amplification: g <- g + lamb * filtered g; unset: 2.0 for ema, 5.0 for ma"},
    )
    grokfast_window: int | None = field(
        default=None, metadata={"help": "MA filter: gradients averaged (off until the window is full); unset: 100"}
    )
    grokfast_divide_lr: bool = field(
        default=False,
        metadata={"help": "divide the learning rate by (1 + lamb): the fair-comparison control for a filter"},
    )
    # --- logging and checkpoints ------------------------------------------------------------
    log_every: int = field(default=20, metadata={"help": "steps between training-log rows (test set evaluated then)"})
    save_every: int = field(default=1000, metadata={"help": "steps between regular checkpoints"})
    save_log_points: int = field(
        default=16, metadata={"help": "extra log-spaced checkpoints over the run (dense early)"}
    )
    save_dtype: str = field(
        default="float32", metadata={"help": f"dtype of stored checkpoint weights, one of {SAVE_DTYPES}"}
    )

    def __post_init__(self) -> None:
        problems = self.problems()
        if problems:
            raise ConfigError(problems, {name: getattr(self, name) for name, _ in problems})

    def problems(self) -> list[tuple[str, str]]:
        """Every (field, what is wrong and what is allowed) of this config; empty when it is valid.

        The one validation of a config, whatever built it (a command line, the Python API, the app,
        a run folder read back): types first (a field of the wrong type is not range-checked), then
        ranges and finiteness, then combinations of fields.
        """
        problems: list[tuple[str, str]] = []
        self._fill_grokfast_defaults(problems)  # fills in the filter's defaults first: they are then checked
        check = Problems(self, problems)
        self._task_problems(check)
        check.seeds("seed", "data_seed")
        check.at_least(1, "d_model", "n_heads", "d_head", "d_mlp", "steps", "log_every", "save_every")
        check.at_least(0, "warmup_steps", "save_log_points")
        check.positive("lr")
        check.at_least(0, "weight_decay")
        check.below_one("beta1", "beta2")
        check.one_of("split", SPLITS)
        check.one_of("matmul", MATMULS)
        check.one_of("save_dtype", SAVE_DTYPES)
        check.one_of("lr_schedule", LR_SCHEDULES)
        for name, allowed in _CHOICES.items():
            check.one_of(name, allowed)
        check.below_one("dropout")
        self._depth_and_batch_problems(check)
        return check.list

    def _depth_and_batch_problems(self, check: Problems) -> None:
        """``n_layers`` in range, ``batch_size`` within the training set, and what depth excludes."""
        if check.ok("n_layers") and not N_LAYERS_MIN <= self.n_layers <= N_LAYERS_MAX:
            check.add("n_layers", f"must be between {N_LAYERS_MIN} and {N_LAYERS_MAX}")
        if check.ok("n_layers", "dropout") and self.n_layers > 1 and self.dropout > 0:
            # Masks are drawn for one block's sites (training.dropout); per-layer masks are not built.
            check.add("dropout", "is supported with one layer only (n_layers=1); use dropout=0 with more layers")
        if not check.ok("batch_size") or self.batch_size is None:
            return
        if self.batch_size < 1:
            check.add("batch_size", "must be at least 1 (or unset: the whole training set)")
            return
        if {"task", "p", "frac_train", "group"} & {name for name, _ in check.list}:
            return  # the training set's size is unknown: its fields are refused above
        n_train = self.train_size()
        if self.batch_size > n_train:
            check.add("batch_size", f"is above the training set's {n_train} pairs; give 1 to {n_train}, or unset")

    def train_size(self) -> int:
        """How many pairs the training split holds (as ``tasks.make_dataset`` splits them)."""
        return int(self.frac_train * self.pair_count())

    def _task_problems(self, check: Problems) -> None:
        """The rules of the task fields (``task``, ``p``, ``frac_train``): a subclass with other
        tasks (``core.groups_config``) replaces only these."""
        ok = check.ok
        if ok("task") and self.task not in TASKS:
            check.add("task", f"is unknown; choose one of {sorted(TASKS)}")
        if ok("p") and (not (P_MIN <= self.p <= P_MAX) or not is_prime(self.p)):
            check.add("p", f"must be a prime in [{P_MIN}, {P_MAX}]")
        tasks_ok = ok("task", "p") and self.task in TASKS and P_MIN <= self.p <= P_MAX
        check_frac_train(check, self.pair_count() if tasks_ok else None)

    def pair_count(self) -> int:
        """How many (a, b) pairs the task has (as ``make_dataset`` lists them)."""
        return self.p * (self.p - 1) if TASKS[self.task].needs_nonzero_b else self.p * self.p

    def dataset(self) -> Dataset:
        """The dataset this run trains on (the split is deterministic from the config)."""
        return make_dataset(self.task, self.p, self.frac_train, self.split_seed, self.split)

    def _fill_grokfast_defaults(self, problems: list[tuple[str, str]]) -> None:
        """Give the chosen filter its default settings and refuse settings of another filter.

        Stored resolved, so ``run.json`` says exactly what ran and Config(grokfast="ema") equals
        Config(grokfast="ema", grokfast_lamb=2.0). Types are checked by :meth:`problems` after this.
        """
        if not isinstance(self.grokfast, str) or self.grokfast not in GROKFASTS:
            problems.append(("grokfast", f"must be one of {GROKFASTS}"))
            return
        defaults = GROKFAST_DEFAULTS.get(self.grokfast, {})
        for name in ("grokfast_alpha", "grokfast_lamb", "grokfast_window"):
            if name not in defaults and getattr(self, name) is not None:
                owner = "ema" if name == "grokfast_alpha" else "ma" if name == "grokfast_window" else "ema or ma"
                problems.append((name, f"applies only with grokfast={owner}, not {self.grokfast!r}"))
            elif getattr(self, name) is None and name in defaults:
                object.__setattr__(self, name, defaults[name])  # frozen: the one place a field is filled in
        if self.grokfast_divide_lr is True and self.grokfast == "none":
            problems.append(("grokfast_divide_lr", "needs a filter (grokfast=ema or ma)"))
        numeric = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)  # noqa: E731
        if numeric(self.grokfast_alpha) and not 0.0 <= self.grokfast_alpha < 1.0:
            problems.append(("grokfast_alpha", "must be in [0, 1)"))
        if numeric(self.grokfast_lamb) and not self.grokfast_lamb >= 0:
            problems.append(("grokfast_lamb", "must be at least 0"))
        if numeric(self.grokfast_window) and not self.grokfast_window >= 1:
            problems.append(("grokfast_window", "must be at least 1"))

    @property
    def architecture(self) -> Architecture:
        """The function this run's checkpoints compute, apart from their weights."""
        return Architecture(**{name: getattr(self, name) for name in _CHOICES})

    @property
    def peak_lr(self) -> float:
        """The learning rate after warm-up: ``lr``, divided by (1 + lamb) with ``grokfast_divide_lr``."""
        return self.lr / (1.0 + self.grokfast_lamb) if self.grokfast_divide_lr else self.lr

    # Derived sizes (TransformerLens names). The '=' token has id p.
    @property
    def d_vocab(self) -> int:
        return self.p + 1

    @property
    def d_vocab_out(self) -> int:
        return self.p

    @property
    def n_ctx(self) -> int:
        return 3

    @property
    def split_seed(self) -> int:
        return self.seed if self.data_seed is None else self.data_seed


def check_analysable(cfg: Config, source: str = "this run") -> None:
    """Refuse live analysis of models too big for memory, in words, before any allocation."""
    if cfg.p > ANALYSIS_P_MAX:
        raise GrokvizError(
            f"{source}: p={cfg.p} is above {ANALYSIS_P_MAX}, the largest p grokviz analyses live "
            f"(all p^2 inputs x d_mlp activations would need ~{cfg.p**2 * cfg.d_mlp * 4 * 6 / 2**30:.0f} GB); "
            "its training log can still be read"
        )


def dataset_for(cfg: Config) -> Dataset:
    """The dataset a run was trained on (the split is deterministic from the config)."""
    return cfg.dataset()


# The architecture's fields and their allowed values (the names are Architecture's).
_CHOICES = {
    "layernorm": LAYERNORMS,
    "biases": BIASES,
    "pos_embed": POS_EMBEDS,
    "attention": ATTENTIONS,
    "unembed": UNEMBEDS,
    "activation": ACTIVATIONS,
}

# The declared kind of every field ("int", "float", "str", "int | None"), read once from the annotations.
