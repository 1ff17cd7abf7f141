"""Tests for scales_edge.data: image I/O, MATLAB-compatible imresize, LR generation."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from scales_edge import data
from scales_edge.data import (
    ImageError,
    imread,
    imread_any,
    imresize,
    imwrite,
    list_images,
    make_lr,
    modcrop,
    sample_photos,
)
from scales_edge.errors import ScalesEdgeError
from scales_edge.metrics import calculate_psnr

# ------------------------------------------------------------- naive reference


def _cubic_ref(x: float) -> float:
    """Keys cubic convolution kernel with a = -0.5, written out from its definition."""
    a = -0.5
    x = abs(x)
    if x <= 1:
        return (a + 2) * x**3 - (a + 3) * x**2 + 1
    if x <= 2:
        return a * x**3 - 5 * a * x**2 + 8 * a * x - 4 * a
    return 0.0


def _mirror(i: int, n: int) -> int:
    """Symmetric extension of 1-based index i over 1..n (edge pixel repeated), 0-based result."""
    period = 2 * n
    k = (i - 1) % period
    return k if k < n else period - 1 - k


def _resize_1d_ref(signal: np.ndarray, scale: float, antialias: bool = True) -> np.ndarray:
    """One output pixel at a time, straight from MATLAB's imresize description."""
    n = len(signal)
    out_n = math.ceil(n * scale)
    shrink = scale < 1 and antialias
    width = 4 / scale if shrink else 4.0
    out = np.zeros(out_n)
    for x in range(1, out_n + 1):
        u = x / scale + 0.5 * (1 - 1 / scale)
        left = math.floor(u - width / 2)
        taps = list(range(left, left + math.ceil(width) + 2))
        if shrink:
            w = [scale * _cubic_ref(scale * (u - j)) for j in taps]
        else:
            w = [_cubic_ref(u - j) for j in taps]
        total = sum(w)
        acc = 0.0
        for j, wj in zip(taps, w):
            acc += (wj / total) * signal[_mirror(j, n)]
        out[x - 1] = acc
    return out


def _resize_ref(img: np.ndarray, scale_h: float, scale_w: float, as_uint8: bool) -> np.ndarray:
    """Naive separable reference; smaller scale first; uint8 quantised after each pass."""
    cur = img.astype(np.float64)

    def quant(a: np.ndarray) -> np.ndarray:
        return np.floor(np.clip(a, 0, 255) + 0.5) if as_uint8 else a

    for axis in sorted((0, 1), key=lambda d: (scale_h, scale_w)[d]):
        s = (scale_h, scale_w)[axis]
        cur = quant(np.apply_along_axis(_resize_1d_ref, axis, cur, s))
    return cur.astype(np.uint8) if as_uint8 else cur


# ------------------------------------------------------------------- imresize


def test_imresize_published_matlab_values_without_antialiasing() -> None:
    # MATLAB output quoted in the Stack Overflow answer to "MATLAB vs C++ vs OpenCV -
    # imresize" (the answer that patches OpenCV's cubic coefficient to a = -0.5):
    #   >> M = reshape(0:15,4,4).';
    #   >> imresize(M,0.5,'bicubic','AntiAliasing',false)
    #   ans = 2.1875 4.3125; 10.6875 12.8125
    m = np.arange(16, dtype=np.float64).reshape(4, 4)
    out = imresize(m, 0.5, antialiasing=False)
    np.testing.assert_allclose(out, [[2.1875, 4.3125], [10.6875, 12.8125]], rtol=0, atol=1e-12)


def test_imresize_hand_derived_antialiased_ramp() -> None:
    # Downscale by 1/2 with antialiasing: kernel h(d) = 0.5 * cubic(0.5 d), width 8.
    # Output pixel x maps to u = 2x - 0.5.  At distances +-0.5, +-1.5, +-2.5, +-3.5
    # the weights are 111/256, 29/256, -9/256, -3/256 (sum 1).
    w = np.array([-3, -9, 29, 111, 111, 29, -9, -3]) / 256
    ramp = np.arange(16, dtype=np.float64)
    out = imresize(ramp[:, None], (0.5, 1.0))[:, 0]
    assert out.shape == (8,)
    # x = 1: u = 1.5, taps at 1-based positions -2..5, mirrored to 3,2,1,1,2,3,4,5
    # (values 2,1,0,0,1,2,3,4) -> (-6 - 9 + 0 + 0 + 111 + 58 - 27 - 12) / 256 = 115/256.
    assert out[0] == pytest.approx(float(w @ np.array([2, 1, 0, 0, 1, 2, 3, 4])), abs=1e-12)
    assert out[0] == pytest.approx(115 / 256, abs=1e-12)
    # Interior outputs (no mirroring) of a linear ramp are the ramp at u - 1 = 2x - 1.5.
    np.testing.assert_allclose(out[2:6], [4.5, 6.5, 8.5, 10.5], rtol=0, atol=1e-12)
    # Last pixel mirrors at the far end: symmetric to the first one.
    assert out[7] == pytest.approx(15 - 115 / 256, abs=1e-12)


