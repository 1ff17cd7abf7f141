"""Numpy reference of the ``scales_edge`` ONNX operator domain, versions 1 to 3.

This module is the executable form of ``docs/ops.md``: the contract between the exporter, this
reference and the C++ op library (``ops/``). It is written from the document alone, independent
of the C++ code, and favours plainness over speed: signs are unpacked to +1/-1 integers and the
convolution is an explicit sum over kernel taps in int64 on a zero-padded input (a tap in the
padding contributes 0).

Public functions
    sign(x)                                  +1 where x >= 0, -1 elsewhere (NaN included)
    pack_bits(values, axis) / unpack_bits(words, length, axis)
    binary_conv2d_acc(...) / binary_conv2d(...)
    binary_linear_acc(...) / binary_linear(...)
    scales_conv2d(...)                       the fused SCALES convolution (version 2; its
                                             pixel_shuffle attribute: version 3)
    scales_linear(...)                       the fused SCALES linear layer (version 3)
    window_attention(...)                    windowed multi-head attention (version 3)
    custom_ops()                             OpRun classes for onnx.reference.ReferenceEvaluator

Malformed inputs raise ``ValueError`` whose message starts with ``scales_edge.<Op>:``, in the
spirit of the error statuses of the C++ library.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

DOMAIN = "scales_edge"
DOMAIN_VERSION = 3
WORD_BITS = 64
#: Largest value of a size attribute (kernel_shape, strides, pads, dilations): 2^31 - 1.
MAX_ATTRIBUTE = 2**31 - 1

__all__ = [
    "DOMAIN",
    "DOMAIN_VERSION",
    "sign",
    "pack_bits",
    "unpack_bits",
    "packed_length",
    "conv_output_size",
    "binary_conv2d_acc",
    "binary_conv2d",
    "binary_linear_acc",
    "binary_linear",
    "scales_conv2d",
    "scales_linear",
    "window_attention",
    "gelu",
    "layer_norm",
    "BinaryConv2d",
    "ScalesConv2d",
    "BinaryLinear",
    "ScalesLinear",
    "WindowAttention",
    "custom_ops",
]


def packed_length(bits: int) -> int:
    """Number of uint64 words holding ``bits`` signs: ceil(bits / 64)."""
    return (int(bits) + WORD_BITS - 1) // WORD_BITS


def sign(x: np.ndarray) -> np.ndarray:
    """sign(v) = +1 if v >= 0 else -1 (also for NaN), as int8. ``torch.sign``'s 0 never occurs."""
    x = np.asarray(x)
    return np.where(x >= 0, np.int8(1), np.int8(-1)).astype(np.int8)


def pack_bits(values: np.ndarray, axis: int = -1) -> np.ndarray:
    """Packs the signs of ``values`` along ``axis`` into little-endian uint64 words.

    Element ``k`` of the axis goes to bit ``k % 64`` of word ``k // 64``; the bit is 1 where
    sign(value) = -1 (value < 0 or NaN) and 0 where value >= 0, so both raw values and +1/-1 sign
    arrays can be given. Padding bits of the last word are 0. The packed axis becomes the last
    axis of the result: ``[..., ceil(K/64)]`` with the other axes in their original order (e.g.
    weights ``[M, C, kH, kW]`` packed along axis 1 give the ``[M, kH, kW, ceil(C/64)]`` of W).
    """
    values = np.asarray(values)
    if values.dtype == np.bool_:
        raise ValueError("pack_bits: boolean input is ambiguous; pass values or +1/-1 signs")
    if values.ndim == 0:
        raise ValueError("pack_bits: need at least one dimension")
    moved = np.moveaxis(values, axis, -1)
    k = moved.shape[-1]
    if k < 1:
        raise ValueError("pack_bits: the packed axis is empty")
    bits = (~(moved >= 0)).astype(np.uint8)  # NaN >= 0 is False -> bit 1
    kw = packed_length(k)
    pad = kw * WORD_BITS - k
    if pad:
        bits = np.concatenate([bits, np.zeros(bits.shape[:-1] + (pad,), np.uint8)], axis=-1)
    as_bytes = np.packbits(bits, axis=-1, bitorder="little")  # [..., kw*8], bit j of byte b = element 8b+j
    words = np.ascontiguousarray(as_bytes).view("<u8")
    return words.astype(np.uint64).reshape(moved.shape[:-1] + (kw,))


