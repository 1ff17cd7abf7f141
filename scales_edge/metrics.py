"""Image quality metrics compatible with BasicSR's PSNR / SSIM evaluation.

Conventions
-----------
* Images are ``H x W x C`` numpy arrays in **RGB** channel order with values on
  ``[0, 255]`` (``uint8``, or a float array already scaled to ``[0, 255]``).
  Gray images may be ``H x W`` or ``H x W x 1``.
* ``crop_border`` pixels are removed from each of the four sides before the
  metric is computed (the usual "shave ``scale`` pixels" convention of
  super-resolution papers).  ``crop_border=0`` keeps the whole image.
* With ``test_y_channel=True`` (the default, as in most SR papers) colour
  images are reduced to the Y channel of ITU-R BT.601 YCbCr with the ``+16``
  offset ("studio swing", values on ``[16, 235]``), computed in float64 and
  *not* rounded::

      Y = 16 + (65.481 * R + 128.553 * G + 24.966 * B) / 255

  This is what BasicSR's ``to_y_channel`` computes for an image read with
  OpenCV (BGR order); here the input is RGB, so the coefficients are applied
  to ``(R, G, B)``.  BasicSR performs this conversion in float32, this module
  in float64: values agree to ~1e-5 gray levels.
* PSNR is ``10 * log10(255**2 / MSE)`` computed in float64, ``inf`` for
  identical inputs.
* SSIM follows Wang et al. (2004) exactly as BasicSR implements it: an 11x11
  Gaussian window with sigma 1.5 (outer product of
  ``cv2.getGaussianKernel(11, 1.5)``), local statistics by ``cv2.filter2D``
  of which only the "valid" part ``[5:-5, 5:-5]`` is kept, constants
  ``C1 = (0.01 * 255)**2`` and ``C2 = (0.03 * 255)**2``, and the mean of the
  SSIM map.  For colour images evaluated without the Y conversion, SSIM is
  computed per channel and averaged.

Tensor helpers convert between network tensors (``N x C x H x W`` float on
``[0, 1]``, RGB) and ``uint8`` images; torch is imported lazily so that the
metrics themselves only need numpy and OpenCV.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

if TYPE_CHECKING:  # pragma: no cover - typing only
    import torch

__all__ = [
    "rgb_to_y",
    "calculate_psnr",
    "calculate_ssim",
    "tensor_to_uint8",
    "uint8_to_tensor",
]

#: BT.601 luma coefficients for R, G, B (applied to [0, 255] values, then / 255).
_Y_COEFFS = np.array([65.481, 128.553, 24.966], dtype=np.float64)
_Y_OFFSET = 16.0

#: SSIM constants for an 8-bit dynamic range (L = 255).
_SSIM_C1 = (0.01 * 255.0) ** 2
_SSIM_C2 = (0.03 * 255.0) ** 2
_SSIM_WIN = 11
_SSIM_SIGMA = 1.5
_SSIM_PAD = _SSIM_WIN // 2


def rgb_to_y(img: np.ndarray) -> np.ndarray:
    """Return the BT.601 Y channel (``[16, 235]`` range) of an RGB image.

    Args:
        img: ``H x W x 3`` RGB image with values on ``[0, 255]`` (any dtype).
            Gray images (``H x W`` or ``H x W x 1``) are returned unchanged
            as float64 ``H x W`` arrays.

    Returns:
        ``H x W`` float64 array ``16 + (65.481 R + 128.553 G + 24.966 B) / 255``
        (not rounded).
    """
    arr = np.asarray(img)
    if arr.ndim == 2:
        return arr.astype(np.float64)
    if arr.ndim == 3 and arr.shape[2] == 1:
        return arr[..., 0].astype(np.float64)
    if arr.ndim == 3 and arr.shape[2] == 3:
        return _Y_OFFSET + (arr.astype(np.float64) @ _Y_COEFFS) / 255.0
    raise ValueError(
        f"rgb_to_y expects an HxWx3 RGB image or an HxW / HxWx1 gray image, got shape {arr.shape}"
    )


def _prepare_pair(
    img: np.ndarray, ref: np.ndarray, crop_border: int, test_y_channel: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Validate, crop and optionally Y-convert a pair; returns float64 HxWxC arrays."""
    a = np.asarray(img)
    b = np.asarray(ref)
    if a.shape != b.shape:
        raise ValueError(f"image shapes differ: img has shape {a.shape}, ref has shape {b.shape}")
    if a.ndim not in (2, 3):
        raise ValueError(f"expected an HxW or HxWxC image, got shape {a.shape}")
    if isinstance(crop_border, bool) or not isinstance(crop_border, (int, np.integer)):
        raise TypeError(f"crop_border must be an int, got {crop_border!r}")
    if crop_border < 0:
        raise ValueError(f"crop_border must be >= 0, got {crop_border}")
    if a.ndim == 2:
        a = a[..., None]
        b = b[..., None]
    h, w = a.shape[:2]
    if 2 * crop_border >= h or 2 * crop_border >= w:
        raise ValueError(
            f"crop_border={crop_border} removes the whole image of size {h}x{w}"
        )
    if crop_border:
        a = a[crop_border:-crop_border, crop_border:-crop_border, :]
        b = b[crop_border:-crop_border, crop_border:-crop_border, :]
    if test_y_channel and a.shape[2] == 3:
        a = rgb_to_y(a)[..., None]
        b = rgb_to_y(b)[..., None]
    elif test_y_channel and a.shape[2] != 1:
        raise ValueError(
            f"test_y_channel=True needs an RGB (3-channel) or gray image, got {a.shape[2]} channels"
        )
    return a.astype(np.float64), b.astype(np.float64)


