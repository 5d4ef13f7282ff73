"""The digits task family and the adder model: token format, sampler, carries, the verification set,
the parameter count, the forward against an independent float64 implementation, greedy decoding."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from grokviz.core import digits_model, digits_tasks
from grokviz.core.config import ConfigError
from grokviz.core.digits_config import DigitsConfig, parse_curriculum
from grokviz.core.params import n_params
from grokviz.errors import GrokvizError
from grokviz.training.optim import adder_learning_rate


def test_the_recipe_shape_has_777_parameters() -> None:
    cfg = DigitsConfig()
    assert (cfg.n_layers, cfg.d_model, cfg.n_heads, cfg.d_mlp) == (1, 7, 1, 14)
    assert n_params(digits_model.param_shapes(cfg)) == 777
    assert sum(t.numel() for t in digits_model.init_params(cfg).values()) == 777
    # gpt-acc-jax's table: 973 with FFN width 28; untied adds vocab x d_model; FFN biases d_mlp + d_model.
    assert n_params(digits_model.param_shapes(cfg.replace(d_mlp=28))) == 973
    assert n_params(digits_model.param_shapes(cfg.replace(unembed="untied"))) == 777 + 14 * 7
    assert n_params(digits_model.param_shapes(cfg.replace(mlp_bias="yes"))) == 777 + 14 + 7
    assert n_params(digits_model.param_shapes(cfg.replace(normalization="RMS"))) == 777 - 3 * 7


def test_token_format_round_trips() -> None:
    tokens = digits_tasks.encode(torch.tensor([5]), torch.tensor([7]))[0].tolist()
    text = "".join(digits_tasks.TOKEN_TEXT[t] for t in tokens)
    assert text == "0000000005+0000000007=" + "21000000000" + "<EOS>"
    a = torch.tensor([0, 9_999_999_999, 1234567890, 42])
    b = torch.tensor([0, 9_999_999_999, 9876543210, 58])
    full = digits_tasks.encode(a, b)
    assert full.shape == (4, 34)
    x, answer = digits_tasks.split_sequence(full)
    assert x.shape == (4, 33) and answer.shape == (4, 12)
    value, well_formed = digits_tasks.decode_answer(answer)
    assert value.tolist() == (a + b).tolist() and well_formed.all()
    # The prompt reads back as the operands (most significant digit first).
    for row, (ai, bi) in zip(full.tolist(), zip(a.tolist(), b.tolist())):
        assert int("".join(map(str, row[:10]))) == ai and int("".join(map(str, row[11:21]))) == bi
    broken = answer.clone()
    broken[0, 11] = digits_tasks.PAD
    assert not digits_tasks.decode_answer(broken)[1][0]


def test_sampler_follows_the_curriculum() -> None:
    generator = torch.Generator().manual_seed(0)
    a, b = digits_tasks.sample_operands(20_000, 3, generator)
    assert int(a.max()) < 1000 and int(b.max()) < 1000 and int(a.min()) >= 0
    # n uniform in 1..3, then uniform below 10^n: P(a < 10) = 1/3 + 1/3 * 1/10 + 1/3 * 1/100.
    assert float((a < 10).double().mean()) == pytest.approx((1 + 0.1 + 0.01) / 3, abs=0.015)
    cfg = DigitsConfig()
    assert [cfg.max_digits_at(s) for s in (0, 1999, 2000, 6999, 7000, 26_999)] == [3, 3, 6, 6, 10, 10]
    assert parse_curriculum("3:2000,6:7000,10") == [(3, 2000), (6, 7000), (10, None)]


def _carry_reference(a: int, b: int) -> tuple[list[int], int]:
    carry_in, carry, run, best = [0], 0, 0, 0
    for k in range(10):
        carry = ((a // 10**k) % 10 + (b // 10**k) % 10 + carry) // 10
        carry_in.append(carry)
        run = run + 1 if carry else 0
        best = max(best, run)
    return carry_in, best


def test_carries_and_carry_chains_match_a_column_by_column_reference() -> None:
    rng = np.random.default_rng(1)
    a = torch.from_numpy(rng.integers(0, 10**10, 300))
    b = torch.from_numpy(rng.integers(0, 10**10, 300))
    ea, eb = digits_tasks.edge_cases()
    a, b = torch.cat([a, ea]), torch.cat([b, eb])
    carries = digits_tasks.carries(a, b)
    chains = digits_tasks.longest_carry_chain(a, b)
    for i in range(len(a)):
        ref_carries, ref_chain = _carry_reference(int(a[i]), int(b[i]))
        assert carries[i].tolist() == ref_carries
        assert int(chains[i]) == ref_chain
    assert int(digits_tasks.longest_carry_chain(torch.tensor([9_999_999_999]), torch.tensor([1]))[0]) == 10


def test_verification_set_is_fixed_and_has_the_edge_cases() -> None:
    first, second = digits_tasks.verification_set(), digits_tasks.verification_set()
    assert len(first) == 10_000 + len(digits_tasks.edge_cases()[0])
    assert torch.equal(first.a, second.a) and torch.equal(first.b, second.b)
    expected = np.random.default_rng(2025).integers(0, 10**10, size=(2, 10_000), dtype=np.int64)
    assert first.a[:10_000].tolist() == expected[0].tolist()
    pairs = set(zip(first.a.tolist(), first.b.tolist()))
    assert {(0, 0), (9_999_999_999, 9_999_999_999), (9_999_999_999, 1)} <= pairs


@pytest.mark.parametrize(
    "text, message",
    [
        ("12a", "not a whole number"),
        ("", "not a whole number"),
        ("-5", "not a whole number"),
        ("1.5", "not a whole number"),
        ("12345678901", "more than 10 digits"),
        ("٣", "not a whole number"),
    ],
)
def test_malformed_operands_are_refused_in_words(text: str, message: str) -> None:
    with pytest.raises(GrokvizError, match=message):
        digits_tasks.parse_operand(text)


def test_operands_are_parsed() -> None:
    assert digits_tasks.parse_operand(" 1_234,567 ") == 1234567
    assert digits_tasks.parse_operand("0009999999999") == 9_999_999_999


def test_config_problems_are_named_by_field() -> None:
    with pytest.raises(ConfigError) as caught:
        DigitsConfig(d_model=7, n_heads=2, curriculum="3,6", normalization="layer", lr=-1.0)
    text = caught.value.as_flags()
    for flag in ("--n-heads=2", "--curriculum=", "--normalization='layer'", "--lr=-1.0"):
        assert flag in text
    with pytest.raises(ConfigError, match="not before --steps"):
        DigitsConfig(steps=1000)


def test_learning_rate_is_optax_warmup_cosine() -> None:
    cfg = DigitsConfig()
    assert cfg.warmup_steps == 1350
    assert adder_learning_rate(cfg, 0) == 0.0
    assert adder_learning_rate(cfg, 675) == pytest.approx(0.01)
    assert adder_learning_rate(cfg, 1350) == pytest.approx(0.02)
    middle = 1350 + (27_000 - 1350) // 2
    assert adder_learning_rate(cfg, middle) == pytest.approx(
        0.02 * (0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)) + 0.1), rel=1e-4
    )
    assert adder_learning_rate(cfg, 27_000) == pytest.approx(0.002)


# --- the model against an independent implementation ---------------------------------------------


def _reference_logits(params: dict[str, np.ndarray], tokens: list[int], n_heads: int) -> np.ndarray:
    """One sequence, position by position, in float64 numpy: the textbook pre-LN decoder."""

    def norm(x, prefix):
        w, b = params[f"{prefix}.w"], params.get(f"{prefix}.b")
        if b is None:
            return x / np.sqrt((x**2).mean() + 1e-6) * w
        return (x - x.mean()) / np.sqrt(x.var() + 1e-6) * w + b

    def gelu(x):
        return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))

    resid = [params["embed.W_E"][t] + params["pos_embed.W_pos"][i] for i, t in enumerate(tokens)]
    n_layers = 1 + max(int(k.split(".")[1]) for k in params if k.startswith("blocks."))
    for layer in range(n_layers):
        p = f"blocks.{layer}"
        normed = [norm(r, f"{p}.ln1") for r in resid]
        new = []
        for i in range(len(tokens)):
            attn_out = np.zeros_like(resid[i])
            for h in range(n_heads):
                q = normed[i] @ params[f"{p}.attn.W_Q"][h]
                keys = [normed[j] @ params[f"{p}.attn.W_K"][h] for j in range(i + 1)]
                vals = [normed[j] @ params[f"{p}.attn.W_V"][h] for j in range(i + 1)]
                scores = np.array([q @ k for k in keys]) / np.sqrt(len(q))
                weights = np.exp(scores - scores.max())
                weights /= weights.sum()
                z = sum(w * v for w, v in zip(weights, vals))
                attn_out += z @ params[f"{p}.attn.W_O"][h]
            mid = resid[i] + attn_out
            pre = norm(mid, f"{p}.ln2") @ params[f"{p}.mlp.W_in"] + params.get(f"{p}.mlp.b_in", 0)
            new.append(mid + gelu(pre) @ params[f"{p}.mlp.W_out"] + params.get(f"{p}.mlp.b_out", 0))
        resid = new
    unembed = params.get("unembed.W_U", params["embed.W_E"].T)
    return np.stack([norm(r, "ln_final") @ unembed for r in resid])


@pytest.mark.parametrize(
    "changes",
    [{}, {"n_heads": 7, "n_layers": 2, "unembed": "untied", "mlp_bias": "yes"}, {"normalization": "RMS", "d_mlp": 5}],
)
def test_forward_equals_an_independent_implementation_in_float64(changes: dict) -> None:
    cfg = DigitsConfig(seed=3, **changes)
    params = {k: v.double() for k, v in digits_model.init_params(cfg).items()}
    # Larger than the initial scales, so that attention and the FFN matter.
    params = {k: v * 1.7 if k.endswith(("W_Q", "W_K", "W_in")) else v for k, v in params.items()}
    a, b = torch.tensor([123, 9_999_999_999, 5]), torch.tensor([877, 1, 7])
    x, _ = digits_tasks.split_sequence(digits_tasks.encode(a, b))
    ours = digits_model.forward(params, x)
    numpy_params = {k: v.numpy() for k, v in params.items()}
    for i in range(len(a)):
        ref = _reference_logits(numpy_params, x[i].tolist(), cfg.n_heads)
        np.testing.assert_allclose(ours[i].numpy(), ref, rtol=1e-10, atol=1e-10)
    fast = digits_model.forward(params, x, answer_only=True)
    torch.testing.assert_close(fast, ours[:, digits_tasks.ANSWER_POSITIONS], rtol=1e-12, atol=1e-12)
    vocab_first = digits_model.forward(params, x, answer_only=True, vocab_first=True)  # the ensemble's layout
    torch.testing.assert_close(vocab_first, fast.permute(2, 0, 1), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "changes",
    [{}, {"n_heads": 7, "n_layers": 2, "unembed": "untied", "mlp_bias": "yes"}, {"d_model": 8, "n_heads": 2}],
)
def test_the_attention_kernel_gives_the_definitions_logits_and_gradients(changes: dict) -> None:
    from grokviz.kernels import tiny_attention

    if not tiny_attention.available():
        pytest.skip("no working C compiler for the attention kernel")
    cfg = DigitsConfig(seed=5, **changes)
    params = {
        k: (v * 1.7 if k.endswith(("W_Q", "W_K")) else v).requires_grad_()
        for k, v in digits_model.init_params(cfg).items()
    }
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randint(0, 10**10, (37,), generator=gen), torch.randint(0, 10**10, (37,), generator=gen)
    x, _ = digits_tasks.split_sequence(digits_tasks.encode(a, b))
    ours = digits_model.forward(params, x, answer_only=True, vocab_first=True, tiny_attention=True)
    theirs = digits_model.forward(params, x, answer_only=True, vocab_first=True)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)
    weights = torch.randn(theirs.shape, generator=gen)
    for got, want in zip(*(torch.autograd.grad((t * weights).sum(), list(params.values())) for t in (ours, theirs))):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5 * float(want.abs().max()))  # float32 sums
    with pytest.raises(ValueError, match="no attention pattern"):
        digits_model.forward(params, x, tiny_attention=True, cache={})


def test_flax_default_initialisation_scales() -> None:
    cfg = DigitsConfig(d_model=64, d_mlp=256, seed=0)
    params = digits_model.init_params(cfg)
    assert float(params["embed.W_E"].std()) == pytest.approx(1 / 8, rel=0.15)
    w_in = params["blocks.0.mlp.W_in"]
    assert float(w_in.std()) == pytest.approx(1 / 8, rel=0.05)
    assert float(w_in.abs().max()) <= 2 / 8 / 0.8796 + 1e-6  # truncated at 2 std of the base normal
    assert float(params["blocks.0.mlp.W_out"].std()) == pytest.approx(1 / 16, rel=0.05)
    assert torch.equal(params["ln_final.w"], torch.ones(64)) and torch.equal(params["ln_final.b"], torch.zeros(64))


def _successor_model() -> dict[str, torch.Tensor]:
    """A hand-built model that ignores attention and the FFN: at each position it predicts the
    successor of the token there ('=' -> '3', digit d -> d + 1 mod 10), so greedy decoding must
    feed back its own tokens to write 3 4 5 6 7 8 9 0 1 2 3 4."""
    cfg = DigitsConfig(d_model=14, n_heads=1, d_mlp=2, unembed="untied")
    params = {k: torch.zeros_like(v) for k, v in digits_model.init_params(cfg).items()}
    params["embed.W_E"] = torch.eye(14) * 5
    for prefix in ("blocks.0.ln1", "blocks.0.ln2", "ln_final"):
        params[f"{prefix}.w"] = torch.ones(14)
    successor = {t: (t + 1) % 10 for t in range(10)} | {digits_tasks.EQUALS: 3}
    for token, nxt in successor.items():
        params["unembed.W_U"][token, nxt] = 4.0
    return params


def test_greedy_decoding_on_a_hand_built_model() -> None:
    params = _successor_model()
    prompt = digits_tasks.encode(torch.tensor([5, 17]), torch.tensor([7, 4]))[:, : digits_tasks.PROMPT_LEN]
    answer, probs = digits_model.greedy_decode(params, prompt)
    assert answer.tolist() == [[3, 4, 5, 6, 7, 8, 9, 0, 1, 2, 3, 4]] * 2
    assert probs.shape == (2, 12) and bool(((probs > 0.5) & (probs <= 1)).all())
    # The probability reported is the softmax of the chosen token.
    logits = digits_model.forward(params, torch.cat([prompt, answer[:, :11]], 1))[:, digits_tasks.ANSWER_POSITIONS]
    torch.testing.assert_close(probs, logits.double().softmax(-1).amax(-1))


def test_exact_match_scoring() -> None:
    labels = torch.tensor([[1, 2], [3, 4]])
    logits = torch.nn.functional.one_hot(torch.tensor([[1, 2], [3, 0]]), 14).float()
    loss, exact, per_pos = digits_model.answer_scores(logits, labels)
    assert float(exact) == 0.5 and per_pos.tolist() == [1.0, 0.5] and loss.dtype == torch.float64
