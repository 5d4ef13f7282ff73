"""Training with the architecture options: an exact --resume with dropout, ensemble members equal
to their single runs, and dropout that really drops."""

from __future__ import annotations

import torch

from grokviz.core.forward import dropout_masks, dropout_shapes
from grokviz.storage.resume import load_resume_state
from grokviz.storage.runs import open_run
from grokviz.training.ensemble import train_ensemble
from grokviz.training.single import train

TORCH_ENCODER = dict(layernorm="post", biases="all", pos_embed="none", attention="bidirectional", dropout=0.1)


def test_resume_with_dropout_is_exact(tmp_path, tiny_config) -> None:
    cfg = tiny_config.replace(steps=80, **TORCH_ENCODER)
    whole = train(cfg, tmp_path / "whole", progress=False, threads=1)
    train(cfg, tmp_path / "cut", progress=False, stop_after_steps=33, threads=1)
    resumed = train(cfg, tmp_path / "cut", progress=False, resume=True, threads=1)
    ours, theirs = load_resume_state(resumed.path), load_resume_state(whole.path)
    for name in theirs[1]:
        assert torch.equal(ours[1][name], theirs[1][name]), name
    columns = ["step", "train_loss", "train_accuracy", "test_loss", "test_accuracy"]
    assert resumed.log()[columns].equals(whole.log()[columns])
    # The masks mattered: without dropout the same run ends elsewhere.
    plain = train(cfg.replace(dropout=0.0), tmp_path / "plain", progress=False, threads=1)
    assert not torch.equal(plain.load(80)["embed.W_E"], whole.load(80)["embed.W_E"])


def test_members_with_layernorm_and_dropout_equal_their_single_runs(tmp_path, tiny_config) -> None:
    configs = [tiny_config.replace(steps=60, seed=seed, activation="gelu", **TORCH_ENCODER) for seed in (0, 1)]
    folders = train_ensemble(configs, tmp_path / "sweep", progress=False, threads=1)
    for folder, cfg in zip(folders, configs):
        member, single = open_run(folder), train(cfg, tmp_path / f"single-{cfg.seed}", progress=False, threads=1)
        ours, theirs = member.load(60), single.load(60)
        for name in theirs:
            if name == "blocks.0.attn.b_K":
                # The key bias adds q . b_K to every score of a query: softmax ignores it, so its
                # gradient is rounding noise, which AdamW normalises to full-size steps. It has no
                # effect on the function; the two runs' noise differs.
                continue
            torch.testing.assert_close(ours[name], theirs[name], rtol=1e-4, atol=1e-5, msg=name)
        both = member.log().merge(single.log(), on="step", suffixes=("_m", "_s"))
        torch.testing.assert_close(
            torch.tensor(both["test_loss_m"].values), torch.tensor(both["test_loss_s"].values), rtol=1e-5, atol=1e-7
        )


def test_dropout_masks_drop_at_the_rate_and_keep_the_mean() -> None:
    shapes = dropout_shapes(4000, 4, 128, 512)
    masks = dropout_masks(0.1, shapes, torch.Generator().manual_seed(0), "cpu")
    assert set(masks) == {"pattern", "attn_out", "mlp_post", "mlp_out"}
    post = masks["mlp_post"]
    assert post.shape == (4000, 512)
    assert abs(float((post == 0).double().mean()) - 0.1) < 0.005
    assert abs(float(post.double().mean()) - 1.0) < 0.01
    assert post.unique().tolist() == [0.0, torch.tensor(1 / 0.9).item()]  # inverted dropout: 1 / (1 - rate)
