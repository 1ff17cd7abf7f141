"""`scales-edge validate --images` (quality on photos), the demo model's quality, help and errors."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

from scales_edge import build_model, save_checkpoint
from scales_edge.cli import app
from scales_edge.data import imread, imresize, make_lr, modcrop, sample_photos
from scales_edge.demo import DEMO_CHECKPOINT
from scales_edge.export import export_onnx
from scales_edge.metrics import calculate_psnr
from _opslib import require_installed_library
from test_upscale import invoke, runner

require_installed_library()

torch.set_num_threads(1)
COMMANDS = ("archs", "train", "evaluate", "export", "validate", "bench", "demo", "upscale", "info")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A tiny SCALES SRResNet x2 (checkpoint and ONNX) and a folder of three real photo crops
    with odd sizes (mod-crop matters)."""
    d = tmp_path_factory.mktemp("quality")
    torch.manual_seed(0)
    model = build_model("srresnet", scale=2, num_feat=8, num_block=1)
    ckpt = save_checkpoint(model, d / "m.pth")
    export_onnx(model, d / "m.onnx")
    photos = sample_photos()
    names = [n for n in ("astronaut", "coffee", "chelsea", "rocket", "grace_hopper") if n in photos][:3]
    hr = d / "hr"
    hr.mkdir()
    for i, name in enumerate(names):
        img = cv2.imread(str(photos[name]), cv2.IMREAD_COLOR)
        h, w = 61 + 4 * i, 75 + 2 * i
        y0, x0 = (img.shape[0] - h) // 2, (img.shape[1] - w) // 2
        cv2.imwrite(str(hr / f"{name}.png"), img[y0 : y0 + h, x0 : x0 + w])
    return d, ckpt, d / "m.onnx", hr


def test_validate_images_with_ckpt(setup, tmp_path):
    d, ckpt, onnx_path, hr = setup
    out, save = tmp_path / "q.json", tmp_path / "imgs"
    res = runner.invoke(
        app,
        ["validate", str(onnx_path), "--images", str(hr), "--scale", "2", "--ckpt", str(ckpt),
         "--save-dir", str(save), "--json", str(out), "--threads", "1"],
    )
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert {"model", "checkpoint", "images_dir", "scale", "metric", "images", "mean", "save_dir"} <= set(data)
    assert data["scale"] == 2 and len(data["images"]) == 3
    assert data["tail"] == "fp32" and "int8_cost" not in data
    keys = {"image", "psnr", "ssim", "bicubic_psnr", "bicubic_ssim", "torch_psnr", "torch_ssim",
            "torch_minus_ort_psnr", "torch_minus_ort_ssim"}
    for row in data["images"]:
        assert set(row) == keys
        assert row["torch_minus_ort_psnr"] == pytest.approx(row["torch_psnr"] - row["psnr"])
        hr_img = modcrop(imread(hr / row["image"]), 2)
        # bicubic, recomputed here: MATLAB-bicubic down, then up, PSNR on Y with a 2-px border
        bic = imresize(make_lr(hr_img, 2), 2)
        assert row["bicubic_psnr"] == pytest.approx(calculate_psnr(bic, hr_img, 2), abs=1e-9)
        # ONNX Runtime and PyTorch run the same network
        assert row["psnr"] == pytest.approx(row["torch_psnr"], abs=0.05)
        assert 0 < row["ssim"] <= 1 and 0 < row["bicubic_ssim"] <= 1
        stem = row["image"].rsplit(".", 1)[0]
        sr = cv2.imread(str(save / f"{stem}_sr.png"))
        assert sr.shape == hr_img.shape
        cmp_ = cv2.imread(str(save / f"{stem}_compare.png"))
        assert cmp_ is not None and cmp_.shape[1] > cmp_.shape[0]
    for k in ("psnr", "ssim", "bicubic_psnr", "bicubic_ssim", "torch_psnr", "torch_ssim"):
        assert data["mean"][k] == pytest.approx(np.mean([r[k] for r in data["images"]]))
    assert "mean PSNR" in res.output and "bicubic" in res.output


def test_validate_images_without_ckpt(setup, tmp_path):
    d, _, onnx_path, hr = setup
    out = tmp_path / "q.json"
    res = invoke(["validate", str(onnx_path), "--images", str(hr), "--json", str(out)])
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert data["checkpoint"] is None and "torch_psnr" not in data["images"][0]
    assert set(data["mean"]) == {"psnr", "ssim", "bicubic_psnr", "bicubic_ssim"}


