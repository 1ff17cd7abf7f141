"""Binarization primitives shared by every binary layer of scales-edge.

Sign convention (shared with the C++ ops of the ``scales_edge`` ONNX domain, see docs/ops.md)::

    sign(v) = +1  if v >= 0
              -1  otherwise

``torch.sign`` maps 0 to 0; it is never used in a forward pass here, so an input that sits exactly on
its threshold binarizes to +1 in PyTorch, in the numpy reference and in the C++ kernels alike.

Gradients use straight-through estimators (STE):

* activations: the clipped identity (hardtanh STE). ``d sign(v) / dv = 1`` where ``|v| <= clip``,
  0 elsewhere;
* weights: the same clipped STE on the latent full-precision weight; the per-output-channel scale
  ``mean|W_c|`` is differentiated normally.
"""

from __future__ import annotations

import torch
from torch import Tensor


def sign_pm1(v: Tensor) -> Tensor:
    """Exact ±1 sign with ``sign(0) = +1``, no gradient."""
    one = torch.ones((), dtype=v.dtype, device=v.device)
    return torch.where(v >= 0, one, -one)


class _SignSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, v: Tensor, clip: float) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(v)
        ctx.clip = clip
        return sign_pm1(v)

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        (v,) = ctx.saved_tensors
        return grad * (v.abs() <= ctx.clip).to(grad.dtype), None


def sign_ste(v: Tensor, clip: float = 1.0) -> Tensor:
    """Exact ±1 sign in the forward pass, clipped straight-through gradient in the backward pass."""
    if not (torch.is_grad_enabled() and v.requires_grad):
        return sign_pm1(v)
    return _SignSTE.apply(v, clip)


def weight_scale(weight: Tensor) -> Tensor:
    """Per-output-channel scale ``mean|W_c|`` (the first axis is the output channel)."""
    return weight.abs().flatten(1).mean(dim=1)


def binarize_weight(weight: Tensor) -> Tensor:
    """``mean|W_c| * sign(W_c)`` per output channel, STE on the sign."""
    scale = weight_scale(weight).view(-1, *([1] * (weight.dim() - 1)))
    return scale * sign_ste(weight)
