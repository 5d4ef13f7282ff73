"""The resume state, ``resume.safetensors``: fp32 weights and AdamW moments (and any other named
state, such as the Grokfast filter's) of the latest resumable step, for a bit-exact ``--resume``."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import save_file

from grokviz.core.params import Params
from grokviz.storage.files import atomic_write, parse_step, read_safetensors

RESUME_FILE = "resume.safetensors"


def save_resume_state(
    run_dir: Path,
    step: int,
    params: Params,
    exp_avg: Params,
    exp_avg_sq: Params,
    extra: dict[str, Params] | None = None,
) -> None:
    """fp32 weights and AdamW moments, enough for a bit-exact continuation (one file, latest only).

    ``extra``: more named groups of state (the Grokfast filter's, as ``grokfast/<name>``)."""
    tensors = {}
    groups = {"param": params, "exp_avg": exp_avg, "exp_avg_sq": exp_avg_sq, **(extra or {})}
    for prefix, group in groups.items():
        tensors.update({f"{prefix}/{k}": v.detach().to("cpu", torch.float32).contiguous() for k, v in group.items()})
    atomic_write(Path(run_dir) / RESUME_FILE, lambda tmp: save_file(tensors, tmp, metadata={"step": str(step)}))


def load_resume_state(run_dir: Path) -> tuple[int, Params, Params, Params, dict[str, Params]]:
    """(step, params, exp_avg, exp_avg_sq, extra groups) as :func:`save_resume_state` wrote them."""
    path = Path(run_dir) / RESUME_FILE
    tensors, metadata = read_safetensors(path)
    groups: dict[str, Params] = {"param": {}, "exp_avg": {}, "exp_avg_sq": {}}
    for key, value in tensors.items():
        prefix, _, name = key.partition("/")
        groups.setdefault(prefix, {})[name] = value
    params, exp_avg, exp_avg_sq = groups.pop("param"), groups.pop("exp_avg"), groups.pop("exp_avg_sq")
    return parse_step(metadata, path), params, exp_avg, exp_avg_sq, groups
