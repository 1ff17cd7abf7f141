"""Bit-packing of sign tensors into the ``scales_edge`` layout (docs/ops.md, "Bit packing").

Bit ``j`` of little-endian ``uint64`` word ``w`` holds element ``64*w + j`` of the packed axis;
bit = 1 for a -1 sign, 0 for +1; bits past the end of the axis are 0.
"""

from __future__ import annotations

import numpy as np


def pack_signs(signs: np.ndarray, axis: int = -1) -> np.ndarray:
    """Pack a ±1 (or any real: negative ↦ bit 1) array along ``axis``; that axis becomes last.

    Returns a ``uint64`` array whose last dimension is ``ceil(K/64)`` words.
    """
    a = np.moveaxis(np.asarray(signs), axis, -1)
    k = a.shape[-1]
    if k == 0:
        raise ValueError("cannot pack an empty axis")
    words = -(-k // 64)
    bits = np.zeros(a.shape[:-1] + (words * 64,), dtype=np.uint8)
    bits[..., :k] = a < 0
    packed = np.packbits(bits, axis=-1, bitorder="little")  # 8 bytes per word, byte 0 lowest
    return np.ascontiguousarray(packed).view("<u8").astype(np.uint64, copy=False)


def pack_conv_weight(weight_sign: np.ndarray) -> np.ndarray:
    """``[M, C, kH, kW]`` signs → ``uint64 [M, kH, kW, ceil(C/64)]`` (packing axis: input channel)."""
    if weight_sign.ndim != 4:
        raise ValueError(f"conv weights must be 4-D [M, C, kH, kW], got shape {weight_sign.shape}")
    return pack_signs(np.transpose(weight_sign, (0, 2, 3, 1)), axis=-1)


def pack_linear_weight(weight_sign: np.ndarray) -> np.ndarray:
    """``[M, K]`` signs → ``uint64 [M, ceil(K/64)]``."""
    if weight_sign.ndim != 2:
        raise ValueError(f"linear weights must be 2-D [M, K], got shape {weight_sign.shape}")
    return pack_signs(weight_sign, axis=-1)
