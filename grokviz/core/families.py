"""The task families grokviz knows, one record each: the only place that lists them.

A family is a kind of task with its own config class, model, trainer, log columns, summary,
exporters and app page: modular arithmetic (``"modular"``, the paper's 1-layer transformer), the
10-digit adder (``"digits"``, gpt-acc-jax's 777-parameter recipe) and composition in a finite
group (``"groups"``, the modular model on a group's table). Every module that must
treat runs of different families differently (the run folder, ``--resume``, ``analyze``,
``convert export-tl``, the app's pages) looks the family up here instead of branching on it, and
the check that a run is of the family a reader needs, with its message, is :func:`require_family`.

What lives downstream of ``core`` (a summary in ``analysis``, an exporter in ``interop``) is named
by its dotted path and imported only when used (:meth:`Family.load`): the table imports no model
and no torch beyond the config classes, and the layers keep pointing one way.

Adding a family: docs/development.md, "Adding a task family".
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from grokviz.core.config import Config
from grokviz.core.digits_config import DigitsConfig
from grokviz.core.groups_config import GroupsConfig
from grokviz.core.stored import StoredConfig
from grokviz.errors import GrokvizError

# The family of a run whose run.json and checkpoints name none (every run before families existed).
DEFAULT_FAMILY = "modular"


@dataclass(frozen=True)
class Family:
    """One task family. ``*_path`` fields are ``"module:attribute"``, imported by :meth:`load`."""

    name: str  # the code name: run.json's "family", the config class's ``family``
    config_class: type[StoredConfig]
    label: str  # what a run of it is, in words: "a modular-arithmetic run"
    opens_in: str  # where the app shows it, as a phrase: "in the run explorer"
    page: str  # the app page that opens it (a key of grokviz.ui.navigation.PAGES)
    train_command: str  # the command that trains it
    trainer_path: str  # its trainer, (config, out, **RunOptions) -> Run: what the command and grokviz.train call
    log_columns: tuple[str, ...]  # log.csv's header, in order
    param_shapes_path: str  # (config) -> {tensor name: shape}, in a checkpoint's canonical order
    summary_path: str  # module with summarise_checkpoint(SummaryRequest) and human(path, dict): what `analyze` prints
    analyze_flags: tuple[str, ...] = ()  # analyze's options beyond the shared ones that apply to it
    exporters: dict[str, str] = field(default_factory=dict)  # format -> "module:function"

    def load(self, path: str) -> Any:
        """The object a ``"module:attribute"`` (or ``"module"``) path names, imported now."""
        module, _, attribute = path.partition(":")
        loaded = importlib.import_module(module)
        return getattr(loaded, attribute) if attribute else loaded

    @property
    def param_shapes(self) -> Callable[[Any], dict[str, tuple[int, ...]]]:
        return self.load(self.param_shapes_path)

    def exporter(self, fmt: str, source: str) -> Callable:
        """The function that exports a checkpoint of this family to ``fmt``, or a refusal in words."""
        if fmt not in self.exporters:
            raise GrokvizError(f"{source}: is {self.label}; grokviz cannot export it to {fmt}")
        return self.load(self.exporters[fmt])


@dataclass(frozen=True)
class SummaryRequest:
    """What ``grokviz analyze`` asks a family's summary (``summarise_checkpoint(request) -> dict``):
    one checkpoint, and the options. ``log`` is read only by a summary that reports the log;
    ``key_freqs`` (``"1,2,3"``) and ``threshold`` are the modular family's, and ``analyze`` refuses
    them for a family whose ``analyze_flags`` do not name them. ``source`` names the checkpoint in
    messages."""

    config: StoredConfig
    step: int
    params: Any  # {tensor name: tensor}, as the family's param_shapes lists them
    log: Callable[[], Any] | None = None  # () -> the run's log as a DataFrame
    key_freqs: str | None = None
    threshold: float = 0.85
    source: str = "this run"


MODULAR_LOG_COLUMNS = ("step", "train_loss", "train_accuracy", "test_loss", "test_accuracy", "elapsed_s")
# The adder's log: the curriculum's digits and the lr of the step, the training batch's loss and
# exact match, and the validation set's loss, exact match and accuracy at each of the 12 answer positions.
DIGITS_LOG_COLUMNS = (
    "step",
    "max_digits",
    "lr",
    "train_loss",
    "train_exact",
    "val_loss",
    "val_exact",
    *(f"val_acc_{k}" for k in range(12)),
    "elapsed_s",
)

FAMILIES: dict[str, Family] = {
    family.name: family
    for family in (
        Family(
            name=Config.family,
            config_class=Config,
            label="a modular-arithmetic run",
            opens_in="in the run explorer",
            page="explore",
            train_command="grokviz train",
            trainer_path="grokviz.training.single:train",
            log_columns=MODULAR_LOG_COLUMNS,
            param_shapes_path="grokviz.core.params:param_shapes",
            summary_path="grokviz.analysis.summary",
            analyze_flags=("--timeline", "--key-freqs"),
            exporters={"transformer-lens": "grokviz.interop.transformer_lens:to_transformer_lens"},
        ),
        Family(
            name=DigitsConfig.family,
            config_class=DigitsConfig,
            label="a 10-digit adder run",
            opens_in="on the Adder page",
            page="digits",
            train_command="grokviz train-digits",
            trainer_path="grokviz.training.digits:train_digits",
            log_columns=DIGITS_LOG_COLUMNS,
            param_shapes_path="grokviz.core.digits_model:param_shapes",
            summary_path="grokviz.analysis.digits_summary",
            exporters={"transformer-lens": "grokviz.interop.digits_tl:to_transformer_lens"},
        ),
        # Composition in a finite group: the modular family's model and trainers (GroupsConfig is
        # a Config), analysed by irreducible representations instead of frequencies.
        Family(
            name=GroupsConfig.family,
            config_class=GroupsConfig,
            label="a finite-group run",
            opens_in="on the Groups page",
            page="groups",
            train_command="grokviz train-group",
            trainer_path="grokviz.training.single:train",
            log_columns=MODULAR_LOG_COLUMNS,
            param_shapes_path="grokviz.core.params:param_shapes",
            summary_path="grokviz.analysis.groups_summary",
            # The modular model, so the modular exporter (its d_vocab is |G| + 1).
            exporters={"transformer-lens": "grokviz.interop.transformer_lens:to_transformer_lens"},
        ),
    )
}


def get_family(name: str, source: str = "grokviz") -> Family:
    """The family called ``name``; an unknown one is refused naming the file it came from."""
    if name not in FAMILIES:
        raise GrokvizError(f"{source}: unknown model family {name!r}; grokviz knows {sorted(FAMILIES)}")
    return FAMILIES[name]


def family_of(cfg: StoredConfig) -> Family:
    """The family of a config (each config class says its own ``family``)."""
    return FAMILIES[cfg.family]


def wrong_family_message(found: str, needed: str, source: str, what: str, where: bool = True) -> str:
    """``"{source}: is a 10-digit adder run (open it on the Adder page); {what} needs a modular-arithmetic run"``.

    ``where=False`` leaves out where the run opens (a page that shows a link to it instead)."""
    run, wanted = FAMILIES[found], FAMILIES[needed]
    opens = f" (open it {run.opens_in})" if where else ""
    return f"{source}: is {run.label}{opens}; {what} needs {wanted.label}"


def require_family(cfg: StoredConfig, needed: str, source: str, what: str = "this view") -> None:
    """Refuse a run of another family than ``needed``, in words naming what it is and where it opens."""
    if cfg.family != needed:
        raise GrokvizError(wrong_family_message(cfg.family, needed, source, what))
