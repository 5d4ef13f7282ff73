"""Causal attention for many tiny examples, in C: the adder ensemble's attention (``tiny_attention.c``).

:func:`causal_attention` takes queries, keys and values as TransformerLens lays them out
(``[batch, pos, head_index, d_head]``) and returns ``softmax(q k^T / sqrt(d_head), causal) v``, the
attention's ``hook_z``. It is two ``torch.library`` custom ops (``grokviz::tiny_attention_forward``
and ``_backward``) with an autograd formula, a vmap rule (the vmapped axis becomes the kernel's
group axis) and fake tensors, so ``torch.func.vmap``, ``torch.autograd`` and ``torch.compile``
pass through it; compiled graphs call it as one opaque kernel.

Why: per ensemble step of 8 adder members the attention is 4,096 products of [12 x 7] by [7 x 33]
and a 33-key softmax. Batched matrix products spend their time in per-product overhead and the
softmax does not vectorise along 33 keys; the kernel runs every loop across 16 examples at a time.
In the compiled ensemble's step, forward and backward are about 23% of the step where the
products and softmax they replace were about 35%; the step is 1.17x faster (docs/cliff.md,
``scripts/bench_ensemble_digits.py``).

The C source is compiled on first use for each d_head with the system C compiler (``$CC``, else
``cc``; GCC 12 or later, or Clang, for ``__builtin_shufflevector``) into a temporary file, for this
machine's instruction set (``-march=native``), and loaded with ``ctypes``: there is no build step
and no cache to go stale. :func:`available` says whether that works here. Float32 only, on the CPU;
one thread.
"""

from __future__ import annotations

import ctypes
import functools
import math
import os
import subprocess
import tempfile
import warnings
from pathlib import Path

import torch
from torch import Tensor

TILE = 16  # examples per SIMD tile (T in the C source)
# A tile's queries, keys, values and their gradients live on the C stack: at this bound, 128 KiB for
# each of the keys' six arrays in the backward pass (under 1 MiB in all; a main thread has 8 MiB).
MAX_KEYS_TIMES_D_HEAD = 2048
_SOURCE = Path(__file__).with_name("tiny_attention.c")
_FLAGS = ["-O3", "-march=native", "-shared", "-fPIC"]


class KernelBuildError(RuntimeError):
    """The C compiler is missing or failed."""


@functools.cache
def _library(d_head: int) -> ctypes.CDLL:
    """The kernel for one d_head (a compile-time constant: its loops unroll into registers)."""
    compiler = os.environ.get("CC", "cc")
    with tempfile.TemporaryDirectory(prefix="grokviz-kernel-") as build:
        shared = Path(build) / "tiny_attention.so"
        command = [compiler, *_FLAGS, f"-DD_HEAD={d_head}", str(_SOURCE), "-o", str(shared)]
        try:
            subprocess.run(command, check=True, capture_output=True, text=True)
        except FileNotFoundError as err:
            raise KernelBuildError(f"no C compiler: {compiler!r} was not found (set $CC)") from err
        except subprocess.CalledProcessError as err:
            raise KernelBuildError(f"{' '.join(command)} failed:\n{err.stderr}") from err
        library = ctypes.CDLL(str(shared))  # mapped now: the file may go with the folder
    pointer, long, int_, float_ = ctypes.c_void_p, ctypes.c_long, ctypes.c_int, ctypes.c_float
    library.tiny_attention_forward.restype = library.tiny_attention_backward.restype = int_
    library.tiny_attention_forward.argtypes = [pointer] * 5 + [long, long] + [int_] * 5 + [float_]
    library.tiny_attention_backward.argtypes = [pointer] * 8 + [long, long] + [int_] * 5 + [float_]
    return library


@functools.cache
def available(warn: bool = False) -> bool:
    """Whether the kernel builds and loads on this machine (``warn``: say why not, once)."""
    try:
        _library(1)
    except KernelBuildError as err:
        if warn:
            warnings.warn(
                f"the tiny-attention kernel is unavailable, attention runs as batched products: {err}", stacklevel=2
            )
        return False
    return True


def _sizes(q: Tensor, k: Tensor) -> tuple[int, int, int, int, int, int]:
    """(groups, batch, heads, n_queries, n_keys, d_head) of q [*groups, batch, nq, h, e] and k."""
    *groups, b, nq, h, e = q.shape
    return math.prod(groups), b, h, nq, k.shape[-3], e


