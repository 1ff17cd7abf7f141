"""Tests for scales_edge.metrics against hand-computed values and naive re-derivations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from scales_edge.metrics import (
    calculate_psnr,
    calculate_ssim,
    rgb_to_y,
    tensor_to_uint8,
    uint8_to_tensor,
)

# --------------------------------------------------------------------------- rgb_to_y


@pytest.mark.parametrize(
    ("rgb", "expected"),
    [
        ((255, 255, 255), 235.0),
        ((0, 0, 0), 16.0),
        ((255, 0, 0), 16.0 + 65.481),
        ((0, 255, 0), 16.0 + 128.553),
        ((0, 0, 255), 16.0 + 24.966),
        ((128, 128, 128), 16.0 + 219.0 * 128 / 255),
    ],
)
def test_rgb_to_y_known_colours(rgb: tuple[int, int, int], expected: float) -> None:
    img = np.zeros((2, 3, 3), dtype=np.uint8)
    img[...] = rgb
    y = rgb_to_y(img)
    assert y.shape == (2, 3)
    assert y.dtype == np.float64
    np.testing.assert_allclose(y, expected, rtol=0, atol=1e-9)


def test_rgb_to_y_not_rounded_and_channel_order() -> None:
    # R=1 only: 16 + 65.481/255 = 16.25678..., which must not be rounded.
    img = np.array([[[1, 0, 0], [0, 0, 1]]], dtype=np.uint8)
    y = rgb_to_y(img)
    assert y[0, 0] == pytest.approx(16 + 65.481 / 255, abs=1e-12)
    assert y[0, 1] == pytest.approx(16 + 24.966 / 255, abs=1e-12)


def test_rgb_to_y_gray_passthrough() -> None:
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4)
    for img in (gray, gray[..., None]):
        y = rgb_to_y(img)
        assert y.dtype == np.float64
        assert y.shape == (3, 4)
        np.testing.assert_array_equal(y, gray.astype(np.float64))


def test_rgb_to_y_rejects_other_shapes() -> None:
    with pytest.raises(ValueError, match="shape"):
        rgb_to_y(np.zeros((4, 4, 2)))


# --------------------------------------------------------------------------- PSNR


def _gray_rgb(values: np.ndarray) -> np.ndarray:
    return np.repeat(values[..., None], 3, axis=2)


def test_psnr_one_level_offset_y_channel() -> None:
    # Gray-equal RGB (R=G=B); +1 in every channel changes Y by
    # (65.481 + 128.553 + 24.966) / 255 = 219 / 255 everywhere.
    base = np.full((8, 8), 100, dtype=np.uint8)
    img = _gray_rgb(base)
    ref = _gray_rgb(base + 1)
    expected = 10 * math.log10(255**2 / (219 / 255) ** 2)
    assert calculate_psnr(img, ref, crop_border=0) == pytest.approx(expected, abs=1e-9)


def test_psnr_one_level_offset_rgb() -> None:
    base = np.full((8, 8), 100, dtype=np.uint8)
    img, ref = _gray_rgb(base), _gray_rgb(base + 1)
    expected = 10 * math.log10(255**2)  # MSE == 1
    assert calculate_psnr(img, ref, 0, test_y_channel=False) == pytest.approx(expected, abs=1e-12)
    assert expected == pytest.approx(48.130803608679, abs=1e-9)


def test_psnr_matches_direct_formula_on_random_images() -> None:
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (20, 17, 3), dtype=np.uint8)
    ref = rng.integers(0, 256, (20, 17, 3), dtype=np.uint8)
    c = 3
    a = img[c:-c, c:-c].astype(np.float64)
    b = ref[c:-c, c:-c].astype(np.float64)
    ya = 16 + (65.481 * a[..., 0] + 128.553 * a[..., 1] + 24.966 * a[..., 2]) / 255
    yb = 16 + (65.481 * b[..., 0] + 128.553 * b[..., 1] + 24.966 * b[..., 2]) / 255
    expected_y = 10 * math.log10(255**2 / np.mean((ya - yb) ** 2))
    expected_rgb = 10 * math.log10(255**2 / np.mean((a - b) ** 2))
    assert calculate_psnr(img, ref, c) == pytest.approx(expected_y, abs=1e-9)
    assert calculate_psnr(img, ref, c, test_y_channel=False) == pytest.approx(expected_rgb, abs=1e-9)


def test_psnr_identical_is_inf() -> None:
    img = np.random.default_rng(1).integers(0, 256, (9, 9, 3), dtype=np.uint8)
    assert calculate_psnr(img, img.copy(), 0) == math.inf
    assert calculate_psnr(img, img.copy(), 2, test_y_channel=False) == math.inf


def test_psnr_crop_border_removes_border_differences() -> None:
    img = np.full((16, 14, 3), 50, dtype=np.uint8)
    ref = img.copy()
    ref[:2] = 0
    ref[-2:] = 255
    ref[:, :2] = 7
    ref[:, -2:] = 9
    assert math.isfinite(calculate_psnr(img, ref, 0))
    assert math.isfinite(calculate_psnr(img, ref, 1))
    assert calculate_psnr(img, ref, 2) == math.inf
    assert calculate_ssim(img, ref, 0) < 1.0


def test_psnr_accepts_float_and_gray() -> None:
    a = np.full((6, 6), 10.0)
    b = np.full((6, 6), 12.0)  # MSE = 4
    assert calculate_psnr(a, b, 0) == pytest.approx(10 * math.log10(255**2 / 4), abs=1e-12)


def test_shape_mismatch_names_both_shapes() -> None:
    a = np.zeros((8, 8, 3), dtype=np.uint8)
    b = np.zeros((8, 9, 3), dtype=np.uint8)
    for fn in (calculate_psnr, calculate_ssim):
        with pytest.raises(ValueError) as exc:
            fn(a, b, 0)
        assert "(8, 8, 3)" in str(exc.value) and "(8, 9, 3)" in str(exc.value)


def test_bad_crop_border() -> None:
    a = np.zeros((8, 8, 3), dtype=np.uint8)
    with pytest.raises(ValueError):
        calculate_psnr(a, a, 4)
    with pytest.raises(ValueError):
        calculate_psnr(a, a, -1)


# --------------------------------------------------------------------------- SSIM


def _naive_ssim_channel(a: np.ndarray, b: np.ndarray) -> float:
    """Direct SSIM: explicit 11x11 Gaussian (sigma 1.5) and a loop over valid windows."""
    r = np.arange(11) - 5
    g = np.exp(-(r.astype(np.float64) ** 2) / (2 * 1.5**2))
    g /= g.sum()
    win = np.outer(g, g)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    h, w = a.shape
    vals = []
    for i in range(h - 10):
        for j in range(w - 10):
            pa = a[i : i + 11, j : j + 11]
            pb = b[i : i + 11, j : j + 11]
            mu_a = float(np.sum(win * pa))
            mu_b = float(np.sum(win * pb))
            var_a = float(np.sum(win * pa * pa)) - mu_a**2
            var_b = float(np.sum(win * pb * pb)) - mu_b**2
            cov = float(np.sum(win * pa * pb)) - mu_a * mu_b
            vals.append(
                ((2 * mu_a * mu_b + c1) * (2 * cov + c2))
                / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
            )
    return float(np.mean(vals))


def _y(img: np.ndarray) -> np.ndarray:
    f = img.astype(np.float64)
    return 16 + (65.481 * f[..., 0] + 128.553 * f[..., 1] + 24.966 * f[..., 2]) / 255


def test_ssim_identical_is_one() -> None:
    img = np.random.default_rng(2).integers(0, 256, (24, 20, 3), dtype=np.uint8)
    assert calculate_ssim(img, img.copy(), 0) == pytest.approx(1.0, abs=1e-12)
    assert calculate_ssim(img, img.copy(), 3, test_y_channel=False) == pytest.approx(1.0, abs=1e-12)


def test_ssim_matches_naive_implementation_y_channel() -> None:
    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, (22, 25, 3), dtype=np.uint8)
    noisy = np.clip(img.astype(int) + rng.integers(-30, 31, img.shape), 0, 255).astype(np.uint8)
    c = 2
    expected = _naive_ssim_channel(_y(img[c:-c, c:-c]), _y(noisy[c:-c, c:-c]))
    assert calculate_ssim(img, noisy, c) == pytest.approx(expected, abs=1e-9)


def test_ssim_matches_naive_implementation_per_channel_mean() -> None:
    rng = np.random.default_rng(4)
    img = rng.integers(0, 256, (18, 16, 3), dtype=np.uint8)
    other = rng.integers(0, 256, (18, 16, 3), dtype=np.uint8)
    a, b = img.astype(np.float64), other.astype(np.float64)
    expected = np.mean([_naive_ssim_channel(a[..., k], b[..., k]) for k in range(3)])
    assert calculate_ssim(img, other, 0, test_y_channel=False) == pytest.approx(expected, abs=1e-9)


def test_ssim_noise_strictly_between_zero_and_one() -> None:
    rng = np.random.default_rng(5)
    # smooth-ish image so that the structure term is meaningful
    yy, xx = np.mgrid[0:40, 0:40]
    base = (127 + 100 * np.sin(xx / 5.0) * np.cos(yy / 7.0)).astype(np.uint8)
    img = np.stack([base, base[::-1], base.T], axis=2)
    noisy = np.clip(img + rng.normal(0, 15, img.shape), 0, 255).astype(np.uint8)
    s = calculate_ssim(img, noisy, 4)
    assert 0.0 < s < 1.0
    # more noise -> lower SSIM
    noisier = np.clip(img + rng.normal(0, 40, img.shape), 0, 255).astype(np.uint8)
    assert calculate_ssim(img, noisier, 4) < s


def test_ssim_too_small_raises() -> None:
    a = np.zeros((12, 12, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="11x11"):
        calculate_ssim(a, a, 1)


# --------------------------------------------------------------------------- tensors


def test_tensor_to_uint8_known_values_and_layout() -> None:
    torch = pytest.importorskip("torch")
    t = torch.zeros(1, 3, 2, 3)
    t[0, 0, 0, 0] = 1.0  # red at (0, 0)
    t[0, 1, 0, 1] = 0.2  # green 51 at (0, 1)
    t[0, 2, 1, 2] = 1.7  # blue clamped to 255 at (1, 2)
    t[0, 0, 1, 0] = -0.3  # clamped to 0
    t[0, 1, 1, 1] = 100.4 / 255  # rounds down to 100
    t[0, 2, 0, 2] = 100.6 / 255  # rounds up to 101
    img = tensor_to_uint8(t)
    assert img.shape == (2, 3, 3) and img.dtype == np.uint8
    expected = np.zeros((2, 3, 3), dtype=np.uint8)
    expected[0, 0, 0] = 255
    expected[0, 1, 1] = 51
    expected[1, 2, 2] = 255
    expected[1, 1, 1] = 100
    expected[0, 2, 2] = 101
    np.testing.assert_array_equal(img, expected)
    # 3xHxW input and numpy input give the same result
    np.testing.assert_array_equal(tensor_to_uint8(t[0]), expected)
    np.testing.assert_array_equal(tensor_to_uint8(t.numpy()), expected)


def test_uint8_round_trip_all_levels() -> None:
    pytest.importorskip("torch")
    levels = np.arange(256, dtype=np.uint8)
    img = np.stack([levels.reshape(16, 16), levels.reshape(16, 16).T, 255 - levels.reshape(16, 16)], 2)
    t = uint8_to_tensor(img)
    assert tuple(t.shape) == (1, 3, 16, 16)
    assert str(t.dtype) == "torch.float32"
    np.testing.assert_allclose(t[0, 0].numpy(), levels.reshape(16, 16) / 255.0, atol=1e-7)
    assert float(t.min()) == 0.0 and float(t.max()) == 1.0
    np.testing.assert_array_equal(tensor_to_uint8(t), img)


def test_uint8_to_tensor_gray() -> None:
    pytest.importorskip("torch")
    gray = np.arange(6, dtype=np.uint8).reshape(2, 3)
    for img in (gray, gray[..., None]):
        t = uint8_to_tensor(img)
        assert tuple(t.shape) == (1, 1, 2, 3)
        np.testing.assert_array_equal(tensor_to_uint8(t), gray)


def test_tensor_helpers_reject_bad_input() -> None:
    torch = pytest.importorskip("torch")
    with pytest.raises(ValueError, match="batch"):
        tensor_to_uint8(torch.zeros(2, 3, 4, 4))
    with pytest.raises(ValueError):
        tensor_to_uint8(torch.zeros(4, 4, 3))
    with pytest.raises(TypeError, match="uint8"):
        uint8_to_tensor(np.zeros((4, 4, 3), dtype=np.float32))
