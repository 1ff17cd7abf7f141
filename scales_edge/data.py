"""Image I/O, MATLAB-compatible bicubic resizing and LR-image generation.

Conventions
-----------
* In-memory images are numpy arrays ``H x W x C`` in **RGB** order (``H x W``
  for gray), ``uint8`` on ``[0, 255]`` unless stated otherwise.  OpenCV's BGR
  order never leaks out of :func:`imread` / :func:`imwrite`; only
  :func:`imread_any` returns OpenCV's raw array (BGR/BGRA, possibly 16-bit).
* Low-resolution (LR) images are made the way the SR literature (and
  BasicSR's MATLAB scripts) makes them: the HR image is cropped to a multiple
  of the scale (:func:`modcrop`) and downscaled with MATLAB's
  ``imresize(img, 1/scale)`` — bicubic, with antialiasing
  (:func:`make_lr`).  :func:`imresize` re-implements MATLAB's algorithm
  (``imresize.m`` / ``contributions``):

  - Keys cubic kernel with ``a = -0.5``, support 4 input pixels.
  - On downscaling (``scale < 1``) the kernel is stretched by ``1/scale`` and
    its weights multiplied by ``scale`` (antialiasing).
  - Output pixel ``x`` (1-based) maps to input coordinate
    ``u = x / scale + 0.5 * (1 - 1 / scale)``; the taps are
    ``floor(u - width/2) + [0, ceil(width) + 2)``.
  - Each output pixel's weights are normalised to sum to 1; taps outside the
    image are mirrored symmetrically (``1..n, n..1``, i.e. edge pixel
    repeated); tap columns whose weights are all zero are trimmed.
  - Output size is ``ceil(in_size * scale)``.
  - Dimensions are resized one at a time, the one with the smaller scale
    first (ties: height first, as MATLAB's stable sort gives).
  - ``uint8`` input: every 1-D pass returns ``uint8`` as MATLAB's
    ``imresizemex`` does (round half away from zero, saturate to
    ``[0, 255]``), so the intermediate image is quantised too.  Float input
    is computed and returned in float64, neither rounded nor clipped.
"""

from __future__ import annotations

import importlib.util
import math
import os
from pathlib import Path
from typing import Sequence, Union

import cv2
import numpy as np

from .errors import ScalesEdgeError

__all__ = [
    "ImageError",
    "IMAGE_EXTENSIONS",
    "imread",
    "imread_any",
    "imwrite",
    "modcrop",
    "imresize",
    "make_lr",
    "list_images",
    "sample_photos",
]

PathLike = Union[str, "os.PathLike[str]"]

#: File extensions (lower case, with dot) recognised as images by :func:`list_images`.
IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


class ImageError(ScalesEdgeError, ValueError):
    """An image file or folder could not be read or written (the message names it).

    A :class:`ValueError` (and a :class:`~scales_edge.errors.ScalesEdgeError`,
    which the CLI reports as a one-line error).
    """


# --------------------------------------------------------------------------- I/O


def imread_any(path: PathLike) -> np.ndarray:
    """Read an image exactly as OpenCV decodes it (``cv2.IMREAD_UNCHANGED``).

    The result keeps OpenCV's conventions: channel order BGR / BGRA, gray
    images as ``H x W``, and the file's bit depth (``uint8``, ``uint16``,
    ``float32`` ...).  Use :func:`imread` for the project's RGB ``uint8``
    convention.

    Raises:
        ImageError: the file is missing, is not a regular file, is empty,
            cannot be read, or cannot be decoded as an image.
    """
    p = Path(path)
    if not p.exists():
        raise ImageError(f"cannot read image '{p}': file not found")
    if not p.is_file():
        raise ImageError(f"cannot read image '{p}': not a regular file")
    try:
        buf = np.fromfile(str(p), dtype=np.uint8)
    except OSError as exc:
        raise ImageError(f"cannot read image '{p}': {exc.strerror or exc}") from exc
    if buf.size == 0:
        raise ImageError(f"cannot read image '{p}': file is empty")
    try:
        img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:  # some decoders raise instead of returning None
        raise ImageError(f"cannot read image '{p}': not an image (OpenCV: {exc})") from exc
    if img is None or img.size == 0:
        raise ImageError(
            f"cannot read image '{p}': not an image (OpenCV could not decode its "
            f"{buf.size} bytes)"
        )
    return img


