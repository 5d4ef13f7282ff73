"""Grokfast gradient filters (Lee et al. 2024, *Grokfast: Accelerated Grokking by Amplifying Slow
Gradients*; reference code ironjr/grokfast), applied after backward and before AdamW.

Both filters add an amplified low-pass copy of the gradient back to it, ``g <- g + lamb * slow(g)``:

* ``ema``: ``mu`` starts as the first gradient, then every step ``mu <- alpha * mu + (1 - alpha) * g``
  (on the first step too, as ``gradfilter_ema`` does) and ``g <- g + lamb * mu``;
* ``ma``: the last ``window`` gradients are kept; the filter stays off until the window is full
  (``gradfilter_ma`` with ``warmup=True``), then ``g <- g + lamb * mean(last window gradients)``,
  the current gradient included.

The state is plain named tensors (``ema``: ``mu`` shaped like each parameter; ``ma``: a ring of
``[window, ...]`` gradients per parameter), saved in ``resume.safetensors`` so ``--resume``
continues it exactly. Which update it is comes from the AdamW step counter (a device tensor), and
``lamb`` is a device tensor too (``[member]`` in an ensemble), so a filtered step holds no host
value that changes between steps and is captured inside the CUDA graph with the rest of the step.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from grokviz.core.config import Config
from grokviz.core.params import Params
from grokviz.errors import GrokvizError

# Resume-file prefix of the filter's tensors (``grokfast/<parameter name>``).
STATE_PREFIX = "grokfast"


@dataclass
class Grokfast:
    """One filter's settings and state, for a single run or for one group of ensemble members."""

    kind: str  # "ema" or "ma"
    lamb: torch.Tensor  # 0-d (single run) or [member]: float32 on the parameters' device
    buffers: Params  # ema: mu, shaped like each parameter; ma: [window, *parameter shape]
    alpha: float | None = None
    window: int | None = None

    @classmethod
    def of(cls, configs: Config | list[Config], params: Params) -> Grokfast | None:
        """The filter of one config (or of an ensemble group's configs, which must share kind,
        alpha and window; lamb may differ per member), with zero state; None without a filter."""
        many = isinstance(configs, list)
        group = configs if many else [configs]
        first = group[0]
        if len({(c.grokfast, c.grokfast_alpha, c.grokfast_window) for c in group}) > 1:
            raise ValueError("members of one group must share grokfast, grokfast_alpha and grokfast_window")
        if first.grokfast == "none":
            return None
        device = next(iter(params.values())).device
        lamb = torch.tensor([c.grokfast_lamb for c in group], dtype=torch.float32, device=device)
        if first.grokfast == "ema":
            buffers = {k: torch.zeros_like(v, requires_grad=False) for k, v in params.items()}
        else:
            buffers = {
                k: torch.zeros((first.grokfast_window, *v.shape), dtype=v.dtype, device=device)
                for k, v in params.items()
            }
        return cls(first.grokfast, lamb if many else lamb[0], buffers, first.grokfast_alpha, first.grokfast_window)

    def tensors(self) -> list[torch.Tensor]:
        """What a step changes in place (saved and restored around a CUDA-graph capture)."""
        return list(self.buffers.values())

    def state(self) -> Params:
        """The state to save for ``--resume``."""
        return dict(self.buffers)

    def load_state(self, stored: Params, source: str) -> None:
        """Restore a saved state (from ``resume.safetensors``) in place, checking names and shapes."""
        if set(stored) != set(self.buffers):
            raise GrokvizError(
                f"{source}: the run has a {self.kind} Grokfast filter but its resume state holds "
                f"{sorted(stored) or 'no filter state'}"
            )
        for name, buffer in self.buffers.items():
            if tuple(stored[name].shape) != tuple(buffer.shape):
                raise GrokvizError(
                    f"{source}: Grokfast state {name} has shape {tuple(stored[name].shape)}, expected {tuple(buffer.shape)}"
                )
            buffer.copy_(stored[name])

    def _lamb_for(self, like: torch.Tensor) -> torch.Tensor:
        """lamb broadcast over one parameter: 0-d, or [member, 1, ...] for [member, ...] tensors."""
        return self.lamb if self.lamb.dim() == 0 else self.lamb.view(-1, *(1,) * (like.dim() - 1))

    @torch.no_grad()
    def filter(self, grads: Params, step: torch.Tensor) -> Params:
        """Filtered gradients (new tensors); the state is updated in place.

        ``step``: the number of updates done before this one (0-d int64 on the device; the AdamW
        counter before it is incremented), so the first update has ``step == 0``.
        """
        out = {}
        if self.kind == "ema":
            first = step == 0  # 0-d bool on the device: no host read
            for name, grad in grads.items():
                mu = self.buffers[name]
                mu.copy_(torch.where(first, grad, mu))  # mu starts as the first gradient
                mu.mul_(self.alpha).add_(grad * (1 - self.alpha))
                out[name] = grad + mu * self._lamb_for(grad)
            return out
        window = self.window
        slot = torch.remainder(step, window).view(1)  # [1]: where this gradient goes in the ring
        # Off (lamb * 0) until the window holds `window` gradients, this one included.
        on = (step + 1 >= window).to(torch.float32)
        for name, grad in grads.items():
            ring = self.buffers[name]  # [window, *shape]
            ring.index_copy_(0, slot, grad.unsqueeze(0))
            mean = ring.sum(dim=0) / window
            out[name] = grad + mean * (self._lamb_for(grad) * on)
        return out
