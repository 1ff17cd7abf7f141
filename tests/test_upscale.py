"""`scales-edge upscale` and the tiling behind it: tiled == whole image, formats kept, no overwrite."""

from __future__ import annotations

import math

import cv2
import numpy as np
import onnx
import pytest
import torch
from onnx import helper, numpy_helper
from typer.testing import CliRunner

from scales_edge import build_model, save_checkpoint
from scales_edge.cli import app
from scales_edge.data import sample_photos
from scales_edge.export import export_onnx
from scales_edge.runtime.infer import Upscaler
from scales_edge.runtime.pixels import resize_cubic
from _opslib import require_installed_library
from scales_edge.runtime.tiling import analyze, tile_grid

require_installed_library()

runner = CliRunner()


def invoke(args):
    """``CliRunner.invoke`` with one ORT thread for the commands that run a model."""
    args = [str(a) for a in args]
    cmd = next((a for a in args if not a.startswith("-")), "")
    if cmd in ("upscale", "validate") and "--threads" not in args and "--help" not in args:
        args += ["--threads", "1"]
    return runner.invoke(app, args)
torch.set_num_threads(1)


def psnr(a: np.ndarray, b: np.ndarray, peak: float) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(peak**2 / mse)


def photo_crop(name: str, h: int, w: int) -> np.ndarray:
    """A BGR uint8 crop of a packaged photo (textured part, not the border)."""
    photos = sample_photos()
    if name not in photos:
        name = sorted(photos)[0]
    img = cv2.imread(str(photos[name]), cv2.IMREAD_COLOR)
    y0, x0 = (img.shape[0] - h) // 3, (img.shape[1] - w) // 3
    return np.ascontiguousarray(img[y0 : y0 + h, x0 : x0 + w])


@pytest.fixture(scope="module")
def model_x2(tmp_path_factory):
    """A tiny SCALES SRResNet x2 (2 blocks: 4 binary convs with global channel pools)."""
    d = tmp_path_factory.mktemp("upscale_model")
    torch.manual_seed(0)
    model = build_model("srresnet", scale=2, num_feat=8, num_block=2)
    save_checkpoint(model, d / "m.pth")
    export_onnx(model, d / "m.onnx")
    return d / "m.onnx"


@pytest.fixture(scope="module")
def upscaler(model_x2):
    return Upscaler(str(model_x2), threads=1)


# ----------------------------------------------------------------------------- tiling


def test_tile_grid_covers_the_image_once():
    for h, w, tile, ov in [(100, 37, 32, 5), (64, 64, 64, 8), (5, 300, 16, 20)]:
        hits = np.zeros((h, w), int)
        for t in tile_grid(h, w, tile, ov):
            hits[t.y0 : t.y1, t.x0 : t.x1] += 1
            assert t.y1 - t.y0 <= tile and t.x1 - t.x0 <= tile
            assert t.ry0 == max(0, t.y0 - ov) and t.ry1 == min(h, t.y1 + ov)
            assert t.rx0 == max(0, t.x0 - ov) and t.rx1 == min(w, t.x1 + ov)
        assert (hits == 1).all()


def test_geometry_of_srresnet(upscaler):
    g = upscaler.runner.geometry
    # head conv (1) + 2 blocks x 2 convs (4) + upconv1 (1) + conv_hr, conv_last at 2x (0.5 + 0.5) + bilinear base
    assert g.radius == pytest.approx(7.0)
    assert g.scale == 2 and g.min_side == 1
    # one global channel pool per binary conv: 4 in the body, upconv1's (LR), conv_hr's (at 2x)
    assert len(g.pools) == 6
    assert sorted(p.scale for p in g.pools) == [1, 1, 1, 1, 1, 2]
    # a pool at the output resolution: the statistics tiles are the output tiles' size
    assert upscaler.runner.stats_tile(24) == 24