def test_validate_images_and_bench_on_a_transformer(setup, tmp_path):
    """A small SwinIR-light: its photos (odd sizes, not window multiples) scored by ONNX Runtime
    as by PyTorch, and bench at a size that is no window multiple either."""
    _, _, _, hr = setup
    torch.manual_seed(0)
    model = build_model("swinir_light", scale=2, embed_dim=12, depths=[2], num_heads=2, window_size=8)
    ckpt = save_checkpoint(model, tmp_path / "t.pth")
    export_onnx(model, tmp_path / "t.onnx")
    out = tmp_path / "q.json"
    res = invoke(["validate", str(tmp_path / "t.onnx"), "--images", str(hr), "--ckpt", str(ckpt), "--json", str(out)])
    assert res.exit_code == 0, res.output
    rows = json.loads(out.read_text())["images"]
    assert len(rows) == 3 and all(r["psnr"] == pytest.approx(r["torch_psnr"], abs=0.05) for r in rows)
    bench = tmp_path / "b.json"
    res = invoke(["bench", str(tmp_path / "t.onnx"), "--size", "37x23", "--runs", "2", "--warmup", "1", "--json", str(bench)])
    assert res.exit_code == 0, res.output
    assert "median" in res.output and bench.exists()


@pytest.mark.skipif(not DEMO_CHECKPOINT.exists(), reason="the bundled demo model is still being trained")
def test_demo_model_beats_bicubic(tmp_path):
    """The bundled demo model, exported and scored by ONNX Runtime on the held-out photos (what
    `scales-edge demo` reports), comes out sharper than bicubic on every photo."""
    from scales_edge.demo import held_out_photos

    onnx_path = tmp_path / "demo_x4.onnx"
    res = invoke(["export", str(DEMO_CHECKPOINT), str(onnx_path)])
    assert res.exit_code == 0, res.output
    photos = tmp_path / "held_out"
    photos.mkdir()
    for p in held_out_photos():
        (photos / p.name).write_bytes(p.read_bytes())
    out = tmp_path / "q.json"
    res = invoke(
        ["validate", str(onnx_path), "--images", str(photos), "--scale", "4", "--json", str(out), "--save-dir", str(tmp_path / "imgs")]
    )
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert data["mean"]["psnr"] > data["mean"]["bicubic_psnr"], data["mean"]
    for row in data["images"]:
        assert (tmp_path / "imgs" / f"{row['image'].rsplit('.', 1)[0]}_compare.png").is_file()


def test_every_command_has_help_with_an_example():
    for cmd in COMMANDS:
        res = invoke([cmd, "--help"])
        assert res.exit_code == 0, (cmd, res.output)
        assert "Example:" in res.output and "scales-edge " + cmd in res.output, cmd


def test_shell_completion_is_available():
    res = invoke(["--help"])
    assert "--install-completion" in res.output and "--show-completion" in res.output


def test_validate_errors_are_one_line(setup, tmp_path):
    d, ckpt, onnx_path, hr = setup

    def check(args, *words):
        res = invoke(args)
        assert res.exit_code == 2, (args, res.output)
        lines = [line for line in res.output.splitlines() if line.startswith("error:")]
        assert len(lines) == 1 and "Traceback" not in res.output, res.output
        for w in words:
            assert w in lines[0], (w, lines[0])

    m = str(onnx_path)
    check(["validate", m], "--ckpt", "--images")
    check(["validate", m, "--images", str(hr), "--scale", "3"], "x2", "--scale 2")
    check(["validate", m, "--images", str(tmp_path / "missing")], "missing", "does not exist")
    check(["validate", str(tmp_path / "nope.onnx"), "--images", str(hr)], "no such ONNX model")
    check(["validate", m, "--ckpt", str(ckpt), "--save-dir", str(tmp_path / "s")], "--save-dir", "--images")
    # A checkpoint of another scale.
    other = save_checkpoint(build_model("srresnet", scale=3, num_feat=8, num_block=1), tmp_path / "x3.pth")
    check(["validate", m, "--images", str(hr), "--ckpt", str(other)], "x2", "x3")
    # A non-image among the photos.
    bad = tmp_path / "bad"
    bad.mkdir()
    cv2.imwrite(str(bad / "a.png"), cv2.imread(str(next(hr.iterdir()))))
    (bad / "b.png").write_text("not an image")
    check(["validate", m, "--images", str(bad)], "b.png", "not an image")
    # A photo too small to score at x2: SSIM's 11-px window after a 2-px border crop needs 15 px.
    small = tmp_path / "small"
    small.mkdir()
    cv2.imwrite(str(small / "s.png"), np.full((14, 40, 3), 128, np.uint8))
    check(["validate", m, "--images", str(small)], "s.png", "40x14", "at least 15x15")
    # An ONNX model that scales-edge did not export.
    from test_upscale import _foreign_model

    check(["validate", str(_foreign_model(tmp_path / "plain.onnx")), "--images", str(hr)], "not a scales-edge model")
