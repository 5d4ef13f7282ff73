"""export-tl of a 10-digit adder run: the layout (always), and, where TransformerLens 3.x is
installed, that a HookedTransformer loads it (strict) and decodes the same answers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from grokviz.commands import convert
from grokviz.core import digits_model, digits_tasks
from grokviz.storage.runs import open_run

BUNDLED = Path(__file__).resolve().parents[2] / "checkpoints" / "adder-777"


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    if not (BUNDLED / "run.json").is_file():
        pytest.skip("checkpoints/adder-777 is not in this checkout")
    out = tmp_path_factory.mktemp("tl") / "adder.safetensors"
    assert convert.main(["export-tl", str(BUNDLED), "--out", str(out)]) == 0
    return out


def test_export_layout(exported: Path) -> None:
    state = load_file(str(exported))
    config = json.loads(exported.with_suffix(".json").read_text())
    assert config["act_fn"] == "gelu_new" and config["normalization_type"] == "LN" and config["eps"] == 1e-6
    assert config["attention_dir"] == "causal" and (config["d_model"], config["d_mlp"], config["n_ctx"]) == (7, 14, 35)
    run = open_run(BUNDLED)
    params = run.load(run.steps()[-1])
    # TransformerLens has no tied unembedding: W_U is W_E transposed.
    torch.testing.assert_close(state["unembed.W_U"], params["embed.W_E"].T)
    for name, tensor in params.items():
        assert torch.equal(state[name], tensor), name
    for name in ("blocks.0.attn.b_Q", "blocks.0.attn.b_O", "blocks.0.mlp.b_in", "blocks.0.mlp.b_out", "unembed.b_U"):
        assert not state[name].any(), name
    assert state["blocks.0.attn.mask"].dtype == torch.bool and state["blocks.0.attn.IGNORE"] == float("-inf")
    assert state["blocks.0.ln1.w"].shape == (7,) and state["ln_final.b"].shape == (7,)


def test_transformer_lens_3_loads_it_and_decodes_the_same_answers(exported: Path, transformer_lens_3) -> None:
    HookedTransformer = transformer_lens_3.HookedTransformer
    HookedTransformerConfig = transformer_lens_3.HookedTransformerConfig
    config = json.loads(exported.with_suffix(".json").read_text())
    model = HookedTransformer(HookedTransformerConfig(**config))
    model.load_state_dict(load_file(str(exported)), strict=True)
    model.eval()
    pairs = digits_tasks.verification_set()
    prompt = pairs.tokens[:500, : digits_tasks.PROMPT_LEN]
    tokens = prompt
    with torch.no_grad():
        for _ in range(digits_tasks.ANSWER_LEN):
            nxt = model(tokens)[:, -1].argmax(-1, keepdim=True)
            tokens = torch.cat([tokens, nxt], dim=1)
    run = open_run(BUNDLED)
    ours, _ = digits_model.greedy_decode(run.load(run.steps()[-1]), prompt)
    assert torch.equal(tokens[:, digits_tasks.PROMPT_LEN :], ours)
    # In float64 the two forwards agree to rounding: the same computation, not just the same argmax.
    model64 = HookedTransformer(HookedTransformerConfig(**config, dtype=torch.float64))
    model64.load_state_dict(
        {k: v.double() if v.is_floating_point() else v for k, v in load_file(str(exported)).items()}
    )
    params64 = {k: v.double() for k, v in run.load(run.steps()[-1]).items()}
    with torch.no_grad():
        x = pairs.tokens[:64, : digits_tasks.SEQ_LEN]
        torch.testing.assert_close(model64(x), digits_model.forward(params64, x), rtol=1e-9, atol=1e-9)