def unpack_bits(words: np.ndarray, length: int, axis: int = -1) -> np.ndarray:
    """Inverse of :func:`pack_bits` for signs: the last axis of ``words`` (``ceil(length/64)``
    words) becomes ``length`` signs (+1/-1, int8) placed at ``axis`` of the result. Padding bits
    are ignored (readers must not depend on them)."""
    words = np.asarray(words)
    if words.dtype != np.uint64:
        raise ValueError(f"unpack_bits: words must be uint64, got {words.dtype}")
    if words.ndim == 0:
        raise ValueError("unpack_bits: need at least one dimension")
    length = int(length)
    if length < 1 or words.shape[-1] != packed_length(length):
        raise ValueError(
            f"unpack_bits: last dim {words.shape[-1]} does not hold {length} bits "
            f"(needs ceil({length}/64) = {packed_length(length)})"
        )
    as_bytes = np.ascontiguousarray(words.astype("<u8")).view(np.uint8)
    bits = np.unpackbits(as_bytes, axis=-1, bitorder="little")[..., :length]
    signs = (1 - 2 * bits.astype(np.int8)).astype(np.int8)
    return np.moveaxis(signs, -1, axis)


# --------------------------------------------------------------------------- validation helpers


def _err(op: str, msg: str) -> ValueError:
    return ValueError(f"scales_edge.{op}: {msg}")


def _float_array(op: str, name: str, value) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype != np.float32:
        raise _err(op, f"input '{name}' must be float32, got {arr.dtype}")
    return arr


def _vector(op: str, name: str, value, n: int, what: str) -> np.ndarray:
    arr = _float_array(op, name, value)
    if arr.shape != (n,):
        raise _err(op, f"input '{name}' must have shape [{what}] = [{n}], got {list(arr.shape)}")
    return arr


def _ints(op: str, name: str, value, count: int, default: int, minimum: int) -> list[int]:
    if value is None:
        return [default] * count
    try:
        vals = [int(v) for v in value]
    except TypeError:
        raise _err(op, f"attribute '{name}' must be a list of ints, got {value!r}") from None
    if len(vals) != count:
        raise _err(op, f"attribute '{name}' must have {count} values, got {vals}")
    if any(v < minimum or v > MAX_ATTRIBUTE for v in vals):
        raise _err(op, f"attribute '{name}' = {vals} is invalid; each value must be from {minimum} to {MAX_ATTRIBUTE}")
    return vals


def conv_output_size(size: int, kernel: int, stride: int, pad_begin: int, pad_end: int,
                     dilation: int) -> int:
    """floor((size + pad_begin + pad_end - dilation*(kernel-1) - 1) / stride) + 1 (may be < 1)."""
    extent = size + pad_begin + pad_end - dilation * (kernel - 1) - 1
    return extent // stride + 1 if extent >= 0 else 0


# --------------------------------------------------------------------------- BinaryConv2d


def _check_conv(X, beta, W, scale, bias, kernel_shape, strides, pads, dilations, group):
    op = "BinaryConv2d"
    X = _float_array(op, "X", X)
    if X.ndim != 4:
        raise _err(op, f"input 'X' must be 4-D [N, C, H, W], got {X.ndim}-D shape {list(X.shape)}")
    n, c, h, w = X.shape
    if c < 1 or h < 1 or w < 1:
        raise _err(op, f"input 'X' has shape {list(X.shape)}; C, H and W must be >= 1")
    if n < 1:
        raise _err(op, "the output would be empty: input 'X' has batch size 0")
    beta = _float_array(op, "beta", beta)
    if beta.shape != (c,):
        raise _err(op, f"input 'beta' has shape {list(beta.shape)} but X {list(X.shape)} has "
                       f"C = {c} channels; beta must be [C]")
    if kernel_shape is None:
        raise _err(op, "attribute 'kernel_shape' is required")
    ks = _ints(op, "kernel_shape", kernel_shape, 2, 1, 1)
    st = _ints(op, "strides", strides, 2, 1, 1)
    pd = _ints(op, "pads", pads, 4, 0, 0)
    dl = _ints(op, "dilations", dilations, 2, 1, 1)
    if group is not None and int(group) != 1:
        raise _err(op, f"attribute 'group' = {int(group)} is not supported; only group = 1")
    W = np.asarray(W)
    if W.dtype != np.uint64:
        raise _err(op, f"input 'W' must be uint64, got {W.dtype}")
    if W.ndim != 4:
        raise _err(op, f"input 'W' must be 4-D [M, kH, kW, ceil(C/64)], got shape {list(W.shape)}")
    m = W.shape[0]
    if m < 1:
        raise _err(op, f"input 'W' has shape {list(W.shape)}: needs at least one output channel")
    if list(W.shape[1:3]) != ks:
        raise _err(op, f"input 'W' has shape {list(W.shape)} whose kernel dims (1-2) "
                       f"{list(W.shape[1:3])} differ from kernel_shape {ks}")
    if W.shape[3] != packed_length(c):
        raise _err(op, f"input 'W' has shape {list(W.shape)} but its last dim must be ceil(C/64) = "
                       f"{packed_length(c)} for C = {c} input channels (packed-weight size mismatch)")
    if scale is not None:  # None: accumulators only
        scale = _vector(op, "scale", scale, m, "M")
    if bias is not None:
        bias = _vector(op, "bias", bias, m, "M")
    oh = conv_output_size(h, ks[0], st[0], pd[0], pd[2], dl[0])
    ow = conv_output_size(w, ks[1], st[1], pd[1], pd[3], dl[1])
    if oh < 1 or ow < 1:
        raise _err(op, f"the output would be empty: input spatial size {[h, w]} with pads {pd} is "
                       f"smaller than the dilated kernel "
                       f"{[dl[0] * (ks[0] - 1) + 1, dl[1] * (ks[1] - 1) + 1]}")
    return X, beta, W, scale, bias, ks, st, pd, dl, (n, c, h, w, m, oh, ow)