def test_contributions_trim_zero_columns() -> None:
    weights, indices = data._contributions(16, 8, 0.5)
    # ceil(8) + 2 = 10 taps, the two outermost always have zero weight -> trimmed.
    assert weights.shape == indices.shape == (8, 8)
    assert np.all(np.any(weights != 0, axis=0))
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-15)
    np.testing.assert_array_equal(indices[0], [2, 1, 0, 0, 1, 2, 3, 4])


@pytest.mark.parametrize(
    ("scale_h", "scale_w"),
    [(0.5, 0.5), (1 / 3, 1 / 3), (0.25, 0.25), (2.0, 2.0), (3.0, 3.0), (0.75, 1.6), (2.0, 0.5)],
)
def test_imresize_matches_naive_reference_float(scale_h: float, scale_w: float) -> None:
    img = np.random.default_rng(10).uniform(0, 255, (13, 11, 2))
    out = imresize(img, (scale_h, scale_w))
    ref = _resize_ref(img, scale_h, scale_w, as_uint8=False)
    assert out.dtype == np.float64
    assert out.shape == ref.shape
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-9)


@pytest.mark.parametrize(("scale_h", "scale_w"), [(0.5, 0.5), (1 / 3, 1 / 3), (2.0, 0.5), (0.5, 3.0)])
def test_imresize_matches_naive_reference_uint8(scale_h: float, scale_w: float) -> None:
    img = np.random.default_rng(11).integers(0, 256, (12, 15, 3), dtype=np.uint8)
    out = imresize(img, (scale_h, scale_w))
    ref = _resize_ref(img, scale_h, scale_w, as_uint8=True)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, ref)


@pytest.mark.parametrize("scale", [0.5, 1 / 3, 0.25, 0.7, 2.0, 3.0, 1.5])
def test_imresize_constant_stays_constant(scale: float) -> None:
    f = np.full((17, 12, 3), 97.25)
    np.testing.assert_allclose(imresize(f, scale), 97.25, rtol=0, atol=1e-9)
    u = np.full((17, 12), 200, dtype=np.uint8)
    out = imresize(u, scale)
    assert out.dtype == np.uint8
    assert np.all(out == 200)


@pytest.mark.parametrize(
    ("shape", "scale", "expected"),
    [
        ((7, 9), 0.5, (4, 5)),
        ((7, 9, 3), 0.5, (4, 5, 3)),
        ((7, 9), 2, (14, 18)),
        ((10, 10), 1 / 3, (4, 4)),
        ((12, 30), 1 / 3, (4, 10)),
        ((5, 8), (2, 0.25), (10, 2)),
        ((1, 1), 0.5, (1, 1)),
    ],
)
def test_imresize_output_shape_uses_ceil(shape, scale, expected) -> None:
    assert imresize(np.zeros(shape), scale).shape == expected


def test_imresize_upscale_reproduces_linear_function_in_interior() -> None:
    h, w = 12, 14
    yy, xx = np.mgrid[1 : h + 1, 1 : w + 1].astype(np.float64)
    img = 3.0 * yy - 2.0 * xx + 10.0
    out = imresize(img, 2.0)
    # output pixel x maps to input coordinate u = x/2 + 1/4; cubic interpolation is
    # exact for linear data when all 4 taps (floor(u - 2) + 1 .. + 4) lie inside.
    oy, ox = np.mgrid[1 : 2 * h + 1, 1 : 2 * w + 1].astype(np.float64)
    expected = 3.0 * (oy / 2 + 0.25) - 2.0 * (ox / 2 + 0.25) + 10.0
    inner = slice(6, -6)
    np.testing.assert_allclose(out[inner, inner], expected[inner, inner], rtol=0, atol=1e-9)
    # near the border the mirrored extension is not linear any more
    assert not np.allclose(out[0, 0], expected[0, 0], atol=1e-3)


