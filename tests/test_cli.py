"""The export → validate → bench → demo commands, driven through Typer's CliRunner."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import cv2
import pytest
import torch
from typer.testing import CliRunner

from scales_edge import build_model, save_checkpoint
from scales_edge.cli import app
from _opslib import require_installed_library

require_installed_library()

runner = CliRunner()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    torch.manual_seed(0)
    model = build_model("srresnet", scale=2, num_feat=40, num_block=1)
    ckpt = save_checkpoint(model, d / "m.pth")
    onnx_path = d / "m.onnx"
    res = runner.invoke(app, ["export", str(ckpt), str(onnx_path)])
    assert res.exit_code == 0, res.output
    return d, ckpt, onnx_path


def test_validate_passes_and_writes_json(exported):
    d, ckpt, onnx_path = exported
    out = d / "parity.json"
    res = runner.invoke(app, ["validate", str(onnx_path), "--ckpt", str(ckpt), "--size", "23x17", "--size", "40x32", "--json", str(out), "--threads", "1"])
    assert res.exit_code == 0, res.output
    assert "PASS" in res.output
    report = json.loads(out.read_text())
    assert report["passed"] is True and report["sign_flip_share"] == 0.0
    assert {c["shape"][2] for c in report["cases"]} == {17, 32}  # WxH sizes became H=17, H=32
    assert report["min_psnr_db"] == "inf" or report["min_psnr_db"] >= 60


def test_validate_fails_for_another_model(exported):
    d, _, onnx_path = exported
    torch.manual_seed(1)
    other = save_checkpoint(build_model("srresnet", scale=2, num_feat=40, num_block=1), d / "other.pth")
    res = runner.invoke(app, ["validate", str(onnx_path), "--ckpt", str(other), "--size", "23x17"])
    assert res.exit_code == 1 and "FAIL" in res.output


def test_validate_errors_are_one_line(exported, tmp_path):
    d, ckpt, _ = exported
    res = runner.invoke(app, ["validate", str(tmp_path / "nope.onnx"), "--ckpt", str(ckpt)])
    assert res.exit_code == 2 and "no such ONNX model" in res.output and "Traceback" not in res.output
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"this is not protobuf")
    res = runner.invoke(app, ["validate", str(bad), "--ckpt", str(ckpt)])
    assert res.exit_code == 2 and "bad.onnx" in res.output
    res = runner.invoke(app, ["validate", str(d / "m.onnx"), "--ckpt", str(ckpt), "--size", "big"])
    assert res.exit_code == 2 and "WxH" in res.output


def test_bench_with_baseline_writes_schema(exported):
    d, ckpt, onnx_path = exported
    ref = d / "ref.onnx"
    from scales_edge import load_checkpoint
    from scales_edge.export import export_onnx

    export_onnx(load_checkpoint(ckpt), ref, binary_as="fp32-reference")
    out = d / "bench.json"
    res = runner.invoke(app, ["bench", str(onnx_path), "--baseline", str(ref), "--size", "64x48", "--runs", "3", "--warmup", "1", "--json", str(out)])
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert data["schema"] == "scales-edge.bench/1"
    assert [r["output_shape"] for r in data["results"]] == [[1, 3, 96, 128]] * 2
    for r in data["results"]:
        assert r["runs"] == 3 and r["min_ms"] <= r["median_ms"] <= r["p90_ms"] and r["file_bytes"] > 0
    assert data["speedup_vs_baseline"] == pytest.approx(data["results"][1]["median_ms"] / data["results"][0]["median_ms"])
    assert data["peak_rss_mb"] > 0 and data["machine"]["onnxruntime"]


def test_demo_runs_end_to_end(tmp_path):
    torch.manual_seed(0)
    ckpt = save_checkpoint(build_model("srresnet", scale=4, num_feat=8, num_block=1), tmp_path / "tiny.pth")
    out = tmp_path / "demo"
    res = runner.invoke(app, ["demo", "--ckpt", str(ckpt), "--out", str(out), "--runs", "1"])
    assert res.exit_code == 0, res.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["parity"]["passed"] is True
    assert len(summary["quality"]["images"]) == 3
    assert set(summary["quality"]["mean"]) == {"psnr", "ssim", "bicubic_psnr", "bicubic_ssim"}
    assert summary["bench"]["speedup_vs_fp32_reference"] > 0
    assert summary["binary_scope"] == summary["config"]["binary_scope"] == "body+upsampler"
    assert "binary_scope=body+upsampler" in res.output
    for name in ("chelsea", "coffee", "rocket"):
        img = cv2.imread(str(out / "images" / f"{name}_compare.png"))
        assert img is not None and img.shape[1] > img.shape[0]  # three tiles side by side
        assert cv2.imread(str(out / "images" / f"{name}_sr.png")) is not None
    assert (out / "demo_x4.onnx").stat().st_size < (out / "demo_x4_fp32ref.onnx").stat().st_size


def test_no_top_level_export_or_runtime_package(tmp_path):
    """The build maps export/ and runtime/ under scales_edge; they must not import on their own
    (editable installs put the source root on sys.path, so this holds for regular installs)."""
    import scales_edge

    if any("_editable" in m for m in sys.modules) or importlib.util.find_spec("_editable_skbc_scales_edge"):
        pytest.skip("editable install: the source root is on sys.path by design of scikit-build-core")
    code = "import importlib.util as u; print(u.find_spec('export'), u.find_spec('runtime'), u.find_spec('scales_edge.export') is not None)"
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["None", "None", "True"], out.stdout
    assert scales_edge.__file__
