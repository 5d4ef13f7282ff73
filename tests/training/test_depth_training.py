"""Depth (``n_layers``) and minibatches (``batch_size``) through the trainers' machinery: an ensemble
member equals its single run; a stopped and resumed run, an extended one and a sweep resumed group
by group equal the uninterrupted ones bit for bit (with Grokfast too); the memory estimate counts
every block and the minibatch against what autograd keeps; the ensemble's command line sweeps both."""

from __future__ import annotations

import json

import pytest
import torch

from grokviz.commands.ensemble import main
from grokviz.core.config import Config
from grokviz.core.fast_path import forward_last
from grokviz.core.params import init_params
from grokviz.storage.log import LOG_FILE
from grokviz.storage.resume import load_resume_state
from grokviz.storage.runs import SWEEP_FILE, checkpoint_name, open_run
from grokviz.storage.sweeps import member_name, open_sweep, outcome_table
from grokviz.training import distributed, memory
from grokviz.training.ensemble import train_ensemble
from grokviz.training.grids import grid_configs
from grokviz.training.single import train
from grokviz.training.step import cross_entropy64

COLUMNS = ["step", "train_loss", "train_accuracy", "test_loss", "test_accuracy"]
# 171 training pairs: a minibatch of 48 is a few per epoch.
SMALL = Config(p=19, d_model=32, d_mlp=64, n_heads=2, d_head=16, steps=80, log_every=10, save_every=40)


def assert_same_run(ours, theirs, steps=None) -> None:
    """The same weights at every checkpoint both saved (bit for bit), and the same logged metrics."""
    common = sorted(set(ours.steps()) & set(theirs.steps()) if steps is None else steps)
    assert common
    for step in common:
        a, b = ours.load(step), theirs.load(step)
        assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in b), f"step {step}"
    assert ours.log()[COLUMNS].equals(theirs.log()[COLUMNS])


MEMBERS = {
    "none": [
        SMALL.replace(n_layers=2, seed=0),
        SMALL.replace(n_layers=2, seed=1, batch_size=48),
        SMALL.replace(batch_size=48, seed=2),
        SMALL.replace(batch_size=48, seed=3, weight_decay=0.3),  # in the same group as seed 2
    ],
    "ema": [  # Grokfast's filter over minibatch gradients
        SMALL.replace(n_layers=2, seed=2, batch_size=48, grokfast="ema"),
        SMALL.replace(n_layers=2, seed=3, batch_size=48, grokfast="ema", grokfast_lamb=5.0),
    ],
    "dropout": [  # masks drawn for the minibatch's rows (dropout is a one-layer option)
        SMALL.replace(seed=2, batch_size=48, dropout=0.1),
        SMALL.replace(seed=3, batch_size=48, dropout=0.1),
    ],
}


@pytest.mark.parametrize("kind", list(MEMBERS))
def test_members_of_two_layers_and_minibatches_equal_their_single_runs(tmp_path, kind) -> None:
    configs = [cfg.replace(steps=40) for cfg in MEMBERS[kind]]
    folders = train_ensemble(configs, tmp_path / "sweep", progress=False)
    for folder, cfg in zip(folders, configs):
        member, single = open_run(folder), train(cfg, tmp_path / f"single-{folder.name}", progress=False)
        assert member.config == cfg and member.steps() == [0, cfg.steps]
        ours, theirs = member.load(cfg.steps), single.load(cfg.steps)
        # Bit-identical on this CPU (the tolerance leaves room for another BLAS only).
        for name in theirs:
            torch.testing.assert_close(ours[name], theirs[name], rtol=1e-5, atol=1e-6, msg=f"{folder.name} {name}")
        assert not torch.equal(ours["embed.W_E"], member.load(0)["embed.W_E"])  # it trained
        # Logged train metrics are over the whole training set (float64: summation order only).
        both = member.log().merge(single.log(), on="step", suffixes=("_member", "_single"))
        assert len(both) == cfg.steps // cfg.log_every + 1
        for column in COLUMNS[1:]:
            torch.testing.assert_close(
                torch.tensor(both[f"{column}_member"].values), torch.tensor(both[f"{column}_single"].values)
            )
    # Seeds 2 and 3 drew different batches (and started from different weights).
    assert not torch.equal(open_run(folders[-2]).load(40)["embed.W_E"], open_run(folders[-1]).load(40)["embed.W_E"])


@pytest.mark.parametrize("grokfast", ["none", "ema"])
def test_a_stopped_two_layer_minibatch_run_resumes_bit_for_bit(tmp_path, grokfast) -> None:
    cfg = SMALL.replace(n_layers=2, batch_size=48, grokfast=grokfast)
    whole = train(cfg, tmp_path / "whole", progress=False)
    train(cfg, tmp_path / "resumed", progress=False, stop_after_steps=33)
    assert load_resume_state(tmp_path / "resumed")[0] == 33
    resumed = train(cfg, tmp_path / "resumed", progress=False, resume=True)
    assert_same_run(resumed, whole, steps=[0, 40, 80])
    (_, *weights_a, _), (_, *weights_b, _) = load_resume_state(resumed.path), load_resume_state(whole.path)
    for a, b in zip(weights_a, weights_b):  # weights and AdamW moments
        assert all(torch.equal(a[k], b[k]) for k in b)


def test_extending_a_two_layer_minibatch_run_equals_training_that_long(tmp_path) -> None:
    cfg = SMALL.replace(n_layers=2, batch_size=48, save_log_points=0)
    train(cfg.replace(steps=50), tmp_path / "extended", progress=False)
    extended = train(cfg, tmp_path / "extended", progress=False, resume=True)
    whole = train(cfg, tmp_path / "whole", progress=False)
    assert extended.config == cfg and 50 in extended.steps()
    assert_same_run(extended, whole, steps=[0, 40, 80])