def binary_conv2d_acc(X, beta, W_packed, kernel_shape=None, strides=None, pads=None,
                      dilations=None, group=1) -> np.ndarray:
    """Exact accumulators of BinaryConv2d, int64 ``[N, M, OH, OW]``.

    acc[n, m, oh, ow] = sum over the taps inside the input of sign(X - beta) * Wsign (docs/ops.md).
    """
    X, beta, W, _, _, ks, st, pd, dl, dims = _check_conv(
        X, beta, W_packed, None, None, kernel_shape, strides, pads, dilations, group)
    return _conv_acc(X, beta, W, ks, st, pd, dl, dims)


def _conv_acc(X, beta, W, ks, st, pd, dl, dims) -> np.ndarray:
    n, c, h, w, m, oh, ow = dims
    xs = sign(X - beta.reshape(1, c, 1, 1)).astype(np.int64)          # [N, C, H, W], +1/-1
    ws = unpack_bits(W, c, axis=1).astype(np.int64)                    # [M, C, kH, kW]
    padded = np.zeros((n, c, h + pd[0] + pd[2], w + pd[1] + pd[3]), np.int64)  # padding = 0
    padded[:, :, pd[0]:pd[0] + h, pd[1]:pd[1] + w] = xs
    acc = np.zeros((n, m, oh, ow), np.int64)
    for i in range(ks[0]):
        r0 = i * dl[0]
        for j in range(ks[1]):
            c0 = j * dl[1]
            window = padded[:, :, r0:r0 + st[0] * (oh - 1) + 1:st[0],
                            c0:c0 + st[1] * (ow - 1) + 1:st[1]]        # [N, C, OH, OW]
            acc += np.einsum("nchw,mc->nmhw", window, ws[:, :, i, j])
    return acc


def binary_conv2d(X, beta, W_packed, scale, bias=None, kernel_shape=None, strides=None,
                  pads=None, dilations=None, group=1) -> np.ndarray:
    """BinaryConv2d: ``Y = float32(acc) * scale[m] + bias[m]`` (float32 multiply, then add),
    float32 ``[N, M, OH, OW]``. ``bias=None`` means 0."""
    if scale is None:
        raise _err("BinaryConv2d", "input 'scale' is required")
    X, beta, W, scale, bias, ks, st, pd, dl, dims = _check_conv(
        X, beta, W_packed, scale, bias, kernel_shape, strides, pads, dilations, group)
    acc = _conv_acc(X, beta, W, ks, st, pd, dl, dims)
    m = dims[4]
    if bias is None:
        bias = np.zeros(m, np.float32)
    prod = acc.astype(np.float32) * scale.reshape(1, m, 1, 1)
    return (prod + bias.reshape(1, m, 1, 1)).astype(np.float32)


# --------------------------------------------------------------------------- ScalesConv2d


def _sigmoid32(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, np.float32)
    return (np.float32(1) / (np.float32(1) + np.exp(-v))).astype(np.float32)


def _pixel_shuffle(z: np.ndarray, r: int) -> np.ndarray:
    """Y[n, f, h*r + i, w*r + j] = Z[n, f*r*r + i*r + j, h, w] (DepthToSpace, mode CRD)."""
    n, m, h, w = z.shape
    f = m // (r * r)
    return z.reshape(n, f, r, r, h, w).transpose(0, 1, 4, 2, 5, 3).reshape(n, f, h * r, w * r)