def _pattern_shape(q: Tensor, k: Tensor) -> tuple[int, ...]:
    """The saved pattern, per tile of examples: [*groups, h, tiles, nq, ns, TILE]."""
    _, b, h, nq, ns, _ = _sizes(q, k)
    return (*q.shape[:-4], h, -(-b // TILE), nq, ns, TILE)


def _check(q: Tensor, k: Tensor, v: Tensor, first_query: int) -> None:
    """Refuse in words what the kernel cannot take (run inside the op: direct calls are checked too)."""
    for t in (q, k, v):
        if t.device.type != "cpu" or t.dtype != torch.float32:
            raise ValueError(f"tiny attention runs on float32 CPU tensors, not {t.dtype} on {t.device.type}")
    same = q.shape[:-3] == k.shape[:-3] and q.shape[-2:] == k.shape[-2:]
    if q.dim() < 4 or k.shape != v.shape or not same:
        raise ValueError(
            f"q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}: not [batch, pos, head_index, d_head]"
        )
    if not 0 <= first_query or first_query + q.shape[-3] > k.shape[-3]:
        raise ValueError(f"queries at {first_query}..{first_query + q.shape[-3] - 1} outside {k.shape[-3]} keys")
    if k.shape[-3] * k.shape[-1] > MAX_KEYS_TIMES_D_HEAD:
        raise ValueError(
            f"{k.shape[-3]} keys x d_head {k.shape[-1]} is no tiny attention (at most {MAX_KEYS_TIMES_D_HEAD}):"
            " use the model's own attention"
        )


# Changing what an op returns (shapes, count) needs a new op name: Inductor's on-disk cache keys a
# compiled graph on the op's name, not on its fake implementation, and would replay the old shapes.
@torch.library.custom_op("grokviz::tiny_attention_forward", mutates_args=())
def _forward(q: Tensor, k: Tensor, v: Tensor, first_query: int) -> tuple[Tensor, Tensor]:
    """(z like q, the pattern in the kernel's tile layout, for the backward pass)."""
    _check(q, k, v, first_query)
    q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
    groups, b, h, nq, ns, e = _sizes(q, k)
    z, pattern = torch.empty_like(q), q.new_empty(_pattern_shape(q, k))
    status = _library(e).tiny_attention_forward(
        q.data_ptr(), k.data_ptr(), v.data_ptr(), z.data_ptr(), pattern.data_ptr(),
        groups, b, h, nq, ns, e, first_query, 1 / math.sqrt(e),
    )  # fmt: skip
    if status:
        raise RuntimeError(f"the kernel built for d_head {e} refused its inputs")
    return z, pattern


@_forward.register_fake
def _(q, k, v, first_query):
    return torch.empty_like(q, memory_format=torch.contiguous_format), q.new_empty(_pattern_shape(q, k))


@torch.library.custom_op("grokviz::tiny_attention_backward", mutates_args=())
def _backward(
    q: Tensor, k: Tensor, v: Tensor, pattern: Tensor, dz: Tensor, first_query: int
) -> tuple[Tensor, Tensor, Tensor]:
    """(dq, dk, dv) from the forward's inputs, its pattern and dz (no double backward: this op has no
    gradient of its own)."""
    _check(q, k, v, first_query)
    if dz.shape != q.shape or dz.dtype != q.dtype or pattern.shape != _pattern_shape(q, k):
        raise ValueError(f"dz {tuple(dz.shape)} or pattern {tuple(pattern.shape)} does not match q {tuple(q.shape)}")
    q, k, v, dz, pattern = (t.contiguous() for t in (q, k, v, dz, pattern))
    if pattern.data_ptr() % 64:  # the kernel reads it as aligned 64-byte vectors
        pattern = pattern.clone()
    groups, b, h, nq, ns, e = _sizes(q, k)
    dq, dk, dv = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
    status = _library(e).tiny_attention_backward(
        q.data_ptr(), k.data_ptr(), v.data_ptr(), pattern.data_ptr(), dz.data_ptr(),
        dq.data_ptr(), dk.data_ptr(), dv.data_ptr(), groups, b, h, nq, ns, e, first_query, 1 / math.sqrt(e),
    )  # fmt: skip
    if status:
        raise RuntimeError(f"the kernel built for d_head {e} refused its inputs")
    return dq, dk, dv


@_backward.register_fake
def _(q, k, v, pattern, dz, first_query):
    return tuple(torch.empty_like(t, memory_format=torch.contiguous_format) for t in (q, k, v))


def _setup_context(ctx, inputs, output) -> None:
    q, k, v, first_query = inputs
    ctx.mark_non_differentiable(output[1])
    ctx.save_for_backward(q, k, v, output[1])
    ctx.first_query = first_query


def _autograd_backward(ctx, dz, _dpattern):
    q, k, v, pattern = ctx.saved_tensors
    return (*_backward(q, k, v, pattern, dz, ctx.first_query), None)


_forward.register_autograd(_autograd_backward, setup_context=_setup_context)


def _front(tensors, dims) -> list[Tensor]:
    """The vmapped axis of each tensor first (a tensor without one is expanded to the batch size)."""
    size = next(t.shape[d] for t, d in zip(tensors, dims) if d is not None)
    return [t.movedim(d, 0) if d is not None else t.expand(size, *t.shape) for t, d in zip(tensors, dims)]


@_forward.register_vmap
def _(info, in_dims, q, k, v, first_query):
    # The vmapped axis becomes one more group axis (groups lead: q [*groups, batch, nq, h, e]).
    return _forward(*_front((q, k, v), in_dims[:3]), first_query), (0, 0)


@_backward.register_vmap
def _(info, in_dims, q, k, v, pattern, dz, first_query):
    return _backward(*_front((q, k, v, pattern, dz), in_dims[:5]), first_query), (0, 0, 0)


def causal_attention(q: Tensor, k: Tensor, v: Tensor, first_query: int) -> Tensor:
    """q [batch, n_queries, head_index, d_head], k and v [batch, n_keys, head_index, d_head] -> z
    [batch, n_queries, head_index, d_head]: each query (at key position ``first_query + i``) attends
    to keys 0 to its own position, scores scaled by 1/sqrt(d_head). Axes before ``batch`` are
    independent groups (vmap adds one)."""
    return _forward(q, k, v, first_query)[0]
