"""The config of a digits run (the 10-digit adder): one frozen dataclass, validated on construction.

The sibling of ``grokviz.core.config.Config`` for the digits task family; a run folder says which
family it holds (``"family": "digits"`` in run.json). Defaults are gpt-acc-jax's recipe, the
777-parameter model of yhavinga/gpt-acc-jax ("pico-7d-ff14-lr02"; docs/adder.md): 1 layer,
d_model 7, 1 head, FFN width 14, LayerNorm, no FFN bias, output tied to the token embedding;
AdamW (weight decay 0.01, betas 0.9/0.999), batch 512, clipping at global norm 1.0, peak lr 0.02
with 5% linear warm-up then cosine decay to 0.1x at the last step (27,000), and the curriculum
1-3 digits until step 2,000, 1-6 until 7,000, then 1-10.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import ClassVar

from grokviz.core.config import SAVE_DTYPES, SEED_LIMIT, ConfigError
from grokviz.core.digits_tasks import D_VOCAB, N_CTX, N_DIGITS
from grokviz.core.stored import KIND_WORDS, StoredConfig, has_kind

NORMALIZATIONS = ("LN", "RMS")
UNEMBEDS = ("tied", "untied")


def parse_curriculum(text: str) -> list[tuple[int, int]]:
    """'3:2000,6:7000,10' -> [(3, 2000), (6, 7000), (10, None)]: most digits per stage and the step
    it ends at (the last stage runs to the end). Raises ValueError with what is wrong."""
    stages: list[tuple[int, int]] = []
    parts = [part.strip() for part in str(text).split(",")]
    for i, part in enumerate(parts):
        digits, colon, until = part.partition(":")
        last = i == len(parts) - 1
        if last == bool(colon):
            raise ValueError("write stages as DIGITS:UNTIL_STEP, the last one DIGITS alone, e.g. 3:2000,6:7000,10")
        try:
            n = int(digits)
            end = int(until) if colon else None
        except ValueError:
            raise ValueError(f"{part!r} is not DIGITS:UNTIL_STEP with integers") from None
        if not 1 <= n <= N_DIGITS:
            raise ValueError(f"{part!r}: digits must be in [1, {N_DIGITS}]")
        if end is not None and (end < 1 or (stages and end <= stages[-1][1])):
            raise ValueError(f"{part!r}: stage ends must be increasing steps >= 1")
        stages.append((n, end))
    return stages


@dataclass(frozen=True)
class DigitsConfig(StoredConfig):
    """Everything that defines a digits run: data, model shape, optimiser, schedule, storage."""

    KEYS_NAME: ClassVar[str] = "digits-config"  # "unknown digits-config keys [...]" when read back

    # --- data ---------------------------------------------------------------------------
    curriculum: str = field(
        default="3:2000,6:7000,10",
        metadata={"help": "most operand digits per stage and the step it ends at, e.g. 3:2000,6:7000,10"},
    )
    seed: int = field(default=0, metadata={"help": "seed of the weight initialisation"})
    data_seed: int | None = field(
        default=None, metadata={"help": "seed of the training batches and validation set (default: --seed)"}
    )
    val_size: int = field(default=2000, metadata={"help": "validation pairs (10-digit range), scored at every log row"})
    # --- model (TransformerLens names) -------------------------------------------------------
    n_layers: int = field(default=1, metadata={"help": "transformer blocks"})
    d_model: int = field(default=7, metadata={"help": "residual stream width"})
    n_heads: int = field(default=1, metadata={"help": "attention heads (each of width d_model / n_heads)"})
    d_mlp: int = field(default=14, metadata={"help": "FFN width"})
    normalization: str = field(default="LN", metadata={"help": f"one of {NORMALIZATIONS} (RMS: no bias)"})
    unembed: str = field(
        default="tied", metadata={"help": f"one of {UNEMBEDS}: tied reuses W_E as the output (W_U = W_E^T)"}
    )
    mlp_bias: str = field(default="no", metadata={"help": "yes/no: biases in the FFN"})
    # --- optimiser ---------------------------------------------------------------------------
    lr: float = field(default=0.02, metadata={"help": "peak AdamW learning rate"})
    min_lr_ratio: float = field(default=0.1, metadata={"help": "final learning rate as a fraction of the peak"})
    warmup_frac: float = field(default=0.05, metadata={"help": "fraction of steps of linear warm-up from 0"})
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW decoupled weight decay (all parameters)"})
    beta1: float = field(default=0.9, metadata={"help": "AdamW beta1"})
    beta2: float = field(default=0.999, metadata={"help": "AdamW beta2"})
    grad_clip: float = field(default=1.0, metadata={"help": "clip gradients at this global norm (0: no clipping)"})
    batch_size: int = field(default=512, metadata={"help": "examples per step, drawn fresh every step"})
    steps: int = field(default=27_000, metadata={"help": "optimiser steps"})
    # --- logging and checkpoints -------------------------------------------------------------
    log_every: int = field(default=100, metadata={"help": "steps between log rows (validation scored then)"})
    save_every: int = field(default=1000, metadata={"help": "steps between regular checkpoints"})
    save_log_points: int = field(default=16, metadata={"help": "extra log-spaced checkpoints (dense early)"})
    save_dtype: str = field(default="float32", metadata={"help": f"stored weights' dtype, one of {SAVE_DTYPES}"})

    family = "digits"  # a class attribute, not a field: the task family (grokviz.core.families)

    def __post_init__(self) -> None:
        problems = self.problems()
        if problems:
            raise ConfigError(problems, {name: getattr(self, name) for name, _ in problems})

    def problems(self) -> list[tuple[str, str]]:
        """Every (field, what is wrong and what is allowed); empty when valid (types, then ranges)."""
        problems: list[tuple[str, str]] = []
        bad = set()
        for f in fields(self):
            value, kind = getattr(self, f.name), str(f.type)
            if not has_kind(value, kind):
                problems.append((f.name, f"must be {KIND_WORDS[kind]}"))
                bad.add(f.name)
        ok = lambda *names: not bad.intersection(names)  # noqa: E731
        if ok("curriculum"):
            try:
                stages = parse_curriculum(self.curriculum)
                if ok("steps") and len(stages) > 1 and stages[-2][1] >= self.steps:
                    problems.append(("curriculum", f"ends its stages at step {stages[-2][1]}, not before --steps"))
            except ValueError as exc:
                problems.append(("curriculum", str(exc)))
        for name in ("seed", "data_seed"):
            value = getattr(self, name)
            if ok(name) and value is not None and not 0 <= value < SEED_LIMIT:
                problems.append((name, "must be in [0, 2^63) (a torch generator seed)"))
        for name in ("val_size", "n_layers", "d_model", "n_heads", "d_mlp", "batch_size", "steps"):
            if ok(name) and getattr(self, name) < 1:
                problems.append((name, "must be at least 1"))
        for name in ("log_every", "save_every"):
            if ok(name) and getattr(self, name) < 1:
                problems.append((name, "must be at least 1"))
        if ok("save_log_points") and self.save_log_points < 0:
            problems.append(("save_log_points", "must be at least 0"))
        if ok("d_model", "n_heads") and self.d_model >= 1 and self.n_heads >= 1 and self.d_model % self.n_heads:
            problems.append(("n_heads", f"must divide d_model={self.d_model}"))
        if ok("val_size") and self.val_size > 100_000:
            problems.append(("val_size", "must be at most 100,000 (it is scored at every log row)"))
        if ok("batch_size") and self.batch_size > 65_536:
            problems.append(("batch_size", "must be at most 65,536"))
        if ok("d_model") and self.d_model > 1024:
            problems.append(("d_model", "must be at most 1024"))
        if ok("d_mlp") and self.d_mlp > 8192:
            problems.append(("d_mlp", "must be at most 8192"))
        if ok("n_layers") and self.n_layers > 12:
            problems.append(("n_layers", "must be at most 12"))
        if ok("normalization") and self.normalization not in NORMALIZATIONS:
            problems.append(("normalization", f"must be one of {NORMALIZATIONS}"))
        if ok("unembed") and self.unembed not in UNEMBEDS:
            problems.append(("unembed", f"must be one of {UNEMBEDS}"))
        if ok("mlp_bias") and self.mlp_bias not in ("yes", "no"):
            problems.append(("mlp_bias", "must be yes or no"))
        if ok("lr") and not self.lr > 0:
            problems.append(("lr", "must be positive"))
        for name in ("min_lr_ratio", "warmup_frac"):
            if ok(name) and not 0.0 <= getattr(self, name) <= 1.0:
                problems.append((name, "must be in [0, 1]"))
        for name in ("weight_decay", "grad_clip"):
            if ok(name) and not getattr(self, name) >= 0:
                problems.append((name, "must be at least 0"))
        for name in ("beta1", "beta2"):
            if ok(name) and not 0.0 <= getattr(self, name) < 1.0:
                problems.append((name, "must be in [0, 1)"))
        if ok("save_dtype") and self.save_dtype not in SAVE_DTYPES:
            problems.append(("save_dtype", f"must be one of {SAVE_DTYPES}"))
        return problems

    # Derived sizes (TransformerLens names).
    @property
    def d_head(self) -> int:
        return self.d_model // self.n_heads

    @property
    def d_vocab(self) -> int:
        return D_VOCAB

    @property
    def n_ctx(self) -> int:
        return N_CTX

    @property
    def tied(self) -> bool:
        return self.unembed == "tied"

    @property
    def split_seed(self) -> int:
        return self.seed if self.data_seed is None else self.data_seed

    @property
    def warmup_steps(self) -> int:
        return int(self.steps * self.warmup_frac)  # as gpt-acc-jax: int(total * ratio)

    def stages(self) -> list[tuple[int, int | None]]:
        return parse_curriculum(self.curriculum)

    def max_digits_at(self, step: int) -> int:
        """The curriculum's most operand digits for the batch of update ``step`` (0-based)."""
        for digits, end in self.stages():
            if end is None or step < end:
                return digits
        raise AssertionError("the last stage has no end")