def scales_conv2d(X, beta, W_packed, scale, bias=None, spatial_weight=None, spatial_bias=None,
                  channel_weight=None, kernel_shape=None, strides=None, pads=None, dilations=None,
                  group=1, skip=0, channel_from_output=0, pixel_shuffle=1) -> np.ndarray:
    """ScalesConv2d (version 2): ``Y = ((BinaryConv2d(X) * S) * Cs) + X`` in float32, each factor
    or term present only with its input or attribute (docs/ops.md).

    S  = sigmoid(sum_c spatial_weight[c] * X[n, c, oh*sH, ow*sW] + spatial_bias)
    Cs = sigmoid(Conv1d over the channel axis (zero padding k//2, no bias) of the per-channel mean
         of X, or with ``channel_from_output=1`` of ``BinaryConv2d(X) * S``)
    The reference sums in float64 and rounds each sum to float32 once.

    ``pixel_shuffle = r > 1`` (version 3): the op's ``M = r²·F`` channels ``BinaryConv2d(X) * S``
    are pixel-shuffled to ``[N, F, OH*r, OW*r]`` first; ``Cs`` then has one entry per feature
    ``f`` (pooled from ``X[f]``, or from the shuffled plane ``f``) and the skip adds ``X[f]`` to
    each of the ``r x r`` pixels of its LR pixel (the input repeated ``r²`` times along the
    channels, shuffled). Multiplying and adding after the shuffle is the same arithmetic per
    element as the contract's order before it.
    """
    op = "ScalesConv2d"
    y = binary_conv2d(X, beta, W_packed, scale, bias, kernel_shape=kernel_shape, strides=strides,
                      pads=pads, dilations=dilations, group=group)
    X = np.asarray(X, np.float32)
    n, c, h, w = X.shape
    m, oh, ow = y.shape[1:]
    st = _ints(op, "strides", strides, 2, 1, 1)
    r = int(pixel_shuffle)
    if r < 1:
        raise _err(op, f"attribute 'pixel_shuffle' = {r} is invalid; it must be >= 1")
    if r > 1 and (m % (r * r) or st != [1, 1]):
        raise _err(op, f"pixel_shuffle {r} needs M a multiple of {r * r} and strides [1, 1] "
                       f"(M = {m}, strides {st})")
    flags = {}
    for name, value in (("skip", skip), ("channel_from_output", channel_from_output)):
        if int(value) not in (0, 1):
            raise _err(op, f"attribute '{name}' = {int(value)} is invalid; it must be 0 or 1")
        flags[name] = bool(int(value))
    if (spatial_weight is None) != (spatial_bias is None):
        raise _err(op, "inputs 'spatial_weight' (5) and 'spatial_bias' (6) must be given together")
    if spatial_weight is not None:
        sw = _vector(op, "spatial_weight", spatial_weight, c, "C")
        sb = _vector(op, "spatial_bias", spatial_bias, 1, "1")
        sub = X[:, :, ::st[0], ::st[1]]
        if sub.shape[2:] != (oh, ow):
            raise _err(op, f"the spatial re-scaling (a 1x1 conv with the op's strides, no padding) "
                           f"gives {list(sub.shape[2:])} pixels but the binary conv gives {[oh, ow]}")
        dot = np.einsum("nchw,c->nhw", sub.astype(np.float64), sw.astype(np.float64))
        S = _sigmoid32(dot.astype(np.float32) + sb[0])
        y = (y * S[:, None]).astype(np.float32)
    f = m // (r * r)  # output channels (features); M when r = 1
    if r > 1:
        y = _pixel_shuffle(y, r)
    if channel_weight is not None:
        cw = _float_array(op, "channel_weight", channel_weight)
        if cw.ndim != 1 or cw.size < 1 or cw.size % 2 != 1:
            raise _err(op, f"input 'channel_weight' must be [k] with k odd, got shape {list(cw.shape)}")
        source = y if flags["channel_from_output"] else X
        if not flags["channel_from_output"] and c != f:
            what = "M" if r == 1 else "F = M / r²"
            raise _err(op, f"channel re-scaling from the input needs C == {what} (C = {c}, {what} = {f})")
        mean = source.astype(np.float64).mean(axis=(2, 3)).astype(np.float32)  # [N, F]
        k = cw.size
        padded = np.pad(mean.astype(np.float64), ((0, 0), (k // 2, k // 2)))
        conv = sum(cw[t].astype(np.float64) * padded[:, t:t + f] for t in range(k))
        Cs = _sigmoid32(conv.astype(np.float32))
        y = (y * Cs[:, :, None, None]).astype(np.float32)
    if flags["skip"]:
        if (c, h, w) != (f, oh, ow):
            what = "M" if r == 1 else "F"
            raise _err(op, f"the skip needs an output of the input's shape: C, H, W = {[c, h, w]} "
                           f"but {what}, OH, OW = {[f, oh, ow]}")
        up = X if r == 1 else np.repeat(np.repeat(X, r, axis=2), r, axis=3)
        y = (y + up).astype(np.float32)
    return y


# --------------------------------------------------------------------------- BinaryLinear


def _check_linear(X, beta, W, scale, bias):
    op = "BinaryLinear"
    X = _float_array(op, "X", X)
    if X.ndim < 2:
        raise _err(op, f"input 'X' must have rank >= 2 [..., K], got shape {list(X.shape)}")
    k = X.shape[-1]
    if k < 1:
        raise _err(op, f"input 'X' has shape {list(X.shape)}; K must be >= 1")
    if X.size == 0:
        raise _err(op, f"the output would be empty: input 'X' has shape {list(X.shape)}")
    beta = _float_array(op, "beta", beta)
    if beta.shape != (k,):
        raise _err(op, f"input 'beta' has shape {list(beta.shape)} but X {list(X.shape)} has "
                       f"K = {k} features; beta must be [K]")
    W = np.asarray(W)
    if W.dtype != np.uint64:
        raise _err(op, f"input 'W' must be uint64, got {W.dtype}")
    if W.ndim != 2:
        raise _err(op, f"input 'W' must be 2-D [M, ceil(K/64)], got shape {list(W.shape)}")
    m = W.shape[0]
    if m < 1:
        raise _err(op, f"input 'W' has shape {list(W.shape)}: needs at least one output feature")
    if W.shape[1] != packed_length(k):
        raise _err(op, f"input 'W' has shape {list(W.shape)} but its last dim must be ceil(K/64) = "
                       f"{packed_length(k)} for K = {k} input features (packed-weight size mismatch)")
    if scale is not None:  # None: accumulators only
        scale = _vector(op, "scale", scale, m, "M")
    if bias is not None:
        bias = _vector(op, "bias", bias, m, "M")
    return X, beta, W, scale, bias, k, m


def binary_linear_acc(X, beta, W_packed) -> np.ndarray:
    """Exact accumulators of BinaryLinear, int64 ``[..., M]``:
    acc[..., m] = sum_k sign(X[..., k] - beta[k]) * Wsign[m, k]."""
    X, beta, W, _, _, k, _ = _check_linear(X, beta, W_packed, None, None)
    return _linear_acc(X, beta, W, k)


def _linear_acc(X, beta, W, k) -> np.ndarray:
    xs = sign(X - beta).astype(np.int64)               # [..., K]
    ws = unpack_bits(W, k, axis=-1).astype(np.int64)   # [M, K]
    return np.einsum("...k,mk->...m", xs, ws)


def binary_linear(X, beta, W_packed, scale, bias=None) -> np.ndarray:
    """BinaryLinear: ``Y[..., m] = float32(acc) * scale[m] + bias[m]``, float32 ``[..., M]``."""
    if scale is None:
        raise _err("BinaryLinear", "input 'scale' is required")
    X, beta, W, scale, bias, k, m = _check_linear(X, beta, W_packed, scale, bias)
    acc = _linear_acc(X, beta, W, k)
    if bias is None:
        bias = np.zeros(m, np.float32)
    return ((acc.astype(np.float32) * scale) + bias).astype(np.float32)


# --------------------------------------------------------------------------- ScalesLinear (v3)

ACTIVATIONS = ("none", "gelu")


def gelu(v: np.ndarray) -> np.ndarray:
    """GELU with the exact error function, ``0.5 * v * (1 + erf(v / sqrt(2)))``, in float64."""
    v = np.asarray(v, np.float64)
    return 0.5 * v * (1.0 + _erf(v / math.sqrt(2.0)))


_erf = np.vectorize(math.erf, otypes=[np.float64])


def layer_norm(X, weight, bias, epsilon) -> np.ndarray:
    """LayerNorm over the last axis (biased variance), computed in float64, rounded to float32."""
    x = np.asarray(X, np.float64)
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    out = (x - mean) / np.sqrt(var + float(epsilon)) * weight.astype(np.float64) + bias.astype(np.float64)
    return out.astype(np.float32)


def scales_linear(X, beta, W_packed, scale, bias=None, spatial_weight=None, spatial_bias=None,
                  residual=None, norm_weight=None, norm_bias=None, activation="none",
                  norm_epsilon=1e-5) -> np.ndarray:
    """ScalesLinear (version 3): ``Y = act(BinaryLinear(X') * S) + R`` in float32, each factor or
    term present only with its input or attribute (docs/ops.md).

    X' = LayerNorm(X) with ``norm_weight``, ``norm_bias`` and ``norm_epsilon`` when given, else X;
    S = sigmoid(sum_k spatial_weight[k] * X'[..., k] + spatial_bias), one value per row;
    act = GELU (exact erf form) when ``activation = "gelu"``; R = ``residual`` ([..., M], Y's
    shape). The reference computes the LayerNorm, the sum of S and GELU in float64, rounding each
    to float32 once."""
    op = "ScalesLinear"
    if isinstance(activation, bytes):
        activation = activation.decode()
    if activation not in ACTIVATIONS:
        raise _err(op, f"attribute 'activation' = {activation!r} is invalid; it must be one of "
                       f"{list(ACTIVATIONS)}")
    X = _float_array(op, "X", X)
    if (norm_weight is None) != (norm_bias is None):
        raise _err(op, "inputs 'norm_weight' (8) and 'norm_bias' (9) must be given together")
    eps = float(norm_epsilon)  # checked with or without the norm inputs, as the attribute is
    if not 0.0 < eps <= 1.0:
        raise _err(op, f"attribute 'norm_epsilon' = {eps} is invalid; it must be in (0, 1]")
    if norm_weight is not None:
        k = X.shape[-1] if X.ndim else 0
        X = layer_norm(X, _vector(op, "norm_weight", norm_weight, k, "K"),
                       _vector(op, "norm_bias", norm_bias, k, "K"), eps)
    y = binary_linear(X, beta, W_packed, scale, bias)
    k = X.shape[-1]
    if (spatial_weight is None) != (spatial_bias is None):
        raise _err(op, "inputs 'spatial_weight' (5) and 'spatial_bias' (6) must be given together")
    if spatial_weight is not None:
        sw = _vector(op, "spatial_weight", spatial_weight, k, "K")
        sb = _vector(op, "spatial_bias", spatial_bias, 1, "1")
        dot = X.astype(np.float64) @ sw.astype(np.float64)                 # [...]
        S = _sigmoid32(dot.astype(np.float32) + sb[0])
        y = (y * S[..., None]).astype(np.float32)
    if activation == "gelu":
        y = gelu(y).astype(np.float32)
    if residual is not None:
        r = _float_array(op, "residual", residual)
        if r.shape != y.shape:
            raise _err(op, f"input 'residual' has shape {list(r.shape)} but the output has shape "
                           f"{list(y.shape)}; they must be equal")
        y = (y + r).astype(np.float32)
    return y


# --------------------------------------------------------------------------- WindowAttention (v3)

#: The additive attention mask between tokens of different regions of a shifted window.
SHIFT_MASK_VALUE = -100.0


def _attention_attrs(op, qkv_shape, num_heads, window_size, shift_size, key_window_size, scale):
    if len(qkv_shape) != 4:
        raise _err(op, f"input 'QKV' must be 4-D [N, H, W, 3C], got shape {list(qkv_shape)}")
    n, h, w, c3 = (int(v) for v in qkv_shape)
    if min(h, w, c3) < 1:
        raise _err(op, f"input 'QKV' has shape {list(qkv_shape)}; H, W and 3C must be >= 1")
    if n < 1:
        raise _err(op, "the output would be empty: input 'QKV' has batch size 0")
    for name, value in (("num_heads", num_heads), ("window_size", window_size), ("scale", scale)):
        if value is None:
            raise _err(op, f"attribute '{name}' is required")
    heads, ws = int(num_heads), int(window_size)
    shift = 0 if shift_size is None else int(shift_size)
    kws = ws if key_window_size is None else int(key_window_size)
    if heads < 1:
        raise _err(op, f"attribute 'num_heads' = {heads} is invalid; it must be >= 1")
    if ws < 1:
        raise _err(op, f"attribute 'window_size' = {ws} is invalid; it must be >= 1")
    if not 0 <= shift < ws:
        raise _err(op, f"attribute 'shift_size' = {shift} is invalid; it must be in [0, window_size = {ws})")
    if kws < ws or (kws - ws) % 2:
        raise _err(op, f"attribute 'key_window_size' = {kws} is invalid; it must be >= window_size = {ws} "
                       f"and exceed it by an even number")
    if kws != ws and shift:
        raise _err(op, f"shift_size = {shift} needs key_window_size = window_size ({kws} != {ws})")
    if c3 % (3 * heads):
        raise _err(op, f"input 'QKV' has {c3} channels, not 3 * C with C a multiple of num_heads = {heads}")
    if h % ws or w % ws:
        raise _err(op, f"input 'QKV' has H, W = {[h, w]}, not multiples of window_size = {ws}")
    if not np.isfinite(float(scale)):
        raise _err(op, f"attribute 'scale' = {scale} is not finite")
    return n, h, w, c3 // 3, heads, ws, shift, kws, np.float32(scale)


def _region_labels(size: int, ws: int, shift: int) -> np.ndarray:
    idx = np.arange(size)
    return (idx >= size - ws).astype(np.int64) + (idx >= size - shift).astype(np.int64)


def window_attention(QKV, bias_table, bias_index, num_heads=None, window_size=None, shift_size=0,
                     key_window_size=None, scale=None) -> np.ndarray:
    """WindowAttention (version 3): multi-head self-attention inside windows of a
    ``[N, H, W, 3C]`` map of per-pixel q | k | v, with a relative position bias, optional cyclic
    shift (with its region mask) and optional enlarged key windows; ``[N, H, W, C]`` float32.
    Windows are addressed by index (docs/ops.md); the reference computes every product, sum and
    exponential in float64 from the float32 ``q * scale``."""
    op = "WindowAttention"
    qkv = _float_array(op, "QKV", QKV)
    n, h, w, c, heads, ws, shift, kws, sc = _attention_attrs(
        op, qkv.shape, num_heads, window_size, shift_size, key_window_size, scale)
    d = c // heads
    nq, nk = ws * ws, kws * kws
    table = _float_array(op, "bias_table", bias_table)
    if table.ndim != 2 or table.shape[1] != heads or table.shape[0] < 1:
        raise _err(op, f"input 'bias_table' must be [T, num_heads] = [T, {heads}] with T >= 1, "
                       f"got shape {list(table.shape)}")
    t = table.shape[0]
    index = np.asarray(bias_index)
    if index.dtype != np.int64:
        raise _err(op, f"input 'bias_index' must be int64, got {index.dtype}")
    if index.shape != (nq, nk):
        raise _err(op, f"input 'bias_index' must have shape [window_size^2, key_window_size^2] = "
                       f"{[nq, nk]}, got {list(index.shape)}")
    if index.size and (index.min() < -t or index.max() >= t):
        raise _err(op, f"input 'bias_index' has entries outside [-T, T) = [{-t}, {t})")
    bias = table[np.where(index < 0, index + t, index)].astype(np.float64)   # [nq, nk, heads]
    bias = np.moveaxis(bias, -1, 0)                                            # [heads, nq, nk]

    pad = (kws - ws) // 2
    q_img = (qkv[..., :c] * sc).astype(np.float32).astype(np.float64)          # q * scale, float32
    k_img = qkv[..., c:2 * c].astype(np.float64)
    v_img = qkv[..., 2 * c:].astype(np.float64)
    y = np.zeros((n, h, w, c), np.float32)
    band_h, band_w = _region_labels(h, ws, shift), _region_labels(w, ws, shift)
    qi, qj = np.divmod(np.arange(nq), ws)
    ki, kj = np.divmod(np.arange(nk), kws)
    for a in range(h // ws):
        for b in range(w // ws):
            # positions in the shifted map, and the pixels they hold: (y + shift) mod H
            qy, qx = a * ws + qi, b * ws + qj
            ky, kx = a * ws - pad + ki, b * ws - pad + kj
            inside = (ky >= 0) & (ky < h) & (kx >= 0) & (kx < w)
            oqy, oqx = (qy + shift) % h, (qx + shift) % w
            oky, okx = (np.clip(ky, 0, h - 1) + shift) % h, (np.clip(kx, 0, w - 1) + shift) % w
            q = q_img[:, oqy, oqx].reshape(n, nq, heads, d)
            k = np.where(inside[None, :, None], k_img[:, oky, okx], 0.0).reshape(n, nk, heads, d)
            v = np.where(inside[None, :, None], v_img[:, oky, okx], 0.0).reshape(n, nk, heads, d)
            logits = np.einsum("nqhd,nkhd->nhqk", q, k) + bias[None]
            if shift:
                lq = band_h[qy] * 3 + band_w[qx]
                lk = band_h[ky] * 3 + band_w[kx]
                logits = logits + np.where(lq[:, None] != lk[None, :], SHIFT_MASK_VALUE, 0.0)
            logits = logits - logits.max(axis=-1, keepdims=True)
            p = np.exp(logits)
            p = p / p.sum(axis=-1, keepdims=True)
            out = np.einsum("nhqk,nkhd->nqhd", p, v).reshape(n, nq, c)
            y[:, oqy, oqx] = out.astype(np.float32)
    return y


# --------------------------------------------------------------------------- ReferenceEvaluator

try:  # onnx is a dependency of the package, but keep the numpy functions usable without it
    from onnx.reference.op_run import OpRun as _OpRun
except ImportError:  # pragma: no cover
    _OpRun = None


def _reject_unknown(op: str, attrs: dict, allowed: Sequence[str]) -> None:
    unknown = sorted(set(attrs) - set(allowed))
    if unknown:
        raise _err(op, f"unsupported attribute(s) {unknown}; supported: {list(allowed)}")


if _OpRun is not None:

    class BinaryConv2d(_OpRun):
        """``scales_edge.BinaryConv2d`` v1 for ``onnx.reference.ReferenceEvaluator``."""

        op_domain = DOMAIN

        def _run(self, X, beta, W, scale, bias=None, **attrs):  # noqa: N803
            _reject_unknown("BinaryConv2d", attrs,
                            ("kernel_shape", "strides", "pads", "dilations", "group"))
            return (binary_conv2d(X, beta, W, scale, bias,
                                  kernel_shape=attrs.get("kernel_shape"),
                                  strides=attrs.get("strides"), pads=attrs.get("pads"),
                                  dilations=attrs.get("dilations"),
                                  group=attrs.get("group", 1)),)

    class BinaryLinear(_OpRun):
        """``scales_edge.BinaryLinear`` v1 for ``onnx.reference.ReferenceEvaluator``."""

        op_domain = DOMAIN

        def _run(self, X, beta, W, scale, bias=None, **attrs):  # noqa: N803
            _reject_unknown("BinaryLinear", attrs, ())
            return (binary_linear(X, beta, W, scale, bias),)

    class ScalesConv2d(_OpRun):
        """``scales_edge.ScalesConv2d`` v2 (and v3's ``pixel_shuffle``) for
        ``onnx.reference.ReferenceEvaluator``."""

        op_domain = DOMAIN

        def _run(self, X, beta, W, scale, bias=None, spatial_weight=None, spatial_bias=None,  # noqa: N803
                 channel_weight=None, **attrs):
            _reject_unknown("ScalesConv2d", attrs,
                            ("kernel_shape", "strides", "pads", "dilations", "group", "skip",
                             "channel_from_output", "pixel_shuffle"))
            return (scales_conv2d(X, beta, W, scale, bias, spatial_weight, spatial_bias,
                                  channel_weight, kernel_shape=attrs.get("kernel_shape"),
                                  strides=attrs.get("strides"), pads=attrs.get("pads"),
                                  dilations=attrs.get("dilations"), group=attrs.get("group", 1),
                                  skip=attrs.get("skip", 0),
                                  channel_from_output=attrs.get("channel_from_output", 0),
                                  pixel_shuffle=attrs.get("pixel_shuffle", 1)),)

    class ScalesLinear(_OpRun):
        """``scales_edge.ScalesLinear`` v3 for ``onnx.reference.ReferenceEvaluator``."""

        op_domain = DOMAIN

        def _run(self, X, beta, W, scale, bias=None, spatial_weight=None, spatial_bias=None,  # noqa: N803
                 residual=None, norm_weight=None, norm_bias=None, **attrs):
            _reject_unknown("ScalesLinear", attrs, ("activation", "norm_epsilon"))
            eps = attrs.get("norm_epsilon")
            return (scales_linear(X, beta, W, scale, bias, spatial_weight, spatial_bias, residual,
                                  norm_weight, norm_bias, activation=attrs.get("activation") or "none",
                                  norm_epsilon=1e-5 if eps is None else eps),)

    class WindowAttention(_OpRun):
        """``scales_edge.WindowAttention`` v3 for ``onnx.reference.ReferenceEvaluator``."""

        op_domain = DOMAIN

        def _run(self, QKV, bias_table, bias_index, **attrs):  # noqa: N803
            _reject_unknown("WindowAttention", attrs,
                            ("num_heads", "window_size", "shift_size", "key_window_size", "scale"))
            return (window_attention(QKV, bias_table, bias_index, **attrs),)

    def custom_ops() -> list[type]:
        """OpRun classes of the domain: ``ReferenceEvaluator(model, new_ops=custom_ops())``."""
        return [BinaryConv2d, BinaryLinear, ScalesConv2d, ScalesLinear, WindowAttention]

else:  # pragma: no cover

    def custom_ops() -> list[type]:
        raise ImportError("custom_ops() needs the onnx package (onnx.reference)")
