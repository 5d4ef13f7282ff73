"""Shared fixtures: the bundled run, the paper's reference checkpoints, tiny configs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from grokviz.core.config import Config
from grokviz.storage.runs import Run

REPO = Path(__file__).resolve().parents[1]
BUNDLED_RUN = REPO / "checkpoints" / "add-p113"
# The paper's reference checkpoints live beside the checkout and are never copied into it.
FIXTURES = REPO.parent / "shared" / "fixtures"

# One thread: deterministic and, on the 2-core CI machine, fastest for these small ops.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def bundled_run_path() -> Path:
    if not (BUNDLED_RUN / "run.json").is_file():
        pytest.skip(f"bundled run missing at {BUNDLED_RUN}")
    return BUNDLED_RUN


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    if not FIXTURES.is_dir():
        pytest.skip(f"reference checkpoints not found at {FIXTURES} (shared/ sits beside the checkout)")
    return FIXTURES


@pytest.fixture(scope="session")
def tiny_config() -> Config:
    """Small enough to train a few hundred steps in about a second on one CPU core (frozen: share it)."""
    return Config(
        p=23,
        d_model=64,
        d_mlp=128,
        n_heads=4,
        d_head=16,
        frac_train=0.5,
        steps=300,
        log_every=10,
        save_every=100,
        save_log_points=6,
    )


# Groks and cleans up in 2,000 full-batch steps (train and test accuracy 100%, test loss ~5e-7; every
# key frequency's wave within 4% of its crest at the answer), ~8 s on one core.
GROKKED = Config(
    p=29,
    d_model=64,
    d_mlp=128,
    n_heads=4,
    d_head=16,
    frac_train=0.6,
    lr=3e-3,
    steps=2000,
    log_every=50,
    save_every=500,
    save_log_points=6,
)


@pytest.fixture(scope="session")
def grokked_run(tmp_path_factory) -> Run:
    """A small model that really groks, trained once per test session."""
    from grokviz.training.single import train

    # One thread: the weights (and the margins the tests assert) must not depend on the core count
    # or on which test set torch's process-wide thread count before.
    return train(GROKKED, tmp_path_factory.mktemp("grokked") / "grokked-p29", progress=False, threads=1)