def imread(path: PathLike) -> np.ndarray:
    """Read an image file as an ``H x W x 3`` RGB ``uint8`` array.

    Gray images are replicated to three channels, an alpha channel is
    dropped, and 16-bit images are scaled to 8 bits (``round(v / 257)``, so
    65535 maps to 255).

    Raises:
        ImageError: unreadable file (see :func:`imread_any`) or an unsupported
            pixel format (e.g. floating-point HDR data).
    """
    raw = imread_any(path)
    if raw.dtype == np.uint16:
        raw = np.floor(raw.astype(np.float64) / 257.0 + 0.5).astype(np.uint8)
    elif raw.dtype != np.uint8:
        raise ImageError(
            f"cannot read image '{path}': unsupported pixel type {raw.dtype} "
            "(only 8- and 16-bit images are converted; use imread_any for raw data)"
        )
    if raw.ndim == 2:
        return np.ascontiguousarray(np.repeat(raw[..., None], 3, axis=2))
    channels = raw.shape[2]
    if channels == 1:
        return np.ascontiguousarray(np.repeat(raw, 3, axis=2))
    if channels == 3:
        return cv2.cvtColor(raw, cv2.COLOR_BGR2RGB)
    if channels == 4:
        return cv2.cvtColor(raw, cv2.COLOR_BGRA2RGB)
    raise ImageError(f"cannot read image '{path}': unsupported channel count {channels}")


def imwrite(path: PathLike, rgb_uint8: np.ndarray) -> None:
    """Write an RGB (or gray) ``uint8`` image; the format follows the extension.

    Parent folders are created as needed. The file is written to a temporary file beside it and
    renamed into place, so an interrupted write leaves the previous file (or none).

    Args:
        path: destination file, e.g. ``out/img.png``.
        rgb_uint8: ``H x W x 3`` RGB, ``H x W x 4`` RGBA, or ``H x W`` /
            ``H x W x 1`` gray, dtype ``uint8``.

    Raises:
        ImageError: wrong dtype/shape, unknown extension, or OpenCV / the file
            system failed to write the file.
    """
    p = Path(path)
    img = np.asarray(rgb_uint8)
    if img.dtype != np.uint8:
        raise ImageError(f"cannot write image '{p}': expected dtype uint8, got {img.dtype}")
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    if img.ndim == 3 and img.shape[2] == 3:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    elif img.ndim == 3 and img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_RGBA2BGRA)
    elif img.ndim != 2:
        raise ImageError(
            f"cannot write image '{p}': expected HxW, HxWx1, HxWx3 or HxWx4, got shape {img.shape}"
        )
    if img.size == 0:
        raise ImageError(f"cannot write image '{p}': image is empty (shape {img.shape})")
    ext = p.suffix
    if not ext:
        raise ImageError(f"cannot write image '{p}': no file extension to choose a format")
    try:
        ok, encoded = cv2.imencode(ext, img)
    except cv2.error as exc:
        raise ImageError(f"cannot write image '{p}': OpenCV cannot encode '{ext}' ({exc})") from exc
    if not ok:
        raise ImageError(f"cannot write image '{p}': OpenCV failed to encode '{ext}'")
    from .fileio import atomic_write_bytes

    try:  # a temporary file renamed into place: never half an image
        atomic_write_bytes(p, encoded.tobytes())
    except OSError as exc:
        raise ImageError(f"cannot write image '{p}': {exc.strerror or exc}") from exc


# ----------------------------------------------------------------- geometry


def _check_scale_int(scale: int) -> int:
    if isinstance(scale, bool) or not isinstance(scale, (int, np.integer)) or scale < 1:
        raise ValueError(f"scale must be a positive integer, got {scale!r}")
    return int(scale)


def modcrop(img: np.ndarray, scale: int) -> np.ndarray:
    """Crop height and width down to multiples of ``scale`` (from the bottom/right).

    Works on ``H x W`` and ``H x W x C`` arrays; returns a view.
    """
    s = _check_scale_int(scale)
    arr = np.asarray(img)
    if arr.ndim not in (2, 3):
        raise ValueError(f"modcrop expects an HxW or HxWxC image, got shape {arr.shape}")
    h, w = arr.shape[:2]
    h2, w2 = h - h % s, w - w % s
    if h2 == 0 or w2 == 0:
        raise ValueError(f"image of size {h}x{w} is smaller than the scale {s}")
    return arr[:h2, :w2, ...]