def test_imresize_uint8_rounds_half_away_and_clips() -> None:
    # Width 2 -> 1 with antialiasing: both pixels get weight exactly 128/256.
    assert imresize(np.array([[0, 1]], dtype=np.float64), (1, 0.5))[0, 0] == 0.5
    assert imresize(np.array([[0, 1]], dtype=np.uint8), (1, 0.5))[0, 0] == 1  # not banker's 0
    assert imresize(np.array([[2, 3]], dtype=np.uint8), (1, 0.5))[0, 0] == 3  # not banker's 2
    # A step edge overshoots below 0 and above 255 with the cubic kernel.
    row = np.array([0, 0, 0, 0, 255, 255, 255, 255], dtype=np.uint8)
    img = np.tile(row, (4, 1))  # constant along height: height pass is exact
    f = imresize(img.astype(np.float64), 2.0)
    assert f.min() < 0 and f.max() > 255
    u = imresize(img, 2.0)
    assert u.dtype == np.uint8
    np.testing.assert_array_equal(u, np.floor(np.clip(f, 0, 255) + 0.5).astype(np.uint8))


def test_imresize_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        imresize(np.zeros((4, 4)), 0)
    with pytest.raises(ValueError):
        imresize(np.zeros((4, 4)), (1, 2, 3))
    with pytest.raises(TypeError):
        imresize(np.zeros((4, 4), dtype=np.int32), 0.5)
    with pytest.raises(ValueError):
        imresize(np.zeros((2, 2, 2, 2)), 0.5)


# ------------------------------------------------------------ modcrop / make_lr


def test_modcrop() -> None:
    img = np.arange(10 * 7 * 3, dtype=np.uint8).reshape(10, 7, 3)
    out = modcrop(img, 3)
    assert out.shape == (9, 6, 3)
    np.testing.assert_array_equal(out, img[:9, :6])
    assert modcrop(img[..., 0], 4).shape == (8, 4)
    assert modcrop(img, 1).shape == img.shape
    with pytest.raises(ValueError):
        modcrop(img, 0)
    with pytest.raises(ValueError):
        modcrop(img, 11)


def test_make_lr_is_modcrop_then_imresize() -> None:
    hr = np.random.default_rng(12).integers(0, 256, (50, 37, 3), dtype=np.uint8)
    lr = make_lr(hr, 4)
    assert lr.shape == (12, 9, 3) and lr.dtype == np.uint8
    np.testing.assert_array_equal(lr, _resize_ref(hr[:48, :36], 0.25, 0.25, as_uint8=True))
    assert make_lr(hr, 3).shape == (16, 12, 3)
    assert make_lr(hr[..., 0], 2).shape == (25, 18)
    with pytest.raises(TypeError):
        make_lr(hr.astype(np.float32), 2)


