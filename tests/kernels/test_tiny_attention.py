"""The tiny-attention kernel against the float64 formula: values, gradients, heads, groups, vmap, compile."""

from __future__ import annotations

import math

import pytest
import torch
from torch.func import vmap

from grokviz.kernels import tiny_attention

pytestmark = pytest.mark.skipif(not tiny_attention.available(), reason="no working C compiler for the kernel")


def reference(q, k, v, first_query):
    """q [..., b, nq, h, e], k, v [..., b, ns, h, e] -> z like q: the textbook formula."""
    nq, ns, e = q.shape[-3], k.shape[-3], q.shape[-1]
    scores = torch.einsum("...ihe,...jhe->...hij", q, k) / math.sqrt(e)
    future = torch.arange(ns) > torch.arange(first_query, first_query + nq)[:, None]  # [nq, ns]
    pattern = scores.masked_fill(future, float("-inf")).softmax(-1)
    return torch.einsum("...hij,...jhe->...ihe", pattern, v)


def inputs(lead, b, nq, ns, h, e, seed=0, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    return [(2 * torch.randn(*lead, b, n, h, e, generator=gen, dtype=dtype)).requires_grad_() for n in (nq, ns, ns)]


# The adder's shapes (12 answer queries at 21 of 33 keys, d_head 4..8), a batch that is no multiple of
# the 16-example tile, groups (as vmap makes them), several heads, every query position from 0.
@pytest.mark.parametrize(
    "lead, b, nq, ns, h, e, first",
    [((), 512, 12, 33, 1, 7, 21), ((3,), 37, 12, 33, 2, 4, 21), ((2, 2), 5, 33, 33, 1, 8, 0), ((), 16, 1, 9, 3, 1, 8)],
)
def test_matches_the_formula_in_value_and_gradient(lead, b, nq, ns, h, e, first):
    q, k, v = inputs(lead, b, nq, ns, h, e)
    expected = reference(q, k, v, first)
    dz = torch.randn_like(expected)
    want = torch.autograd.grad(expected, (q, k, v), dz)
    q32, k32, v32 = (t.detach().float().requires_grad_() for t in (q, k, v))
    z = tiny_attention.causal_attention(q32, k32, v32, first)
    assert z.shape == expected.shape
    torch.testing.assert_close(z.double(), expected, atol=1e-5, rtol=1e-5)  # float32 rounding
    for got, grad in zip(torch.autograd.grad(z, (q32, k32, v32), dz.float()), want):
        torch.testing.assert_close(got.double(), grad, atol=3e-5, rtol=1e-5)


def test_the_future_gets_no_gradient_and_changes_nothing():
    q, k, v = (t.detach().float() for t in inputs((), 16, 3, 10, 1, 5))
    z = tiny_attention.causal_attention(q, k, v, 4)  # queries at positions 4, 5, 6
    k2, v2 = k.clone(), v.clone()
    k2[:, 7:], v2[:, 7:] = 100.0, -100.0  # keys no query can see
    assert torch.equal(tiny_attention.causal_attention(q, k2, v2, 4), z)
    k.requires_grad_(), v.requires_grad_()
    dk, dv = torch.autograd.grad(tiny_attention.causal_attention(q, k, v, 4).sum(), (k, v))
    assert dk[:, 7:].abs().max() == 0 and dv[:, 7:].abs().max() == 0 and dv[:, :7].abs().min() > 0


def test_vmap_and_compile_give_the_same_values_and_gradients():
    q, k, v = (t.detach().float().requires_grad_() for t in inputs((4,), 40, 12, 33, 1, 7))
    weights = torch.linspace(-1, 1, q.numel()).view(q.shape)

    def loss(q, k, v):  # vmapped over the leading axis, as the ensemble's forward is over members
        return (vmap(lambda q, k, v: tiny_attention.causal_attention(q, k, v, 21))(q, k, v) * weights).sum()

    want = torch.autograd.grad((tiny_attention.causal_attention(q, k, v, 21) * weights).sum(), (q, k, v))
    for fn in (loss, torch.compile(loss, dynamic=False)):
        for got, grad in zip(torch.autograd.grad(fn(q, k, v), (q, k, v)), want):
            torch.testing.assert_close(got, grad, atol=1e-6, rtol=1e-6)


def test_bad_inputs_are_refused_in_words():
    q, k, v = (t.detach() for t in inputs((), 16, 12, 33, 1, 7))
    with pytest.raises(ValueError, match="float32 CPU"):
        tiny_attention.causal_attention(q, k, v, 21)  # float64
    with pytest.raises(ValueError, match="float32 CPU"):
        tiny_attention.causal_attention(q.float(), k.half(), v.float(), 21)
    q, k, v = q.float(), k.float(), v.float()
    with pytest.raises(ValueError, match="outside 33 keys"):
        torch.ops.grokviz.tiny_attention_forward(q, k, v, -2)  # the op itself checks, not only the wrapper
    with pytest.raises(ValueError, match="outside 33 keys"):
        tiny_attention.causal_attention(q, k, v, 22)
    with pytest.raises(ValueError, match=r"not \[batch, pos, head_index, d_head\]"):
        tiny_attention.causal_attention(q, k[:8], v[:8], 21)
    big = torch.zeros(2, 300, 1, 7)  # 300 keys x d_head 7 = 2,100: no longer tiny
    with pytest.raises(ValueError, match="no tiny attention"):
        tiny_attention.causal_attention(big[:, :12], big, big, 0)
