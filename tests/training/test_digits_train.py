"""The digits trainer: a tiny CPU run learns 2-digit addition; the run folder says its family;
--resume is exact; clipping and the schedule are optax's; the command line refuses bad input."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from grokviz.core import digits_model, digits_tasks
from grokviz.core.digits_config import DigitsConfig
from grokviz.core.families import DIGITS_LOG_COLUMNS
from grokviz.storage.files import read_safetensors
from grokviz.storage.runs import open_run
from grokviz.training.digits import clip_by_global_norm, evaluate, train_digits
from grokviz.training.optim import Hyper, adder_learning_rate

# Learns 2-digit addition (100% on 1,000 held-out pairs) in 1,000 steps, ~15 s on a busy 2-core CPU;
# at 500 steps the carry into the tens digit is still ~75% right.
TINY = DigitsConfig(
    curriculum="2",
    d_model=32,
    n_heads=4,
    d_mlp=64,
    lr=0.01,
    warmup_frac=0.02,
    batch_size=256,
    steps=1000,
    val_size=64,
    log_every=100,
    save_every=500,
    save_log_points=4,
)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("digits") / "run"
    return train_digits(TINY, out, threads=1, progress=False)


def test_a_tiny_run_learns_two_digit_addition(tiny_run) -> None:
    generator = torch.Generator().manual_seed(123)
    a, b = digits_tasks.sample_operands(1000, 2, generator, min_digits=2)
    pairs = digits_tasks.PairSet("two-digit", a, b)
    before = evaluate(tiny_run.load(0), pairs)
    after = evaluate(tiny_run.load(TINY.steps), pairs)
    assert before[1] == 0.0
    assert after[1] > 0.95, after
    # Greedy decoding agrees with the teacher-forced exact match.
    prompt = pairs.tokens[:, : digits_tasks.PROMPT_LEN]
    answer, _ = digits_model.greedy_decode(tiny_run.load(TINY.steps), prompt)
    value, well_formed = digits_tasks.decode_answer(answer)
    greedy = float(((value == a + b) & well_formed).double().mean())
    assert greedy == pytest.approx(after[1])


def test_the_run_folder_says_it_is_a_digits_run(tiny_run) -> None:
    body = json.loads((tiny_run.path / "run.json").read_text())
    assert body["family"] == "digits" and body["config"]["curriculum"] == "2"
    run = open_run(tiny_run.path)
    assert isinstance(run.config, DigitsConfig) and run.config == TINY
    log = run.log()
    assert list(log.columns) == list(DIGITS_LOG_COLUMNS)
    assert log["step"].tolist()[:3] == [0, 1, 10] and log["step"].iloc[-1] == TINY.steps
    assert {0, 500, 1000} <= set(run.steps())
    _, metadata = read_safetensors(run.checkpoint_path(500))
    assert metadata["family"] == "digits"
    assert log["val_exact"].between(0, 1).all() and (log["train_loss"].iloc[-1] < log["train_loss"].iloc[0])


def test_resume_is_exact(tmp_path: Path) -> None:
    cfg = TINY.replace(steps=60, log_every=10, save_every=20, batch_size=32)
    straight = train_digits(cfg, tmp_path / "straight", threads=1, progress=False)
    train_digits(cfg, tmp_path / "split", threads=1, progress=False, stop_after_steps=25)
    assert not (tmp_path / "split" / "step_000060.safetensors").exists()
    resumed = train_digits(cfg, tmp_path / "split", resume=True, threads=1, progress=False)
    for name, tensor in straight.load(60).items():
        assert torch.equal(tensor, resumed.load(60)[name]), name
    columns = [c for c in DIGITS_LOG_COLUMNS if c != "elapsed_s"]
    assert straight.log()[columns].equals(resumed.log()[columns])


def test_clipping_is_optax_clip_by_global_norm() -> None:
    grads = [torch.tensor([3.0, 4.0]), torch.tensor([12.0])]  # global norm 13
    clip_by_global_norm(grads, 1.0)
    assert math.sqrt(sum(float((g**2).sum()) for g in grads)) == pytest.approx(1.0)
    assert grads[0].tolist() == pytest.approx([3 / 13, 4 / 13])
    small = [torch.tensor([0.3, 0.4])]
    clip_by_global_norm(small, 1.0)
    assert small[0].tolist() == pytest.approx([0.3, 0.4])


def test_the_update_is_torch_adamw_with_the_cosine_schedule() -> None:
    """Three steps of our update against torch.optim.AdamW with the same lr per step."""
    cfg = DigitsConfig(steps=40, curriculum="3:10,10", warmup_frac=0.25, weight_decay=0.5)
    hyper = Hyper.of(cfg, torch.device("cpu"))
    ours = {k: v.clone().requires_grad_(True) for k, v in digits_model.init_params(cfg).items()}
    theirs = {k: v.detach().clone().requires_grad_(True) for k, v in ours.items()}
    from grokviz.training.digits import training_batch, update
    from grokviz.training.optim import AdamWState

    state = AdamWState.zeros_like(ours)
    opt = torch.optim.AdamW(list(theirs.values()), lr=0.0, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.5)
    for step in range(12):
        x, labels = training_batch(cfg, step)
        update(ours, state, hyper, cfg, x, labels)
        logits = digits_model.forward(theirs, x, answer_only=True)
        loss = torch.nn.functional.cross_entropy(logits.double().reshape(-1, 14), labels.reshape(-1))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(theirs.values()), 1.0)
        for group in opt.param_groups:
            group["lr"] = adder_learning_rate(cfg, step)
        opt.step()
    for name in ours:
        torch.testing.assert_close(ours[name], theirs[name], rtol=1e-4, atol=1e-6)