def test_make_lr_on_real_photo_bicubic_baseline() -> None:
    hr = modcrop(imread(next(iter(sample_photos().values()))), 4)
    lr = make_lr(hr, 4)
    assert lr.shape == (hr.shape[0] // 4, hr.shape[1] // 4, 3)
    up = imresize(lr, 4.0)
    assert up.shape == hr.shape
    psnr = calculate_psnr(up, hr, crop_border=4)
    assert 18.0 < psnr < 45.0  # plausible bicubic x4 baseline on a natural photo


# ------------------------------------------------------------------------- I/O


def test_imread_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.png"
    with pytest.raises(ImageError) as exc:
        imread(missing)
    assert str(missing) in str(exc.value) and "not found" in str(exc.value)
    assert isinstance(exc.value, ValueError)
    assert isinstance(exc.value, ScalesEdgeError)


def test_imread_non_image(tmp_path: Path) -> None:
    fake = tmp_path / "fake.png"
    fake.write_text("this is definitely not a PNG file\n")
    with pytest.raises(ImageError) as exc:
        imread(fake)
    assert str(fake) in str(exc.value) and "not an image" in str(exc.value)


def test_imread_empty_file_and_directory(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    with pytest.raises(ImageError, match="empty"):
        imread(empty)
    with pytest.raises(ImageError, match="not a regular file"):
        imread(tmp_path)


def test_imwrite_imread_round_trip_real_photo(tmp_path: Path) -> None:
    photos = sample_photos()
    src = photos.get("astronaut", next(iter(photos.values())))
    img = imread(src)
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
    # imread returns RGB: the raw OpenCV array is BGR
    np.testing.assert_array_equal(img, imread_any(src)[..., ::-1])
    dst = tmp_path / "a" / "b" / "copy.png"  # parent folders are created
    imwrite(dst, img)
    np.testing.assert_array_equal(imread(dst), img)


def test_imwrite_channel_order_on_disk(tmp_path: Path) -> None:
    red = np.zeros((4, 5, 3), dtype=np.uint8)
    red[..., 0] = 255
    path = tmp_path / "red.png"
    imwrite(path, red)
    on_disk = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)  # OpenCV: BGR
    assert tuple(on_disk[0, 0]) == (0, 0, 255)
    assert tuple(imread(path)[0, 0]) == (255, 0, 0)


def test_imread_converts_gray_alpha_and_16bit(tmp_path: Path) -> None:
    gray = np.arange(20, dtype=np.uint8).reshape(4, 5)
    cv2.imwrite(str(tmp_path / "g.png"), gray)
    g = imread(tmp_path / "g.png")
    assert g.shape == (4, 5, 3)
    for c in range(3):
        np.testing.assert_array_equal(g[..., c], gray)
    assert imread_any(tmp_path / "g.png").shape == (4, 5)

    bgra = np.zeros((3, 3, 4), dtype=np.uint8)
    bgra[..., 0] = 10  # B
    bgra[..., 1] = 20  # G
    bgra[..., 2] = 30  # R
    bgra[..., 3] = 40  # alpha
    cv2.imwrite(str(tmp_path / "a.png"), bgra)
    rgb = imread(tmp_path / "a.png")
    assert rgb.shape == (3, 3, 3)
    assert tuple(rgb[0, 0]) == (30, 20, 10)
    assert imread_any(tmp_path / "a.png").shape == (3, 3, 4)

    deep = np.array([[0, 257, 65535, 128 * 257 + 100]], dtype=np.uint16)
    cv2.imwrite(str(tmp_path / "d.png"), deep)
    assert imread_any(tmp_path / "d.png").dtype == np.uint16
    np.testing.assert_array_equal(imread(tmp_path / "d.png")[0, :, 0], [0, 1, 255, 128])


def test_imwrite_errors(tmp_path: Path) -> None:
    img = np.zeros((4, 4, 3), dtype=np.uint8)
    with pytest.raises(ImageError, match="uint8"):
        imwrite(tmp_path / "x.png", img.astype(np.float32))
    with pytest.raises(ImageError) as exc:
        imwrite(tmp_path / "x.notanimageformat", img)
    assert "x.notanimageformat" in str(exc.value)
    with pytest.raises(ImageError):
        imwrite(tmp_path / "noext", img)


# ------------------------------------------------------------------ discovery


def test_list_images(tmp_path: Path) -> None:
    names = ["b.PNG", "a.jpg", "c.JpEg", "d.bmp", "e.tif", "f.TIFF", "g.webp"]
    for n in names + ["notes.txt", "h.gif"]:
        (tmp_path / n).write_bytes(b"x")
    (tmp_path / "sub.png").mkdir()  # a folder is not an image file
    found = list_images(tmp_path)
    assert [p.name for p in found] == sorted(names)
    with pytest.raises(FileNotFoundError):
        list_images(tmp_path / "missing")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ImageError, match="no image"):
        list_images(empty)
    with pytest.raises(ImageError, match="not a folder"):
        list_images(tmp_path / "a.jpg")


def test_sample_photos_are_real_rgb_photos() -> None:
    photos = sample_photos()
    assert photos
    for name, path in photos.items():
        assert path.is_file(), name
        raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        assert raw is not None and raw.dtype == np.uint8, name
        assert raw.ndim == 3 and raw.shape[2] == 3, name
        assert min(raw.shape[:2]) >= 256, name
        # genuinely colour, not gray stored as RGB
        assert np.abs(raw[..., 0].astype(int) - raw[..., 2]).mean() > 1.0, name


def test_sample_photos_without_packages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(data, "_package_dir", lambda name: None)
    with pytest.raises(FileNotFoundError, match="scikit-image"):
        sample_photos()