def _cubic(x: np.ndarray) -> np.ndarray:
    """MATLAB's cubic kernel (Keys, a = -0.5)."""
    ax = np.abs(x)
    ax2 = ax * ax
    ax3 = ax2 * ax
    return (1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1) + (
        -0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0
    ) * ((ax > 1) & (ax <= 2))


_KERNEL_WIDTH = 4.0


def _contributions(
    in_length: int, out_length: int, scale: float, antialiasing: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """MATLAB ``contributions``: per-output-pixel weights and 0-based input indices.

    Returns:
        ``(weights, indices)``, both ``out_length x P``: output pixel ``i`` is
        ``sum_k weights[i, k] * input[indices[i, k]]``.  Rows sum to 1.
    """
    if scale < 1 and antialiasing:
        width = _KERNEL_WIDTH / scale

        def kernel(d: np.ndarray) -> np.ndarray:
            return scale * _cubic(scale * d)

    else:
        width = _KERNEL_WIDTH
        kernel = _cubic
    x = np.arange(1, out_length + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1.0 - 1.0 / scale)
    left = np.floor(u - width / 2.0)
    taps = int(math.ceil(width)) + 2
    idx = left[:, None] + np.arange(taps, dtype=np.float64)[None, :]  # 1-based
    weights = kernel(u[:, None] - idx)
    weights = weights / weights.sum(axis=1, keepdims=True)
    mirror = np.concatenate([np.arange(in_length), np.arange(in_length - 1, -1, -1)])
    indices = mirror[np.mod(idx.astype(np.int64) - 1, 2 * in_length)]
    keep = np.any(weights != 0, axis=0)
    return weights[:, keep], indices[:, keep]


def _resize_axis(
    arr: np.ndarray, axis: int, out_length: int, scale: float, antialiasing: bool
) -> np.ndarray:
    """Resize float64 ``arr`` along ``axis`` (0 or 1); one vectorised pass per tap."""
    weights, indices = _contributions(arr.shape[axis], out_length, scale, antialiasing)
    src = np.moveaxis(arr, axis, 0)
    bshape = (out_length,) + (1,) * (src.ndim - 1)
    out = np.zeros((out_length,) + src.shape[1:], dtype=np.float64)
    for k in range(weights.shape[1]):
        out += weights[:, k].reshape(bshape) * src[indices[:, k]]
    return np.moveaxis(out, 0, axis)


def _quantize_uint8(x: np.ndarray) -> np.ndarray:
    """MATLAB's double -> uint8 cast: saturate, round half away from zero."""
    return np.floor(np.clip(x, 0.0, 255.0) + 0.5).astype(np.uint8)


def imresize(
    img: np.ndarray,
    scale: float | Sequence[float],
    antialiasing: bool = True,
) -> np.ndarray:
    """MATLAB-compatible ``imresize(img, scale)`` with the default bicubic kernel.

    Args:
        img: ``H x W`` or ``H x W x C`` array, ``uint8`` or floating point.
        scale: resize factor, or ``(scale_h, scale_w)``; output size is
            ``ceil(H * scale_h) x ceil(W * scale_w)``.
        antialiasing: MATLAB's ``'Antialiasing'`` option (default ``True``;
            only affects downscaling).

    Returns:
        ``uint8`` for ``uint8`` input (each pass rounded and saturated like
        MATLAB), otherwise float64 (not clipped).
    """
    arr = np.asarray(img)
    if arr.ndim not in (2, 3):
        raise ValueError(f"imresize expects an HxW or HxWxC image, got shape {arr.shape}")
    if arr.dtype == np.bool_ or not (
        arr.dtype == np.uint8 or np.issubdtype(arr.dtype, np.floating)
    ):
        raise TypeError(f"imresize supports uint8 and floating-point images, got {arr.dtype}")
    if np.isscalar(scale):
        scales = (float(scale), float(scale))  # type: ignore[arg-type]
    else:
        seq = tuple(float(s) for s in scale)  # type: ignore[union-attr]
        if len(seq) != 2:
            raise ValueError(f"scale must be a number or a (scale_h, scale_w) pair, got {scale!r}")
        scales = seq
    if not all(math.isfinite(s) and s > 0 for s in scales):
        raise ValueError(f"scale must be positive and finite, got {scale!r}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"cannot resize an empty image of shape {arr.shape}")
    out_sizes = [int(math.ceil(arr.shape[d] * scales[d])) for d in (0, 1)]

    is_uint8 = arr.dtype == np.uint8
    order = sorted((0, 1), key=lambda d: scales[d])  # stable: height first on ties
    out: np.ndarray = arr
    for d in order:
        res = _resize_axis(out.astype(np.float64), d, out_sizes[d], scales[d], antialiasing)
        out = _quantize_uint8(res) if is_uint8 else res
    return out


def make_lr(hr_uint8: np.ndarray, scale: int) -> np.ndarray:
    """Low-resolution counterpart of an HR image: ``imresize(modcrop(hr, s), 1/s)``.

    Args:
        hr_uint8: ``H x W x C`` (or ``H x W``) ``uint8`` HR image.
        scale: integer SR factor (2, 3, 4, ...).

    Returns:
        ``uint8`` LR image of size ``(H // s) x (W // s)``.
    """
    s = _check_scale_int(scale)
    hr = np.asarray(hr_uint8)
    if hr.dtype != np.uint8:
        raise TypeError(f"make_lr expects a uint8 image, got dtype {hr.dtype}")
    return imresize(modcrop(hr, s), 1.0 / s)


# ----------------------------------------------------------------- discovery


def list_images(folder: PathLike) -> list[Path]:
    """Sorted image files (by file name) directly inside ``folder``.

    Recognised extensions: ``IMAGE_EXTENSIONS``, case-insensitive.

    Raises:
        FileNotFoundError: the folder does not exist.
        ImageError: the path is not a folder, or the folder holds no image file.
    """
    d = Path(folder)
    if not d.exists():
        raise FileNotFoundError(f"image folder '{d}' does not exist")
    if not d.is_dir():
        raise ImageError(f"cannot list images in '{d}': not a folder")
    files = sorted(
        (p for p in d.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS),
        key=lambda p: p.name,
    )
    if not files:
        raise ImageError(
            f"image folder '{d}' contains no image files ({', '.join(IMAGE_EXTENSIONS)})"
        )
    return files


#: Colour photographs (RGB, at least 256 px per side) shipped inside packages.
_SKIMAGE_PHOTOS: tuple[str, ...] = (
    "astronaut.png",
    "chelsea.png",
    "coffee.png",
    "motorcycle_left.png",
    "motorcycle_right.png",
    "rocket.jpg",
    "hubble_deep_field.jpg",
)
_MATPLOTLIB_PHOTOS: tuple[str, ...] = ("grace_hopper.jpg",)


def _package_dir(name: str) -> Path | None:
    """Folder of an installed package, found without importing it."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    if spec.origin:
        return Path(spec.origin).parent
    return None


def sample_photos() -> dict[str, Path]:
    """Real photographs that ship inside installed packages (no download).

    Looks in scikit-image's ``skimage/data`` and matplotlib's
    ``mpl-data/sample_data`` folders, without importing either package.

    Returns:
        ``{name: path}`` with names such as ``"astronaut"``, ``"coffee"``,
        ``"grace_hopper"`` (file stem), in a fixed order; only files present
        on this machine are listed.

    Raises:
        FileNotFoundError: neither package (or none of the photos) is installed.
    """
    found: dict[str, Path] = {}
    sources = (
        ("skimage", ("data",), _SKIMAGE_PHOTOS),
        ("matplotlib", ("mpl-data", "sample_data"), _MATPLOTLIB_PHOTOS),
    )
    for package, subdirs, names in sources:
        root = _package_dir(package)
        if root is None:
            continue
        folder = root.joinpath(*subdirs)
        for name in names:
            path = folder / name
            if path.is_file():
                found[Path(name).stem] = path
    if not found:
        raise FileNotFoundError(
            "no sample photos found: install scikit-image and/or matplotlib "
            "(pip install scikit-image matplotlib), which ship them in "
            "skimage/data and matplotlib/mpl-data/sample_data"
        )
    return found
