"""The run's config in words: the settings table of the explorer's sidebar, and the note shown above
the Fourier analyses of a task other than addition and subtraction. Pure; no Streamlit."""

from __future__ import annotations

import pandas as pd

from grokviz.analysis.group import group_for
from grokviz.core.config import Config
from grokviz.core.tasks import FOURIER_TASKS, TASKS


def config_table(cfg: Config) -> pd.DataFrame:
    """The config as a two-column table (setting, value), task formula included."""
    rows = [("task", f"{cfg.task}: {TASKS[cfg.task].formula}")]
    rows += [
        (name, "default" if value is None else str(value)) for name, value in cfg.to_dict().items() if name != "task"
    ]
    return pd.DataFrame(rows, columns=["setting", "value"])


def fourier_note(cfg: Config) -> str | None:
    """None for add and sub; for mul and div what the discrete-log basis is and leaves out; for the
    other tasks a sentence saying the Fourier analyses need not mean anything there."""
    group = group_for(cfg.task, cfg.p)
    if group.discrete_log:
        return (
            f"This run's task is {cfg.task} ({TASKS[cfg.task].formula}). Every Fourier analysis here is in the "
            f"discrete-log basis: tokens 1..{cfg.p - 1} are re-indexed by their log to g = {group.generator} "
            f"(the smallest primitive root of {cfg.p}), so x = {group.generator}^log x, and frequencies are over "
            f"Z_{cfg.p - 1} ({cfg.task} is {'addition' if group.sign > 0 else 'subtraction'} of logs). "
            "The token 0, and every pair that contains it, are left out of these analyses."
        )
    if cfg.task in FOURIER_TASKS:
        return None
    return (
        f"This run's task is {cfg.task} ({TASKS[cfg.task].formula}). The key-frequency analyses "
        "(Fourier spectra, neuron frequencies, frequency ablations, restricted/excluded loss) "
        "describe the circuit for addition and subtraction; for this task they are computed the "
        "same way but need not mean anything."
    )