def test_tiled_equals_whole_image(upscaler):
    """Tiles with overlap + whole-image channel statistics reproduce the whole-image run."""
    img = photo_crop("astronaut", 90, 130)
    whole = upscaler.upscale_image(img, tile=0)
    # the same conversions as the whole-image RGB path that quality scoring uses
    assert np.array_equal(whole[..., ::-1], upscaler(np.ascontiguousarray(img[..., ::-1])))
    tiled = upscaler.upscale_image(img, tile=24)  # 4 x 6 output tiles, 2 x 2 statistics tiles
    assert upscaler.runner.last_passes >= 2  # the fixed-point iteration over the pools ran
    assert tiled.shape == whole.shape == (180, 260, 3)
    assert psnr(tiled, whole, 255) >= 60
    # The float outputs, before rounding, too.
    x = (img[..., ::-1].astype(np.float32) / 255).transpose(2, 0, 1)[None].copy()
    ref = upscaler.run_tensor(x)
    out = upscaler.runner.run_array(x, tile=24, overlap=upscaler.auto_overlap(24))
    assert psnr(np.clip(out, 0, 1), np.clip(ref, 0, 1), 1.0) >= 60


def test_tiles_without_whole_image_statistics_differ(upscaler):
    """Why the statistics passes exist: with each tile pooling itself, the output changes."""
    img = photo_crop("astronaut", 90, 130)
    x = (img[..., ::-1].astype(np.float32) / 255).transpose(2, 0, 1)[None].copy()
    ref = upscaler.run_tensor(x)
    sess = upscaler.session
    out = np.zeros_like(ref)
    for t in tile_grid(90, 130, 24, 16):
        y = sess.run(None, {"input": np.ascontiguousarray(x[:, :, t.ry0 : t.ry1, t.rx0 : t.rx1])})[0]
        oy, ox = (t.y0 - t.ry0) * 2, (t.x0 - t.rx0) * 2
        out[..., t.y0 * 2 : t.y1 * 2, t.x0 * 2 : t.x1 * 2] = y[..., oy : oy + (t.y1 - t.y0) * 2, ox : ox + (t.x1 - t.x0) * 2]
    tiled = upscaler.runner.run_array(x, tile=24, overlap=16)
    assert psnr(tiled, ref, 1.0) > psnr(out, ref, 1.0) + 10


@pytest.mark.parametrize(
    "arch,kw",
    [
        ("edsr", dict(num_feat=8, num_block=2)),
        ("rcan", dict(num_feat=8, num_group=1, num_block=2, squeeze_factor=4)),
        ("rdn", dict(num_feat=8, num_block=2, num_layer=2, growth=4)),
    ],
)
def test_tiling_works_for_the_zoo(tmp_path, arch, kw):
    torch.manual_seed(0)
    export_onnx(build_model(arch, scale=2, **kw), tmp_path / "m.onnx")
    up = Upscaler(str(tmp_path / "m.onnx"), threads=1)
    img = photo_crop("coffee", 60, 70)
    whole = up.upscale_image(img, tile=0)
    tiled = up.upscale_image(img, tile=20, overlap=up.runner.geometry.exact_overlap)
    assert psnr(tiled, whole, 255) >= 60


@pytest.mark.parametrize("scale", [3, 4])
def test_tiling_paper_scope_pools_at_high_resolution(tmp_path, scale):
    """The binary upsampler's and conv_hr's channel pools read 2x-4x maps: the statistics passes
    cover them (their tiles no wider than the output tiles) and tiles stay exact."""
    torch.manual_seed(1)
    model = build_model("srresnet", scale=scale, num_feat=8, num_block=1)
    export_onnx(model, tmp_path / "m.onnx")
    up = Upscaler(str(tmp_path / "m.onnx"), threads=1)
    g = up.runner.geometry
    assert max(p.scale for p in g.pools) == scale and up.runner.stats_tile(16) == 16
    img = photo_crop("coffee", 40, 46)
    whole = up.upscale_image(img, tile=0)
    tiled = up.upscale_image(img, tile=16, overlap=g.exact_overlap)
    assert up.runner.last_passes >= 2
    assert psnr(tiled, whole, 255) >= 60


# ----------------------------------------------------------------------------- Transformers


