"""Pixel arithmetic of ``scales-edge upscale`` around the model, defined to the bit.

The native runner (runner/pixels.cc) computes the same bytes, and so does every platform: only
IEEE element-wise operations in a fixed order (numpy's add and multiply round each result; no BLAS,
whose kernels change the summation order with the array's shape and the CPU, no fused multiply-add,
no OpenCV, whose ``resize`` takes a different path when it has Intel IPP or an ARM HAL).

* :func:`to_model` / :func:`quantize`: ``v / peak`` in float32 in; ``round(clip(y, 0, 1) * peak)``
  out (float32 multiply, round half to even), ``peak`` 255 or 65535;
* :func:`to_gray`: an RGB output back to gray, ``(0.299 R + 0.587 G) + 0.114 B`` in float32
  (BT.601 weights, as OpenCV's ``RGB2GRAY``);
* :func:`resize_cubic`: the alpha channel, upscaled bicubically: OpenCV's ``INTER_CUBIC`` kernel
  (Keys, a = -0.75, weights computed in float32 as OpenCV does) and pixel-centre alignment, edge
  pixels repeated, the two separable passes in float64 (taps left to right), rounded half to even.
  Within one level of ``cv2.resize(..., INTER_CUBIC)``, and equal to it where OpenCV runs its own
  float code.
"""

from __future__ import annotations

import numpy as np

__all__ = ["LUMA", "quantize", "resize_cubic", "to_gray"]

#: BT.601 luma weights (R, G, B), float32.
LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def to_gray(y: np.ndarray) -> np.ndarray:
    """``[3, h, w]`` float32 RGB → ``[1, h, w]`` float32 luma."""
    y = np.asarray(y, np.float32)
    return (LUMA[0] * y[0] + LUMA[1] * y[1] + LUMA[2] * y[2])[None]


def quantize(y: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Model output (float32 on ~[0, 1]) → ``uint8`` or ``uint16``."""
    peak = np.float32(255.0 if np.dtype(dtype) == np.uint8 else 65535.0)
    return np.round(np.clip(np.asarray(y, np.float32), 0.0, 1.0) * peak).astype(dtype)


def _cubic_taps(n: int, s: int) -> tuple[np.ndarray, np.ndarray]:
    """Source indices ``[n*s, 4]`` (clamped to the image) and float64 weights ``[n*s, 4]``."""
    d = np.arange(n * s, dtype=np.float64)
    f = ((d + 0.5) * (1.0 / s) - 0.5).astype(np.float32)  # OpenCV: float((dx + 0.5) * scale - 0.5)
    i0 = np.floor(f)
    x = (f - i0).astype(np.float32)
    a, one = np.float32(-0.75), np.float32(1.0)
    x1, x2 = x + one, one - x
    c0 = ((a * x1 - np.float32(5) * a) * x1 + np.float32(8) * a) * x1 - np.float32(4) * a
    c1 = ((a + np.float32(2)) * x - (a + np.float32(3))) * x * x + one
    c2 = ((a + np.float32(2)) * x2 - (a + np.float32(3))) * x2 * x2 + one
    c3 = one - c0 - c1 - c2
    idx = np.clip(i0.astype(np.int64)[:, None] + np.arange(-1, 3), 0, n - 1)
    return idx, np.stack([c0, c1, c2, c3], axis=1).astype(np.float64)


def resize_cubic(plane: np.ndarray, s: int) -> np.ndarray:
    """``H x W`` ``uint8``/``uint16`` → ``sH x sW`` of the same type (see the module docstring)."""
    plane = np.asarray(plane)
    if plane.ndim != 2 or plane.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"resize_cubic takes an H x W uint8 or uint16 plane, not {plane.dtype} {plane.shape}")
    h, w = plane.shape
    yi, yw = _cubic_taps(h, s)
    xi, xw = _cubic_taps(w, s)
    p = plane.astype(np.float64)
    rows = p[:, xi[:, 0]] * xw[:, 0]
    for k in range(1, 4):
        rows = rows + p[:, xi[:, k]] * xw[:, k]
    out = rows[yi[:, 0]] * yw[:, 0, None]
    for k in range(1, 4):
        out = out + rows[yi[:, k]] * yw[:, k, None]
    peak = 255.0 if plane.dtype == np.uint8 else 65535.0
    return np.rint(np.clip(out, 0.0, peak)).astype(plane.dtype)
