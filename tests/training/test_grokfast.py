"""Grokfast filters: the trainers' filters equal a straightforward implementation of the formulas
(ironjr/grokfast's gradfilter_ema and gradfilter_ma) over a few steps, for a single run and for an
ensemble member; --resume continues the filter state bit for bit; the lr-dividing control."""

from __future__ import annotations

from collections import deque

import pytest
import torch

from grokviz.core.config import Config, dataset_for
from grokviz.core.fast_path import forward_last
from grokviz.core.params import init_params
from grokviz.errors import GrokvizError
from grokviz.storage.resume import RESUME_FILE, load_resume_state
from grokviz.storage.runs import open_run
from grokviz.training.ensemble import train_ensemble
from grokviz.training.grokfast import Grokfast
from grokviz.training.members import make_groups, step_group
from grokviz.training.optim import AdamWState, Hyper, learning_rate
from grokviz.training.single import SingleStep, train
from grokviz.training.step import cross_entropy64

# --- the reference: the formulas, written out plainly -----------------------------------------------


class ReferenceEMA:
    """mu starts as the first gradient; then mu <- alpha mu + (1 - alpha) g; g <- g + lamb mu."""

    def __init__(self, alpha: float, lamb: float) -> None:
        self.alpha, self.lamb, self.mu = alpha, lamb, None

    def __call__(self, grads: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if self.mu is None:
            self.mu = {k: g.clone() for k, g in grads.items()}
        out = {}
        for k, g in grads.items():
            self.mu[k] = self.mu[k] * self.alpha + g * (1 - self.alpha)
            out[k] = g + self.mu[k] * self.lamb
        return out


class ReferenceMA:
    """Off until the window is full; then g <- g + lamb * mean(last w gradients, this one included)."""

    def __init__(self, window: int, lamb: float) -> None:
        self.window, self.lamb, self.history = window, lamb, {}

    def __call__(self, grads: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        out = {}
        for k, g in grads.items():
            history = self.history.setdefault(k, deque(maxlen=self.window))
            history.append(g.clone())
            out[k] = g + sum(history) / len(history) * self.lamb if len(history) == self.window else g
        return out


def reference(cfg: Config):
    return (
        ReferenceEMA(cfg.grokfast_alpha, cfg.grokfast_lamb)
        if cfg.grokfast == "ema"
        else ReferenceMA(cfg.grokfast_window, cfg.grokfast_lamb)
    )


FILTERS = [
    dict(grokfast="ema", grokfast_alpha=0.9, grokfast_lamb=2.0),
    dict(grokfast="ma", grokfast_window=4, grokfast_lamb=5.0),
]


@pytest.mark.parametrize("settings", FILTERS, ids=["ema", "ma"])
def test_filter_equals_the_formulas_for_a_single_run_and_each_member(settings) -> None:
    cfg = Config(p=13, d_model=8, n_heads=2, d_head=4, d_mlp=16, **settings)
    shapes = {"w": (3, 4), "b": (5,)}
    generator = torch.Generator().manual_seed(0)
    grads_per_step = [
        {k: torch.randn(s, generator=generator, dtype=torch.float64) for k, s in shapes.items()} for _ in range(9)
    ]
    # A single run (0-d lamb) and an ensemble of three members with their own lamb ([member]).
    lambs = [0.5, settings["grokfast_lamb"], 3.0]
    single = Grokfast.of(cfg, {k: torch.zeros(s, dtype=torch.float64) for k, s in shapes.items()})
    members = [cfg.replace(grokfast_lamb=lamb) for lamb in lambs]
    ensemble = Grokfast.of(members, {k: torch.zeros((3, *s), dtype=torch.float64) for k, s in shapes.items()})
    refs = [reference(c) for c in members]
    single_ref = reference(cfg)
    for step, grads in enumerate(grads_per_step):
        counter = torch.tensor(step)
        ours = single.filter(grads, counter)
        theirs = single_ref(grads)
        # Member m gets gradient (m + 1) * g: distinct per member.
        batched = ensemble.filter({k: torch.stack([g * (m + 1) for m in range(3)]) for k, g in grads.items()}, counter)
        expected = [ref({n: g * (m + 1) for n, g in grads.items()}) for m, ref in enumerate(refs)]
        for k in shapes:
            torch.testing.assert_close(ours[k], theirs[k], rtol=1e-12, atol=1e-12)
            for m in range(3):
                torch.testing.assert_close(batched[k][m], expected[m][k], rtol=1e-12, atol=1e-12)
        if settings["grokfast"] == "ma" and step < 3:  # off until the window is full
            assert all(torch.equal(ours[k], grads[k]) for k in shapes)
        else:
            assert not torch.equal(ours["w"], grads["w"])


def reference_training(cfg: Config, steps: int) -> dict[str, torch.Tensor]:
    """Plain full-batch training as the Grokfast code does it: loss.backward(), filter the .grad
    of every parameter, torch.optim.AdamW with the reference LambdaLR warm-up."""
    data = dataset_for(cfg)
    a, b, labels = (t[data.train_idx] for t in (data.a, data.b, data.labels))
    params = {k: v.clone().requires_grad_(True) for k, v in init_params(cfg).items()}
    optimizer = torch.optim.AdamW(
        params.values(), lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(cfg.beta1, cfg.beta2)
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(step / cfg.warmup_steps, 1))
    grad_filter = reference(cfg)
    for _ in range(steps):
        optimizer.zero_grad()
        cross_entropy64(forward_last(params, a, b), labels).backward()
        filtered = grad_filter({k: v.grad for k, v in params.items()})
        for k, v in params.items():
            v.grad = filtered[k]
        optimizer.step()
        scheduler.step()
    return {k: v.detach() for k, v in params.items()}


@pytest.mark.parametrize("settings", FILTERS, ids=["ema", "ma"])
def test_trainers_equal_the_reference_loop(tmp_path, tiny_config, settings) -> None:
    cfg = tiny_config.replace(steps=40, **settings)
    expected = reference_training(cfg, cfg.steps)
    run = train(cfg, tmp_path / "single", progress=False)
    _, params, *_ = load_resume_state(run.path)
    for name, tensor in expected.items():
        torch.testing.assert_close(params[name], tensor, rtol=2e-4, atol=2e-6, msg=name)
    # The same filter without Grokfast would be far off: the comparison can fail.
    plain = reference_training(tiny_config.replace(steps=40), 40)
    assert max((plain[k] - params[k]).abs().max().item() for k in plain) > 1e-3
    # An ensemble member (here with another lamb beside it) equals its single run.
    other = cfg.replace(grokfast_lamb=1.0, seed=1)
    folders = train_ensemble([cfg, other], tmp_path / "sweep", progress=False)
    member, member_other = open_run(folders[0]).load(40), open_run(folders[1]).load(40)
    single_other = train(other, tmp_path / "other", progress=False).load(40)
    for name, tensor in params.items():
        torch.testing.assert_close(member[name], tensor, rtol=1e-5, atol=1e-6, msg=name)
        torch.testing.assert_close(member_other[name], single_other[name], rtol=1e-5, atol=1e-6, msg=name)


@pytest.mark.parametrize("settings", FILTERS, ids=["ema", "ma"])
def test_resume_continues_the_filter_state_exactly(tmp_path, tiny_config, settings) -> None:
    cfg = tiny_config.replace(steps=120, **settings)
    whole = train(cfg, tmp_path / "whole", progress=False)
    train(cfg, tmp_path / "cut", progress=False, stop_after_steps=57)
    step, *_, extra = load_resume_state(tmp_path / "cut")
    assert step == 57 and set(extra) == {"grokfast"}
    resumed = train(cfg, tmp_path / "cut", progress=False, resume=True)
    ours, theirs = load_resume_state(resumed.path), load_resume_state(whole.path)
    for group_ours, group_theirs in zip(ours[1:4], theirs[1:4]):
        for name in group_theirs:
            assert torch.equal(group_ours[name], group_theirs[name]), name
    for name in theirs[4]["grokfast"]:
        assert torch.equal(ours[4]["grokfast"][name], theirs[4]["grokfast"][name]), name
    columns = ["step", "train_loss", "train_accuracy", "test_loss", "test_accuracy"]
    assert resumed.log()[columns].equals(whole.log()[columns])


def test_a_resume_state_without_the_filter_is_refused(tmp_path, tiny_config) -> None:
    cfg = tiny_config.replace(steps=40, grokfast="ema")
    train(cfg, tmp_path / "run", progress=False, stop_after_steps=10)
    from safetensors.torch import load_file, save_file

    path = tmp_path / "run" / RESUME_FILE
    kept = {k: v for k, v in load_file(str(path)).items() if not k.startswith("grokfast/")}
    save_file(kept, str(path), metadata={"step": "10"})
    with pytest.raises(GrokvizError, match="ema Grokfast filter but its resume state holds no filter state"):
        train(cfg, tmp_path / "run", progress=False, resume=True)


def test_divide_lr_is_the_fair_comparison_control() -> None:
    cfg = Config(grokfast="ma", grokfast_divide_lr=True)
    assert learning_rate(cfg, 100) == pytest.approx(1e-3 / 6) and learning_rate(cfg, 0) == 0.0
    assert learning_rate(cfg.replace(grokfast_divide_lr=False), 100) == 1e-3


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        (dict(grokfast="sma"), "grokfast='sma' must be one of"),
        (dict(grokfast="ema", grokfast_window=10), "grokfast_window=10 applies only with grokfast=ma"),
        (dict(grokfast_lamb=2.0), "grokfast_lamb=2.0 applies only with grokfast=ema or ma"),
        (dict(grokfast="ema", grokfast_alpha=1.0), "grokfast_alpha=1.0 must be in [0, 1)"),
        (dict(grokfast="ma", grokfast_window=0), "grokfast_window=0 must be at least 1"),
        (dict(grokfast_divide_lr=True), "grokfast_divide_lr=True needs a filter"),
    ],
)
def test_invalid_filter_settings_say_what_is_allowed(changes, words) -> None:
    with pytest.raises(GrokvizError, match=words.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        Config(**changes)


def test_defaults_are_filled_in_and_old_configs_load() -> None:
    assert Config(grokfast="ema") == Config(grokfast="ema", grokfast_alpha=0.98, grokfast_lamb=2.0)
    ma = Config(grokfast="ma")
    assert (ma.grokfast_window, ma.grokfast_lamb, ma.grokfast_alpha) == (100, 5.0, None)
    stored = Config().to_dict()
    for name in ("grokfast", "grokfast_alpha", "grokfast_lamb", "grokfast_window", "grokfast_divide_lr", "lr_schedule"):
        del stored[name]  # a run.json written before these fields existed
    assert Config.from_dict(stored) == Config()
    assert Config.from_json(Config(grokfast="ma").to_json()) == ma


@pytest.mark.parametrize("settings", FILTERS, ids=["ema", "ma"])
def test_a_filtered_step_has_no_host_sync(settings) -> None:
    # On the meta device any host read fails (see test_graphs): the filter runs inside the
    # CUDA graph with the rest of the step, for a single run and for an ensemble group.
    meta = torch.device("meta")
    cfg = Config(p=13, d_model=8, n_heads=2, d_head=4, d_mlp=16, warmup_steps=3, **settings)
    params = {k: v.to(meta).requires_grad_(True) for k, v in init_params(cfg).items()}
    data = tuple(torch.zeros(40, dtype=torch.long, device=meta) for _ in range(3))
    step = SingleStep(params, AdamWState.zeros_like(params), Hyper.of(cfg, meta), data, data, Grokfast.of(cfg, params))
    assert step(evaluate=True).shape == (4,) and step(evaluate=False) is None
    assert all(t.device == meta for t in step.state_tensors())
    assert len(step.state_tensors()) == 3 * len(params) + 1 + len(params)
    (group,) = make_groups([cfg.replace(seed=0), cfg.replace(seed=1, grokfast_lamb=1.0)], meta)
    assert group.grokfast.lamb.shape == (2,) and step_group(group, evaluate=False) is None