#: Small random-weight Transformers (window 4, so tiles of 32 px hold 8 x 8 windows).
WINDOWED = {
    "swinir_light": dict(embed_dim=12, depths=[2, 1], num_heads=2, window_size=4),
    "hat_s": dict(embed_dim=12, depths=[2], num_heads=2, window_size=4, compress_ratio=3, squeeze_factor=4, upsample_feat=8),
}
#: Receptive-field radius of those configurations, counted by hand (LR px): conv_first 1; SwinIR: per
#: RSTB depth x (window - 1) + its closing conv 1; HAT: per RHAG depth x (window - 1) (the CAB's two
#: convs reach 2 < 3 beside the attention) + OCAB (window - 1 + (6 - 4) / 2 px of enlarged keys) +
#: conv 1; conv_after_body 1; tail: SwinIR's pixelshuffledirect conv 1, HAT's conv_before_upsample
#: 1 + the x2 stage's conv 1 + conv_last at 2x 1/2.
WINDOWED_RADIUS = {"swinir_light": 1 + (2 * 3 + 1) + (1 * 3 + 1) + 1 + 1, "hat_s": 1 + (2 * 3 + 4 + 1) + 1 + 1 + 1 + 0.5}


def _windowed_model(arch, path, seed=0):
    from scales_edge.nn import ScalesConv2d, ScalesLinear, binary_layers

    torch.manual_seed(seed)
    model = build_model(arch, scale=2, **WINDOWED[arch])
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():  # non-trivial thresholds and layer scales (initially 0 and 1)
        for _, layer in binary_layers(model):
            if isinstance(layer, (ScalesConv2d, ScalesLinear)):
                layer.beta.copy_(torch.randn(layer.beta.shape, generator=g) * 0.2)
                layer.alpha.fill_(float(torch.rand((), generator=g)) + 0.5)
    export_onnx(model.eval(), path)
    return model


def _torch_pool_means(model, x: np.ndarray) -> list[np.ndarray]:
    """The whole image's value of every global pool, in execution order, from PyTorch: the input
    means of SCALES convs (their channel re-scaling) and HAT's channel-attention pools."""
    from scales_edge.nn import ScalesConv2d

    got, hooks = [], []
    for m in model.modules():
        if isinstance(m, ScalesConv2d):
            hooks.append(m.register_forward_hook(lambda mod, a, out: got.append(a[0].mean(dim=(2, 3)).numpy())))
        elif isinstance(m, torch.nn.AdaptiveAvgPool2d):
            hooks.append(m.register_forward_hook(lambda mod, a, out: got.append(out.numpy())))
    with torch.no_grad():
        model(torch.from_numpy(x))
    for h in hooks:
        h.remove()
    return got


