"""Where and how a trainer computes: the device, float32 matmul precision, CPU threads and memory.

Shared by the single-run trainer and the ensemble; none of it is stored in a run folder.
"""

from __future__ import annotations

import contextlib
import ctypes

import torch

from grokviz.core.config import Config
from grokviz.errors import GrokvizError


def pick_device(requested: str) -> torch.device:
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested == "cuda" and not torch.cuda.is_available():
        raise GrokvizError("--device cuda was asked for, but torch sees no CUDA device")
    return torch.device(requested)


@contextlib.contextmanager
def matmul_precision(cfg: Config, dev: torch.device):
    """Compute float32 matrix products as ``cfg.matmul`` says while training (restored after)."""
    if cfg.matmul == "tf32" and dev.type != "cuda":
        raise GrokvizError("matmul='tf32' needs a CUDA device; on a CPU train with matmul='fp32'")
    before = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = cfg.matmul == "tf32"
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = before


def configure_cpu(threads: int | None) -> None:
    # After memorisation weights and gradients reach denormal floats, which slow CPU arithmetic
    # several-fold; flushing them to zero changes nothing that matters at fp32.
    torch.set_flush_denormal(True)
    # None keeps torch's thread count (all cores). For a step of the reference recipe on an idle
    # 2-core machine two threads take 36 ms against 58 for one; on one busy with other work, 105.
    if threads is not None:
        torch.set_num_threads(threads)


def keep_freed_memory() -> None:
    """On glibc, keep freed memory for reuse instead of returning it to the OS (CPU only).

    glibc serves blocks above its mmap threshold (at most 32 MB by default) with a fresh mmap and
    unmaps them on free, so every step pays page faults on every big activation again. At p = 113
    an ensemble of 8 has [member, pairs, d_mlp] activations of 63 MB: measured 730 -> 457 ms per
    step on a 2-core VM. Process-wide; harmless elsewhere (a no-op without glibc).
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # from malloc.h
    libc.mallopt(M_TRIM_THRESHOLD, 1 << 30)
    libc.mallopt(M_MMAP_THRESHOLD, 1 << 30)
