"""The New run page's form, shaped from the config dataclasses (no Streamlit): which fields, in which
group, with which widget and choices; the presets; the form's text back into a config through the
trainers' own parsing and validation; and the estimate of how long a run takes on this machine.

One validation path: a field's text is read by the type its ``grokviz train`` flag is read with
(``commands.flags.FLAG_TYPES``), then the config class is built, and it refuses what is wrong with
``ConfigError`` (``Config.problems``), so the page says exactly what ``grokviz train`` would.
Widgets are labelled with the flags (``--frac-train``), so those messages name what is on screen.
"""

from __future__ import annotations

import argparse
from dataclasses import MISSING, dataclass, fields

from grokviz.commands.flags import FLAG_TYPES, config_flag
from grokviz.core.config import _CHOICES as ARCHITECTURE_CHOICES  # the architecture fields', as Config checks them
from grokviz.core.config import GROKFASTS, LR_SCHEDULES, MATMULS, Config
from grokviz.core.digits_config import NORMALIZATIONS
from grokviz.core.digits_config import UNEMBEDS as DIGITS_UNEMBEDS
from grokviz.core.families import FAMILIES
from grokviz.core.recipes import RECIPES
from grokviz.core.stored import SAVE_DTYPES, ConfigError, StoredConfig
from grokviz.core.tasks import SPLITS, TASKS

# The form's groups, in order, and the fields of every family that go in each. A field no group
# names lands in "Other", so a field added to a config is on the form the day it exists.
GROUPS: dict[str, tuple[str, ...]] = {
    "Task": ("task", "group", "p", "frac_train", "seed", "data_seed", "split", "val_size", "curriculum"),
    "Model": ("n_layers", "d_model", "n_heads", "d_head", "d_mlp"),
    "Architecture": (
        "layernorm",
        "normalization",
        "biases",
        "mlp_bias",
        "pos_embed",
        "attention",
        "dropout",
        "unembed",
        "activation",
    ),
    "Optimiser": ("lr", "weight_decay", "beta1", "beta2", "grad_clip", "batch_size", "matmul"),
    "Grokfast": ("grokfast", "grokfast_alpha", "grokfast_lamb", "grokfast_window", "grokfast_divide_lr"),
    "Schedule": ("steps", "warmup_steps", "warmup_frac", "lr_schedule", "min_lr_ratio"),
    "Saving": ("log_every", "save_every", "save_log_points", "save_dtype"),
}
OTHER = "Other"

# The values a text field takes, per family (a selectbox offers them; the config still checks).
_SHARED_CHOICES = {"save_dtype": SAVE_DTYPES}
CHOICES: dict[str, dict[str, tuple]] = {
    "modular": {
        "task": tuple(sorted(TASKS)),
        "split": SPLITS,
        **ARCHITECTURE_CHOICES,
        "matmul": MATMULS,
        "lr_schedule": LR_SCHEDULES,
        "grokfast": GROKFASTS,
        **_SHARED_CHOICES,
    },
    "digits": {
        "normalization": NORMALIZATIONS,
        "unembed": DIGITS_UNEMBEDS,
        "mlp_bias": ("yes", "no"),
        **_SHARED_CHOICES,
    },
}
CHOICES["groups"] = {**CHOICES["modular"], "task": ("compose",)}


@dataclass(frozen=True)
class FormField:
    """One widget of the form: the config field, its flag (the label), kind, default and help."""

    name: str
    flag: str
    kind: str  # "int", "float", "str", "bool", "int | None", "float | None"
    default: object
    help: str
    choices: tuple | None  # a selectbox's options (None: a text box)

    @property
    def optional(self) -> bool:
        return self.kind.endswith("| None")


@dataclass(frozen=True)
class Preset:
    """A starting point of the form: a family's defaults with some fields changed, and a run name."""

    family: str
    values: dict
    name: str  # the run name offered
    about: str


PRESETS: dict[str, Preset] = {
    "the paper's recipe (p = 113)": Preset(
        "modular", {}, "add-p113-mine", "Nanda et al.'s recipe: a + b mod 113, 30% of pairs, 25,000 steps."
    ),
    "quick (p = 53, about a minute)": Preset(
        "modular",
        {"p": 53, "frac_train": 0.5, "steps": 2500},
        "quick-p53",
        "a + b mod 53 with half the pairs: test accuracy passes 95% near step 1,600 (about 45 s on a 2-core CPU).",
    ),
    "multiplication mod 97": Preset(
        "modular",
        {"task": "mul", "p": 97, "steps": 20000, "save_dtype": "float16"},
        "mul-p97-mine",
        "a · b mod 97, 30% of pairs: the bundled mul-p97 run's recipe.",
    ),
    "PyTorch encoder (post-LayerNorm)": Preset(
        "modular",
        {
            "p": 97,
            "frac_train": 0.5,
            "layernorm": "post",
            "biases": "all",
            "pos_embed": "none",
            "attention": "bidirectional",
            "dropout": 0.1,
            "steps": 6000,
        },
        "torch-encoder-mine",
        "PyTorch's nn.TransformerEncoder as blog posts train it: the bundled torch-encoder-p97 run's recipe.",
    ),
    "Power et al.'s setup (2 layers, minibatches)": Preset(
        "modular",
        {
            **RECIPES["power2022"].values,
            "task": "div",
            "frac_train": 0.5,
            "batch_size": 512,
            "steps": 4000,
            "save_dtype": "float16",
        },
        "div-p97-2l-mine",
        "x ÷ y mod 97, half the pairs, 2 layers, minibatches of 512 (grokviz train --recipe power2022): "
        "the bundled div-p97-2l run's recipe, shortened to 4,000 steps.",
    ),
    "777-parameter adder": Preset(
        "digits", {}, "adder-777-mine", "gpt-acc-jax's adder: 10-digit addition with 777 parameters, 27,000 steps."
    ),
    "S5 composition (groups)": Preset(
        "groups",
        {"steps": 15000, "log_every": 50, "save_every": 5000, "save_log_points": 6},
        "s5-mine",
        "Composition in the symmetric group S5 (Chughtai et al.'s split, 60% of pairs): the bundled s5 run's recipe.",
    ),
}