def test_window_tile_grid_is_aligned():
    for h, w, tile, ov, ws in [(90, 125, 32, 5, 4), (64, 64, 64, 8, 8), (37, 300, 16, 20, 16), (50, 50, 3, 0, 8)]:
        hits = np.zeros((h, w), int)
        for t in tile_grid(h, w, tile, ov, align=ws):
            hits[t.y0 : t.y1, t.x0 : t.x1] += 1
            assert t.y0 % ws == 0 and t.x0 % ws == 0 and t.ry0 % ws == 0 and t.rx0 % ws == 0
            assert t.y1 - t.y0 <= max(tile, ws) and t.x1 - t.x0 <= max(tile, ws)
            ova = -(-ov // ws) * ws  # the overlap in whole windows
            assert t.ry0 == max(0, t.y0 - ova) and t.ry1 == min(h, t.y1 + ova)
            assert (t.y1 == h or t.y1 % ws == 0) and (t.ry1 == h or t.ry1 % ws == 0)
        assert (hits == 1).all()


@pytest.mark.parametrize("arch", list(WINDOWED))
def test_transformer_tiles_equal_whole_image_at_the_receptive_field(tmp_path, arch):
    """SwinIR / HAT tiles: aligned to the window grid, whole-image statistics for the pools of the
    padded map (the image is 90 x 125, not a window multiple), overlap = the receptive field."""
    model = _windowed_model(arch, tmp_path / "m.onnx")
    up = Upscaler(str(tmp_path / "m.onnx"), threads=1)
    g = up.runner.geometry
    assert up.window == g.window == 4 and g.scale == 2 and g.min_side == 1
    assert g.radius == pytest.approx(WINDOWED_RADIUS[arch])
    assert g.exact_overlap == -(-(math.ceil(WINDOWED_RADIUS[arch]) + 1) // 4) * 4
    assert up.auto_overlap(128) == g.exact_overlap  # the default covers it when the tile is large enough
    img = photo_crop("astronaut", 90, 125)
    x = (img[..., ::-1].astype(np.float32) / 255).transpose(2, 0, 1)[None].copy()
    # The pools' whole-image values (over the padded 92 x 128 map) from tiles match PyTorch's.
    tiles = tile_grid(90, 125, 32, g.exact_overlap, align=4)
    means = up.runner.global_means(x, tiles)
    expected = _torch_pool_means(model, x)
    assert len(means) == len(expected) == len(g.pools) == {"swinir_light": 2, "hat_s": 3}[arch]
    for m, e in zip(means, expected):
        np.testing.assert_allclose(m.reshape(e.shape), e, rtol=1e-4, atol=1e-5)
    whole = up.upscale_image(img, tile=0)
    tiled = up.upscale_image(img, tile=32, overlap=g.exact_overlap)  # 3 x 4 tiles
    assert up.runner.last_passes >= 2
    assert psnr(tiled, whole, 255) >= 60  # measured: identical or 99 dB (one pixel off by 1)
    ref = up.run_tensor(x)
    out = up.runner.run_array(x, tile=32, overlap=g.exact_overlap)
    assert psnr(np.clip(out, 0, 1), np.clip(ref, 0, 1), 1.0) >= 100  # measured 147-151 dB: rounding


@pytest.mark.parametrize("arch", list(WINDOWED))
def test_transformer_tiles_below_the_receptive_field_are_close(tmp_path, arch):
    """Below the field the tiles' borders show: window attention carries a difference at a tile
    border into every token of the window, and a binarized activation it flips does not fade.
    Bounds measured on these models (PSNR on 8-bit, two seeds): one window of overlap 59-70 dB,
    two windows 92-99+ dB, no overlap 20-33 dB; and without whole-image statistics (each tile
    pooling itself) 45-60 dB even at the full overlap."""
    _windowed_model(arch, tmp_path / "m.onnx")
    up = Upscaler(str(tmp_path / "m.onnx"), threads=1)
    img = photo_crop("astronaut", 90, 125)
    whole = up.upscale_image(img, tile=0)
    by_overlap = {ov: psnr(up.upscale_image(img, tile=32, overlap=ov), whole, 255) for ov in (0, 4, 8)}
    assert by_overlap[0] < 40
    assert 50 <= by_overlap[4] < 80
    assert by_overlap[8] >= 85
    # each tile pooling itself (the plain model on each region), at the full overlap
    s, ov = 2, up.runner.geometry.exact_overlap
    local = np.zeros_like(whole)
    for t in tile_grid(90, 125, 32, ov, align=4):
        y = up.upscale_image(np.ascontiguousarray(img[t.ry0 : t.ry1, t.rx0 : t.rx1]), tile=0)
        oy, ox = (t.y0 - t.ry0) * s, (t.x0 - t.rx0) * s
        local[t.y0 * s : t.y1 * s, t.x0 * s : t.x1 * s] = y[oy : oy + (t.y1 - t.y0) * s, ox : ox + (t.x1 - t.x0) * s]
    assert psnr(local, whole, 255) < 65


def test_upscale_cli_tiles_a_transformer_by_default(tmp_path):
    """`scales-edge upscale` with the default --tile 256 on an image larger than a tile."""
    _windowed_model("swinir_light", tmp_path / "m.onnx")
    src = tmp_path / "p.png"
    img = photo_crop("astronaut", 270, 300)
    cv2.imwrite(str(src), img)
    res = invoke(["upscale", str(src), str(tmp_path / "out.png"), "--model", str(tmp_path / "m.onnx")])
    assert res.exit_code == 0, res.output
    assert "tiles of 256 px + 16 px overlap (covers the receptive field)" in res.output
    out = cv2.imread(str(tmp_path / "out.png"))
    whole = Upscaler(str(tmp_path / "m.onnx"), threads=1).upscale_image(img, tile=0)
    assert out.shape == whole.shape == (540, 600, 3)
    assert psnr(out, whole, 255) >= 60


# ----------------------------------------------------------------------------- formats


def test_16_bit_stays_16_bit(upscaler, tmp_path):
    rng = np.random.default_rng(0)
    img8 = photo_crop("coffee", 40, 50)
    img16 = (img8.astype(np.uint16) * 257 + rng.integers(0, 257, img8.shape)).astype(np.uint16)
    out = upscaler.upscale_image(img16, tile=16)
    assert out.dtype == np.uint16 and out.shape == (80, 100, 3)
    # The model ran on v / 65535: the result is finer than 8-bit steps ...
    assert np.count_nonzero(out % 257) > out.size // 2
    # ... and exactly the model's float output on v / 65535, rounded to 16 bits.
    x = (img16[..., ::-1].astype(np.float32) / 65535).transpose(2, 0, 1)[None].copy()
    ref = np.round(np.clip(upscaler.run_tensor(x)[0], 0, 1) * 65535).transpose(1, 2, 0)[..., ::-1]
    assert psnr(out, ref, 65535) >= 60
    # Through the CLI: the PNG written is 16-bit.
    src = tmp_path / "deep.png"
    cv2.imwrite(str(src), img16)
    res = invoke(["upscale", str(src), "--model", str(upscaler.path), "--tile", "16"])
    assert res.exit_code == 0, res.output
    back = cv2.imread(str(tmp_path / "deep_x2.png"), cv2.IMREAD_UNCHANGED)
    assert back.dtype == np.uint16 and np.array_equal(back, out)


def test_rgba_keeps_alpha_upscaled_bicubically(upscaler, tmp_path):
    bgr = photo_crop("astronaut", 40, 48)
    yy, xx = np.mgrid[0:40, 0:48]
    alpha = np.clip(255 - 6 * np.hypot(yy - 20, xx - 24), 0, 255).astype(np.uint8)
    src = tmp_path / "rgba.png"
    cv2.imwrite(str(src), np.dstack([bgr, alpha]))
    res = invoke(["upscale", str(src), "--model", str(upscaler.path)])
    assert res.exit_code == 0, res.output
    out = cv2.imread(str(tmp_path / "rgba_x2.png"), cv2.IMREAD_UNCHANGED)
    assert out.shape == (80, 96, 4)
    assert np.array_equal(out[..., 3], resize_cubic(alpha, 2))  # OpenCV's kernel, defined to the bit
    assert np.abs(out[..., 3].astype(int) - cv2.resize(alpha, (96, 80), interpolation=cv2.INTER_CUBIC)).max() <= 1
    assert np.array_equal(out[..., :3], upscaler.upscale_image(bgr))  # colour through the model


def test_gray_stays_gray(upscaler, tmp_path):
    gray = cv2.cvtColor(photo_crop("camera", 40, 44), cv2.COLOR_BGR2GRAY)
    src = tmp_path / "gray.png"
    cv2.imwrite(str(src), gray)
    res = invoke(["upscale", str(src), str(tmp_path / "out" / "big.png"), "--model", str(upscaler.path)])
    assert res.exit_code == 0, res.output
    out = cv2.imread(str(tmp_path / "out" / "big.png"), cv2.IMREAD_UNCHANGED)
    assert out.ndim == 2 and out.shape == (80, 88) and out.dtype == np.uint8
    # replicate -> model -> luma (BT.601, of the float output: a random model's colours leave
    # [0, 1], so the luma of the clipped 8-bit colour image may differ) -> 8 bits
    x = np.repeat((gray.astype(np.float32) / 255)[None, None], 3, axis=1)
    rgb = upscaler.run_tensor(x)[0]
    luma = np.round(np.clip(0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2], 0, 1) * 255)
    assert np.abs(out.astype(int) - luma.astype(int)).max() <= 1


# ----------------------------------------------------------------------------- the command


def test_folder_glob_and_no_overwrite(model_x2, tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    cv2.imwrite(str(d / "a.png"), photo_crop("astronaut", 30, 40))
    cv2.imwrite(str(d / "b.jpg"), photo_crop("coffee", 24, 36))
    (d / "notes.txt").write_text("not an image, and not listed")
    m = str(model_x2)
    res = invoke(["upscale", str(d), "--model", m])
    assert res.exit_code == 0, res.output
    assert cv2.imread(str(d / "a_x2.png")).shape == (60, 80, 3)
    assert cv2.imread(str(d / "b_x2.png")).shape == (48, 72, 3)
    before = (d / "a_x2.png").read_bytes()
    # Again: the outputs exist -> refused, nothing touched.
    res = invoke(["upscale", str(d), "--model", m])
    assert res.exit_code == 2 and "exists" in res.output and "--overwrite" in res.output
    assert "Traceback" not in res.output
    # With --overwrite: the earlier outputs are not taken as inputs (no a_x2_x2.png).
    res = invoke(["upscale", str(d), "--model", m, "--overwrite"])
    assert res.exit_code == 0, res.output
    assert not (d / "a_x2_x2.png").exists() and (d / "a_x2.png").read_bytes() == before
    # A glob into an output folder.
    out = tmp_path / "out"
    res = invoke(["upscale", str(d / "*.jpg"), str(out), "--model", m])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.iterdir()) == ["b_x2.png"]
    # Never an input, unless asked.
    res = invoke(["upscale", str(d / "a.png"), str(d / "a.png"), "--model", m])
    assert res.exit_code == 2 and "input" in res.output
    assert cv2.imread(str(d / "a.png")).shape == (30, 40, 3)
    res = invoke(["upscale", str(d / "a.png"), str(d / "a.png"), "--model", m, "--overwrite"])
    assert res.exit_code == 0 and cv2.imread(str(d / "a.png")).shape == (60, 80, 3)


def test_threads_tile_and_overlap_options(model_x2, tmp_path):
    src = tmp_path / "p.png"
    img = photo_crop("astronaut", 50, 70)
    cv2.imwrite(str(src), img)
    outs = []
    for i, extra in enumerate([["--tile", "0"], ["--tile", "20", "--overlap", "12", "--threads", "1"]]):
        dst = tmp_path / f"o{i}.png"
        res = invoke(["upscale", str(src), str(dst), "--model", str(model_x2), *extra])
        assert res.exit_code == 0, res.output
        outs.append(cv2.imread(str(dst)))
    assert psnr(outs[0], outs[1], 255) >= 60


# ----------------------------------------------------------------------------- errors


def _min3_model(path):
    """A hand-built scales_edge model whose binary conv has no padding: inputs need >= 3x3 px."""
    c, m = 3, 12
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(np.zeros(c, np.float32), "beta"),
        numpy_helper.from_array(rng.integers(0, 8, (m, 3, 3, 1)).astype(np.uint64), "w"),
        numpy_helper.from_array(np.full(m, 0.05, np.float32), "scale"),
        numpy_helper.from_array(np.full(m, 0.5, np.float32), "bias"),
    ]
    nodes = [
        helper.make_node("BinaryConv2d", ["input", "beta", "w", "scale", "bias"], ["y"], domain="scales_edge",
                         kernel_shape=[3, 3], pads=[0, 0, 0, 0], strides=[1, 1], dilations=[1, 1], group=1),
        helper.make_node("DepthToSpace", ["y"], ["output"], blocksize=2, mode="CRD"),
    ]
    graph = helper.make_graph(
        nodes, "min3",
        [helper.make_tensor_value_info("input", onnx.TensorProto.FLOAT, [1, 3, "h", "w"])],
        [helper.make_tensor_value_info("output", onnx.TensorProto.FLOAT, [1, 3, None, None])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("scales_edge", 1)])
    model.ir_version = 8
    for k, v in {"scales_edge.scale": "2", "scales_edge.arch": "test"}.items():
        e = model.metadata_props.add()
        e.key, e.value = k, v
    onnx.save(model, path)
    return path