def calculate_psnr(
    img: np.ndarray, ref: np.ndarray, crop_border: int, test_y_channel: bool = True
) -> float:
    """Peak signal-to-noise ratio in dB for 8-bit-range images (BasicSR convention).

    Args:
        img: ``H x W x C`` (or ``H x W``) RGB image on ``[0, 255]``.
        ref: reference image of the same shape.
        crop_border: pixels removed from each side before evaluation.
        test_y_channel: evaluate on the BT.601 Y channel (see :func:`rgb_to_y`).

    Returns:
        ``10 * log10(255**2 / MSE)``; ``float('inf')`` when the (cropped)
        images are identical.

    Raises:
        ValueError: shapes differ, or the crop leaves nothing.
    """
    a, b = _prepare_pair(img, ref, crop_border, test_y_channel)
    mse = float(np.mean((a - b) ** 2))
    if mse == 0.0:
        return float("inf")
    return float(10.0 * np.log10(255.0**2 / mse))


def _ssim_window() -> np.ndarray:
    kernel = cv2.getGaussianKernel(_SSIM_WIN, _SSIM_SIGMA)
    return np.outer(kernel, kernel.transpose())


def _ssim_single_channel(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM of two float64 HxW arrays (BasicSR's ``_ssim``)."""
    window = _ssim_window()
    p = _SSIM_PAD
    valid = (slice(p, -p), slice(p, -p))

    def filt(x: np.ndarray) -> np.ndarray:
        return cv2.filter2D(x, -1, window)[valid]

    mu1 = filt(a)
    mu2 = filt(b)
    mu1_sq = mu1**2
    mu2_sq = mu2**2
    mu1_mu2 = mu1 * mu2
    sigma1_sq = filt(a**2) - mu1_sq
    sigma2_sq = filt(b**2) - mu2_sq
    sigma12 = filt(a * b) - mu1_mu2
    ssim_map = ((2 * mu1_mu2 + _SSIM_C1) * (2 * sigma12 + _SSIM_C2)) / (
        (mu1_sq + mu2_sq + _SSIM_C1) * (sigma1_sq + sigma2_sq + _SSIM_C2)
    )
    return float(ssim_map.mean())


def calculate_ssim(
    img: np.ndarray, ref: np.ndarray, crop_border: int, test_y_channel: bool = True
) -> float:
    """Structural similarity index (BasicSR / Wang et al. 2004 convention).

    Args:
        img: ``H x W x C`` (or ``H x W``) RGB image on ``[0, 255]``.
        ref: reference image of the same shape.
        crop_border: pixels removed from each side before evaluation.
        test_y_channel: evaluate on the BT.601 Y channel; otherwise SSIM is
            computed per channel and averaged.

    Returns:
        Mean SSIM (1.0 for identical images).

    Raises:
        ValueError: shapes differ, the crop leaves nothing, or the cropped
            image is smaller than the 11x11 SSIM window.
    """
    a, b = _prepare_pair(img, ref, crop_border, test_y_channel)
    h, w = a.shape[:2]
    if h < _SSIM_WIN or w < _SSIM_WIN:
        raise ValueError(
            f"SSIM needs images of at least {_SSIM_WIN}x{_SSIM_WIN} pixels after cropping, "
            f"got {h}x{w}"
        )
    scores = [_ssim_single_channel(a[..., c], b[..., c]) for c in range(a.shape[2])]
    return float(np.mean(scores))


def _is_torch_tensor(x: Any) -> bool:
    return type(x).__module__.startswith("torch") and hasattr(x, "detach")


def tensor_to_uint8(t: "torch.Tensor | np.ndarray") -> np.ndarray:
    """Convert a network output on ``[0, 1]`` to an 8-bit image.

    Args:
        t: torch tensor or numpy float array of shape ``1 x C x H x W`` or
            ``C x H x W`` with ``C`` = 3 (RGB) or 1 (gray).

    Returns:
        ``H x W x 3`` uint8 RGB image (``H x W`` for one channel): the input
        clamped to ``[0, 1]``, multiplied by 255 and rounded to nearest
        (ties to even, as ``np.round`` / ``torch.round``).
    """
    if _is_torch_tensor(t):
        arr = t.detach().to("cpu").double().numpy()
    else:
        arr = np.asarray(t, dtype=np.float64)
    if arr.ndim == 4:
        if arr.shape[0] != 1:
            raise ValueError(
                f"tensor_to_uint8 converts a single image; got a batch of {arr.shape[0]} "
                f"(shape {tuple(arr.shape)})"
            )
        arr = arr[0]
    if arr.ndim != 3 or arr.shape[0] not in (1, 3):
        raise ValueError(
            f"tensor_to_uint8 expects 1xCxHxW or CxHxW with C in (1, 3), got shape {tuple(arr.shape)}"
        )
    if not np.all(np.isfinite(arr)):
        raise ValueError("tensor_to_uint8: input contains NaN or infinite values")
    img = np.round(np.clip(arr, 0.0, 1.0) * 255.0).astype(np.uint8)
    img = np.transpose(img, (1, 2, 0))
    if img.shape[2] == 1:
        img = img[..., 0]
    return np.ascontiguousarray(img)


def uint8_to_tensor(img: np.ndarray) -> "torch.Tensor":
    """Convert an 8-bit image to a ``1 x C x H x W`` float32 tensor on ``[0, 1]``.

    Args:
        img: ``H x W x 3`` uint8 RGB image, or ``H x W`` / ``H x W x 1`` gray.

    Returns:
        ``1 x 3 x H x W`` (or ``1 x 1 x H x W`` for gray) float32 tensor
        equal to ``img / 255``.
    """
    import torch

    arr = np.asarray(img)
    if arr.dtype != np.uint8:
        raise TypeError(f"uint8_to_tensor expects a uint8 image, got dtype {arr.dtype}")
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 3):
        raise ValueError(
            f"uint8_to_tensor expects an HxWx3 RGB or HxW / HxWx1 gray image, got shape {arr.shape}"
        )
    chw = np.ascontiguousarray(np.transpose(arr, (2, 0, 1)))
    return (torch.from_numpy(chw).to(torch.float32) / 255.0).unsqueeze(0)