def config_class(family: str) -> type[StoredConfig]:
    return FAMILIES[family].config_class


def form_fields(family: str) -> dict[str, list[FormField]]:
    """The family's config fields as form widgets, by group (empty groups left out)."""
    choices = CHOICES.get(family, _SHARED_CHOICES)
    grouped: dict[str, list[FormField]] = {title: [] for title in [*GROUPS, OTHER]}
    for f in fields(config_class(family)):
        default = f.default if f.default is not MISSING else None
        kind = str(f.type)
        field_ = FormField(f.name, config_flag(f.name), kind, default, f.metadata.get("help", ""), choices.get(f.name))
        title = next((t for t, names in GROUPS.items() if f.name in names), OTHER)
        grouped[title].append(field_)
    for title, names in GROUPS.items():
        grouped[title].sort(key=lambda field_: names.index(field_.name))
    return {title: group for title, group in grouped.items() if group}


def initial_values(preset: Preset) -> dict[str, object]:
    """The widgets' values for a preset: every field as the form shows it (numbers as text)."""
    values = {}
    for group in form_fields(preset.family).values():
        for field_ in group:
            value = preset.values.get(field_.name, field_.default)
            values[field_.name] = value if field_.kind == "bool" or field_.choices else as_text(value)
    return values


def as_text(value) -> str:
    """A value as its flag's text ("" for unset); floats as Python writes them (1e-3 -> '0.001')."""
    return "" if value is None else str(value)


def build_config(family: str, values: dict[str, object]) -> tuple[StoredConfig | None, list[str]]:
    """The config the form describes, or the problems, in the trainer's words (by flag).

    Text is read with the flag's own type (an integer, a number); then the config class checks
    everything else. An empty box of an optional field is "unset", as leaving the flag out."""
    problems: list[str] = []
    given = {}
    for group in form_fields(family).values():
        for field_ in group:
            value = values.get(field_.name, field_.default)
            if field_.kind == "bool" or field_.choices or field_.kind == "str":
                given[field_.name] = value
                continue
            text = str(value).strip()
            if not text and field_.optional:
                given[field_.name] = None
                continue
            try:
                given[field_.name] = FLAG_TYPES[field_.kind](text)
            except argparse.ArgumentTypeError as exc:
                problems.append(f"{field_.flag}: {exc}")
    if problems:
        return None, problems
    try:
        return config_class(family)(**given), []
    except ConfigError as exc:
        return None, [exc.as_flags()]


# --- how long: seconds per step on this machine --------------------------------------------------

# A modular step's cost grows with the activations it computes (what ``training.memory`` counts per
# pair, over the train and test pairs): seconds = FIXED + PER_MIB * MiB. Measured on this 2-core
# x86-64 CPU with one thread, other work beside it (400 steps each): p = 23 (half the pairs), p = 53
# (half), p = 113 (the paper's recipe), and the PyTorch encoder at p = 97 (the general path).
STEP_FIXED_S = 0.006
STEP_PER_MIB_S = 0.00063
# The adder: the bundled adder-777 run took 1,092 s for 27,000 steps of 512 examples.
DIGITS_STEP_S_PER_EXAMPLE = 1092.0 / 27_000 / 512
STARTUP_S = 5.0  # starting Python and importing torch


def seconds_estimate(cfg: StoredConfig) -> float:
    """About how many seconds ``cfg`` trains for on this machine, start-up included."""
    if isinstance(cfg, Config):
        from grokviz.training import memory

        mib = memory.estimate(cfg).activations / 2**20
        per_step = STEP_FIXED_S + STEP_PER_MIB_S * mib
    else:
        per_step = DIGITS_STEP_S_PER_EXAMPLE * cfg.batch_size
    return STARTUP_S + per_step * cfg.steps


def duration_text(seconds: float) -> str:
    """'about 45 s', 'about 3 min', 'about 2.5 h'."""
    if seconds < 90:
        return f"about {max(5, round(seconds / 5) * 5):.0f} s"
    if seconds < 90 * 60:
        return f"about {seconds / 60:.0f} min"
    return f"about {seconds / 3600:.1f} h"


def memory_text(cfg: StoredConfig) -> str:
    """The memory estimate the trainer checks before it allocates anything (modular and groups runs)."""
    if not isinstance(cfg, Config):
        return "a few MB (the adder's model and batches are tiny)"
    from grokviz.training import memory

    return memory.estimate(cfg).describe()


def memory_check(cfg: StoredConfig) -> str | None:
    """The trainer's own memory check, here and now: its refusal (GrokvizError) for a run that
    cannot fit on the device it would pick, its note for a large one, else None."""
    if not isinstance(cfg, Config):
        return None
    from grokviz.training import memory
    from grokviz.training.device import pick_device

    return memory.check_fits(memory.estimate(cfg), pick_device("auto"))