def _foreign_model(path):
    """A plain ONNX x2 upscaler (bilinear Resize): not exported by scales-edge."""
    scales = numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales")
    graph = helper.make_graph(
        [helper.make_node("Resize", ["input", "", "scales"], ["output"], mode="linear")], "plain",
        [helper.make_tensor_value_info("input", onnx.TensorProto.FLOAT, [1, 3, "h", "w"])],
        [helper.make_tensor_value_info("output", onnx.TensorProto.FLOAT, None)], [scales],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def test_upscale_errors_are_one_line(model_x2, tmp_path):
    src = tmp_path / "p.png"
    cv2.imwrite(str(src), photo_crop("astronaut", 20, 20))
    m = str(model_x2)

    def check(args, *words):
        res = invoke(args)
        assert res.exit_code == 2, (args, res.output)
        lines = [line for line in res.output.splitlines() if line.startswith("error:")]
        assert len(lines) == 1 and "Traceback" not in res.output, res.output
        for w in words:
            assert w in lines[0], (w, lines[0])
        return lines[0]

    check(["upscale", str(tmp_path / "nope.png"), "--model", m], "nope.png", "no such file")
    check(["upscale", str(src), "--model", str(tmp_path / "nope.onnx")], "no such ONNX model")
    bad = tmp_path / "text.png"
    bad.write_text("hello, I am not a PNG")
    check(["upscale", str(bad), "--model", m], "text.png", "not an image")
    check(["upscale", str(src), "--model", str(_foreign_model(tmp_path / "plain.onnx"))], "not a scales-edge model", "scales-edge export")
    check(["upscale", str(src), "--model", m, "--scale", "4"], "x2", "--scale")
    check(["upscale", str(tmp_path / "*.gif"), "--model", m], "no image file matches")
    check(["upscale", str(src), str(tmp_path / "o.jpx"), "--model", m], "unknown image format")
    check(["upscale", str(src), "--model", m, "--tile", "-1"], "--tile")
    tiny = tmp_path / "tiny.png"
    cv2.imwrite(str(tiny), photo_crop("astronaut", 2, 2))
    min3 = str(_min3_model(tmp_path / "min3.onnx"))
    assert Upscaler(min3).min_side == 3
    check(["upscale", str(tiny), "--model", min3], "2x2", "at least 3x3")
    # A 3x3 image passes the size check; this test model then gives 2x2 px for it, not 6x6.
    ok = tmp_path / "ok.png"
    cv2.imwrite(str(ok), photo_crop("astronaut", 3, 3))
    check(["upscale", str(ok), "--model", min3], "2x2 px for a 3x3 input", "x2")
    # 16-bit into a JPEG is refused with the reason.
    deep = tmp_path / "deep.png"
    cv2.imwrite(str(deep), photo_crop("astronaut", 8, 8).astype(np.uint16) * 257)
    check(["upscale", str(deep), str(tmp_path / "deep.jpg"), "--model", m], "16-bit", ".png")


def test_debug_shows_the_exception(model_x2, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG but not really")
    res = invoke(["upscale", str(bad), "--model", str(model_x2)])
    assert res.exit_code == 2 and res.output.splitlines()[-1].startswith("error:") and "bad.png" in res.output
    res = invoke(["--debug", "upscale", str(bad), "--model", str(model_x2)])
    assert res.exception is not None and not isinstance(res.exception, SystemExit)
    assert "bad.png" in str(res.exception)


def test_analyze_refuses_spatial_reshapes():
    graph = helper.make_graph(
        [helper.make_node("Transpose", ["input"], ["output"], perm=[0, 1, 3, 2])], "t",
        [helper.make_tensor_value_info("input", onnx.TensorProto.FLOAT, [1, 3, "h", "w"])],
        [helper.make_tensor_value_info("output", onnx.TensorProto.FLOAT, None)],
    )
    from scales_edge.runtime.tiling import TilingError

    with pytest.raises(TilingError, match="Transpose"):
        analyze(helper.make_model(graph))


def test_untileable_model_says_to_use_whole_images(tmp_path):
    """A model (ours by its metadata) that transposes H and W: tiles cannot follow it."""
    scales = numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales")
    nodes = [
        helper.make_node("Resize", ["input", "", "scales"], ["up"], mode="linear"),
        helper.make_node("Transpose", ["up"], ["t"], perm=[0, 1, 3, 2]),
        helper.make_node("Transpose", ["t"], ["output"], perm=[0, 1, 3, 2]),
    ]
    graph = helper.make_graph(
        nodes, "transposing",
        [helper.make_tensor_value_info("input", onnx.TensorProto.FLOAT, [1, 3, "h", "w"])],
        [helper.make_tensor_value_info("output", onnx.TensorProto.FLOAT, None)], [scales],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    e = model.metadata_props.add()
    e.key, e.value = "scales_edge.scale", "2"
    onnx.save(model, tmp_path / "t.onnx")
    src = tmp_path / "p.png"
    cv2.imwrite(str(src), photo_crop("astronaut", 40, 40))
    res = invoke(["upscale", str(src), "--model", str(tmp_path / "t.onnx"), "--tile", "16"])
    assert res.exit_code == 2 and "Transpose" in res.output and "--tile 0" in res.output
    res = invoke(["upscale", str(src), "--model", str(tmp_path / "t.onnx"), "--tile", "0"])
    assert res.exit_code == 0, res.output
    assert cv2.imread(str(tmp_path / "p_x2.png")).shape == (80, 80, 3)
