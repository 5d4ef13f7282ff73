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

from dataclasses import dataclass, field
from typing import ClassVar

from grokviz.core.digits_tasks import D_VOCAB, N_CTX, N_DIGITS
from grokviz.core.stored import SAVE_DTYPES, ConfigError, Problems, StoredConfig

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
        check = Problems(self)
        ok = check.ok
        if ok("curriculum"):
            try:
                stages = parse_curriculum(self.curriculum)
                if ok("steps") and len(stages) > 1 and stages[-2][1] >= self.steps:
                    check.add("curriculum", f"ends its stages at step {stages[-2][1]}, not before --steps")
            except ValueError as exc:
                check.add("curriculum", str(exc))
        check.seeds("seed", "data_seed")
        check.at_least(1, "val_size", "n_layers", "d_model", "n_heads", "d_mlp", "batch_size", "steps")
        check.at_least(1, "log_every", "save_every")
        check.at_least(0, "save_log_points")
        if ok("d_model", "n_heads") and self.d_model >= 1 and self.n_heads >= 1 and self.d_model % self.n_heads:
            check.add("n_heads", f"must divide d_model={self.d_model}")
        check.at_most(100_000, "val_size", "must be at most 100,000 (it is scored at every log row)")
        check.at_most(65_536, "batch_size", "must be at most 65,536")
        check.at_most(1024, "d_model")
        check.at_most(8192, "d_mlp")
        check.at_most(12, "n_layers")
        check.one_of("normalization", NORMALIZATIONS)
        check.one_of("unembed", UNEMBEDS)
        check.one_of("mlp_bias", ("yes", "no"), "must be yes or no")
        check.positive("lr")
        check.unit("min_lr_ratio", "warmup_frac")
        check.at_least(0, "weight_decay", "grad_clip")
        check.below_one("beta1", "beta2")
        check.one_of("save_dtype", SAVE_DTYPES)
        return check.list

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