def test_a_sweep_of_depths_and_batches_resumed_group_by_group_equals_one_go(tmp_path) -> None:
    configs = grid_configs(SMALL.replace(steps=40, save_every=20), n_layers=[1, 2], batch_sizes=[48, None])
    assert len(configs) == 4
    kwargs = {"threads": 1, "progress": False}
    whole = distributed.run_sweep(configs, tmp_path / "whole", **kwargs)
    folders = distributed.run_sweep(configs, tmp_path / "cut", **kwargs)
    # Unfinished: as if killed after step 20's resume state (the log keeps rows to 20, no last checkpoint).
    for folder in folders[:2]:
        assert load_resume_state(folder)[0] == 20
        (folder / checkpoint_name(40)).unlink()
        log = (folder / LOG_FILE).read_text().splitlines(keepends=True)
        (folder / LOG_FILE).write_text("".join(log[: 1 + 3]))
    distributed.run_sweep(configs, tmp_path / "cut", resume=True, **kwargs)
    for ours, theirs in zip(folders, whole):
        assert_same_run(open_run(ours), open_run(theirs))


def saved_bytes(cfg: Config, rows: int) -> int:
    """Bytes of the activations autograd keeps for one training forward of ``rows`` pairs."""
    params = {name: tensor.requires_grad_(True) for name, tensor in init_params(cfg).items()}
    pairs = torch.randint(0, cfg.p, (3, rows))
    kept: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        if not any(tensor is weight for weight in params.values()):
            storage = tensor.untyped_storage()
            kept[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        cross_entropy64(forward_last(params, pairs[0], pairs[1], arch=cfg.architecture), pairs[2])
    return sum(kept.values())


@pytest.mark.parametrize("layernorm", ["none", "pre"])
def test_the_memory_estimate_counts_every_block_and_the_minibatch(layernorm) -> None:
    base = Config(p=53, frac_train=0.5, d_model=64, d_head=16, d_mlp=256, layernorm=layernorm)
    estimated, measured = {}, {}
    for depth in (1, 2, 4):
        cfg = base.replace(n_layers=depth, batch_size=256)
        # What one update's forward keeps: at least what autograd saves, at most twice that.
        estimated[depth] = 256 * memory.activation_bytes_per_pair(cfg)
        measured[depth] = saved_bytes(cfg, 256)
        assert measured[depth] <= estimated[depth] <= 2.2 * measured[depth], (depth, estimated, measured)
    # Each block past the first adds to the estimate at least what it adds to the kept activations.
    added, kept = estimated[4] - estimated[1], measured[4] - measured[1]
    assert kept <= added <= 2 * kept, (estimated, measured)
    # A minibatch run holds the minibatch's activations (and passes over the whole set to log).
    full, mini = memory.estimate(base.replace(n_layers=2)), memory.estimate(base.replace(n_layers=2, batch_size=256))
    n_train, n_test = memory.n_pairs(base)
    per_pair = memory.activation_bytes_per_pair(base.replace(n_layers=2))
    assert full.activations == (2 * n_train + n_test) * per_pair
    assert mini.activations == (2 * 256 + max(n_train, n_test)) * per_pair < full.activations


def test_the_ensemble_command_sweeps_depth_and_batch_size(tmp_path, capsys) -> None:
    flags = ["--p", "13", "--d-model", "16", "--d-mlp", "32", "--n-heads", "2", "--d-head", "8", "--frac-train", "0.5"]
    flags += ["--steps", "10", "--log-every", "10", "--no-progress", "--threads", "1"]
    out = tmp_path / "sweep"
    assert main(["--out", str(out), "--n-layers", "1,2", "--batch-size", "16,full", *flags]) == 0
    body = json.loads((out / SWEEP_FILE).read_text())
    assert body["axes"]["n_layers"] == [1, 2] and body["axes"]["batch_size"] == [16, None]
    configs = [open_run(out / m["name"]).config for m in body["members"]]
    assert {(c.n_layers, c.batch_size) for c in configs} == {(1, 16), (1, None), (2, 16), (2, None)}
    assert {m["name"] for m in body["members"]} == {member_name(c) for c in configs}
    assert member_name(configs[0]).endswith("_batch16") and "_layers2" in member_name(configs[3])
    # The Sweeps page's table: the full batch in words, one type per column (it is drawn by Arrow).
    table = outcome_table(open_sweep(out))
    assert sorted(table["batch_size"]) == ["16", "16", "full", "full"] and sorted(table["n_layers"]) == [1, 1, 2, 2]
    # Bad values: one line each, naming the value and what is allowed; nothing written.
    for bad, words in (
        (["--n-layers", "1,9"], "--n-layers=9 must be between 1 and 4"),
        (["--n-layers", "0"], "--n-layers=0 must be between 1 and 4"),
        (["--batch-size", "500"], "--batch-size=500 is above the training set's 84 pairs"),
        (["--batch-size", "0"], "--batch-size=0 must be at least 1"),
        (["--batch-size", "16,all"], "'all' is neither an integer nor 'full'"),
    ):
        capsys.readouterr()
        code = None
        try:
            code = main(["--out", str(tmp_path / "bad"), *bad, *flags])
        except SystemExit as exc:
            code = exc.code
        err = capsys.readouterr().err
        assert code == 2 and words in err and len(err.splitlines()) == 1, err
        assert not (tmp_path / "bad").exists()
