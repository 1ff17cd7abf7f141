"""The ``autograd.Function`` of each ``scales_edge`` op (docs/ops.md): ``forward`` computes the op's
inference formula in PyTorch, ``symbolic`` writes the op into the traced ONNX graph. The exporter
(:mod:`.onnx_export`) swaps the binary layers' cores (or whole layers, or attention modules) for
them while it traces; the helpers below turn a layer's parameters into the ops' arguments.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ScalesEdgeError
from ..nn import BinaryLinearBase, ScalesConv2d, ScalesLinear, sign_pm1
from ..runtime.contract import DOMAIN


class ExportError(ScalesEdgeError):
    """The model cannot be exported as asked."""


def _out_size(size: int | None, k: int, s: int, p0: int, p1: int, d: int) -> int | None:
    if size is None:
        return None
    return (size + p0 + p1 - d * (k - 1) - 1) // s + 1


class _BinaryConv2dFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, beta, packed, scale, bias, wsign, k, stride, pad, dil):  # type: ignore[override]
        xs = sign_pm1(x - beta.view(1, -1, 1, 1))
        y = F.conv2d(xs, wsign, None, stride, pad, dil)
        return y * scale.view(1, -1, 1, 1) + bias.view(1, -1, 1, 1)

    @staticmethod
    def symbolic(g, x, beta, packed, scale, bias, wsign, k, stride, pad, dil):
        y = g.op(
            f"{DOMAIN}::BinaryConv2d",
            x,
            beta,
            packed,
            scale,
            bias,
            kernel_shape_i=[k, k],
            strides_i=[stride, stride],
            pads_i=[pad, pad, pad, pad],
            dilations_i=[dil, dil],
            group_i=1,
        )
        m = int(wsign.type().sizes()[0]) if wsign.type().sizes() else None
        _set_conv_output_type(y, x, m, k, stride, pad, dil)
        return y


def _set_conv_output_type(y, x, m: int | None, k: int, stride: int, pad: int, dil: int, r: int = 1) -> None:
    sizes = x.type().varyingSizes() if x.type().kind() == "TensorType" else None
    if sizes is not None and len(sizes) == 4:
        oh = _out_size(sizes[2], k, stride, pad, pad, dil)
        ow = _out_size(sizes[3], k, stride, pad, pad, dil)
        if r > 1:  # pixel-shuffled output
            m = None if m is None else m // (r * r)
            oh, ow = (None if v is None else v * r for v in (oh, ow))
        y.setType(x.type().with_sizes([sizes[0], m, oh, ow]))


def _const_int(v) -> int:
    """A Python int, or the int of a constant graph value (how non-tensor arguments reach
    ``symbolic`` when the exported module is the layer itself)."""
    if isinstance(v, (bool, int)):
        return int(v)
    from torch.onnx import symbolic_helper

    return int(symbolic_helper._get_const(v, "i", "attribute"))


class _ScalesConv2dFn(torch.autograd.Function):
    """A whole :class:`ScalesConv2d` (inference formula) as one ``ScalesConv2d`` node.

    Absent branches are passed as empty tensors; :func:`_finish_binary_nodes` turns them into
    empty (omitted) optional inputs."""

    @staticmethod
    def forward(ctx, x, beta, packed, scale, bias, sw, sb, cw, wsign, k, stride, pad, dil, skip, from_output, r):  # type: ignore[override]
        y = _BinaryConv2dFn.forward(ctx, x, beta, packed, scale, bias, wsign, k, stride, pad, dil)
        if sw.numel():
            y = y * torch.sigmoid(F.conv2d(x, sw.view(1, -1, 1, 1), sb, stride))
        if r > 1:
            y = F.pixel_shuffle(y, r)
        if cw.numel():
            pooled = (y if from_output else x).mean(dim=(2, 3)).unsqueeze(1)
            cs = torch.sigmoid(F.conv1d(pooled, cw.view(1, 1, -1), padding=cw.numel() // 2))
            y = y * cs.squeeze(1)[:, :, None, None]
        if skip:
            y = y + (x if r == 1 else x.repeat_interleave(r, 2).repeat_interleave(r, 3))
        return y

    @staticmethod
    def symbolic(g, x, beta, packed, scale, bias, sw, sb, cw, wsign, k, stride, pad, dil, skip, from_output, r):
        k, stride, pad, dil, skip, from_output, r = map(_const_int, (k, stride, pad, dil, skip, from_output, r))
        shuffle = {"pixel_shuffle_i": r} if r > 1 else {}  # version 3's attribute, only when used
        y = g.op(
            f"{DOMAIN}::ScalesConv2d",
            x, beta, packed, scale, bias, sw, sb, cw,
            kernel_shape_i=[k, k],
            strides_i=[stride, stride],
            pads_i=[pad, pad, pad, pad],
            dilations_i=[dil, dil],
            group_i=1,
            skip_i=skip,
            channel_from_output_i=from_output,
            **shuffle,
        )
        m = int(wsign.type().sizes()[0]) if wsign.type().sizes() else None
        _set_conv_output_type(y, x, m, k, stride, pad, dil, r)
        return y


class _BinaryLinearFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, beta, packed, scale, bias, wsign):  # type: ignore[override]
        return F.linear(sign_pm1(x - beta), wsign) * scale + bias

    @staticmethod
    def symbolic(g, x, beta, packed, scale, bias, wsign):
        y = g.op(f"{DOMAIN}::BinaryLinear", x, beta, packed, scale, bias)
        sizes = x.type().varyingSizes() if x.type().kind() == "TensorType" else None
        m = int(wsign.type().sizes()[0]) if wsign.type().sizes() else None
        if sizes is not None:
            y.setType(x.type().with_sizes(list(sizes[:-1]) + [m]))
        return y


class _ScalesLinearFn(torch.autograd.Function):
    """A whole binary linear layer with its prologue and epilogue (inference formula) as one
    ``ScalesLinear`` node: ``act(core(x') * S(x')) + residual``, ``x' = LayerNorm(x)`` with the
    weights ``nw``, ``nb`` (empty: ``x' = x``). Absent branches are empty tensors (omitted inputs
    in the graph, see :func:`_finish_binary_nodes`); ``residual`` may be None."""

    @staticmethod
    def forward(ctx, x, residual, nw, nb, eps, beta, packed, scale, bias, sw, sb, wsign, act):  # type: ignore[override]
        if nw.numel():
            x = F.layer_norm(x, (x.shape[-1],), nw, nb, eps)
        y = _BinaryLinearFn.forward(ctx, x, beta, packed, scale, bias, wsign)
        if sw.numel():
            y = y * torch.sigmoid(F.linear(x, sw.view(1, -1), sb))
        if act == "gelu":
            y = F.gelu(y)
        return y if residual is None else y + residual

    @staticmethod
    def symbolic(g, x, residual, nw, nb, eps, beta, packed, scale, bias, sw, sb, wsign, act):
        inputs = [x, beta, packed, scale, bias, sw, sb]
        attrs: dict[str, Any] = {"activation_s": act} if act != "none" else {}
        norm = bool(nw.type().sizes() and nw.type().sizes()[0])
        if residual is not None or norm:
            inputs.append(residual if residual is not None else _empty(g))
        if norm:
            inputs += [nw, nb]
            attrs["norm_epsilon_f"] = float(eps)
        y = g.op(f"{DOMAIN}::ScalesLinear", *inputs, **attrs)
        sizes = x.type().varyingSizes() if x.type().kind() == "TensorType" else None
        m = int(wsign.type().sizes()[0]) if wsign.type().sizes() else None
        if sizes is not None:
            y.setType(x.type().with_sizes(list(sizes[:-1]) + [m]))
        return y


def _empty(g):
    """An omitted optional input: a constant of no elements, dropped by _finish_binary_nodes."""
    return g.op("Constant", value_t=torch.zeros(0))


class _WindowAttentionFn(torch.autograd.Function):
    """:func:`scales_edge.models.transformer_common.window_attention` as one ``WindowAttention``
    node (the bias table and index as its constant inputs)."""

    @staticmethod
    def forward(ctx, qkv, table, index, heads, ws, shift, kws, scale, channels):  # type: ignore[override]
        from ..models.transformer_common import window_attention

        return window_attention(qkv, table, index, heads, ws, shift, kws, scale)

    @staticmethod
    def symbolic(g, qkv, table, index, heads, ws, shift, kws, scale, channels):
        y = g.op(
            f"{DOMAIN}::WindowAttention", qkv, table, index,
            num_heads_i=heads, window_size_i=ws, shift_size_i=shift, key_window_size_i=kws, scale_f=scale,
        )
        sizes = qkv.type().varyingSizes() if qkv.type().kind() == "TensorType" else None
        y.setType(qkv.type().with_sizes((list(sizes[:3]) if sizes and len(sizes) == 4 else [None] * 3) + [channels]))
        return y


def _as_int64_bits(packed: np.ndarray) -> Tensor:
    return torch.from_numpy(np.ascontiguousarray(packed).view(np.int64).copy())


def _branch_args(layer: ScalesConv2d) -> tuple:
    """The fused op's extra arguments: spatial 1x1 weights and bias, channel Conv1d taps (empty
    tensors for an absent branch), skip, whether the channel branch pools the output, and the
    pixel shuffle of an upsampling layer (1: none)."""
    empty = torch.zeros(0)
    if layer.spatial is not None:
        sw = layer.spatial.weight.detach().reshape(-1).clone()
        sb = layer.spatial.bias.detach().clone() if layer.spatial.bias is not None else torch.zeros(1)
    else:
        sw = sb = empty
    cw = layer.channel.weight.detach().reshape(-1).clone() if layer.channel is not None else empty
    return sw, sb, cw, int(layer.skip), int(not layer.channel_from_input), int(layer.upscale)


def _linear_branch_args(layer: BinaryLinearBase) -> tuple[Tensor, Tensor]:
    """The fused linear's spatial weights and bias (empty tensors without a spatial branch)."""
    spatial = layer.spatial if isinstance(layer, ScalesLinear) else None
    if spatial is None:
        return torch.zeros(0), torch.zeros(0)
    sb = spatial.bias.detach().clone() if spatial.bias is not None else torch.zeros(1)
    return spatial.weight.detach().reshape(-1).clone(), sb


def _norm_args(norm: nn.Module | None) -> tuple[Tensor, Tensor, float]:
    """A fused linear's LayerNorm weights and epsilon (empty tensors without one)."""
    if norm is None:
        return torch.zeros(0), torch.zeros(0), 1e-5
    if not isinstance(norm, nn.LayerNorm) or len(norm.normalized_shape) != 1 or not norm.elementwise_affine:
        raise ExportError(f"a fused linear can take a LayerNorm over the features with weights, not {norm}")
    # copies made outside the tracer's view (from numpy): graph constants, not ops on parameters
    nw = torch.from_numpy(norm.weight.detach().numpy().copy())
    nb = torch.from_numpy(norm.bias.detach().numpy().copy()) if norm.bias is not None else torch.zeros_like(nw)
    return nw, nb, float(norm.eps)
