"""The native runner scales-edge-run (runner/) on this machine: built with CMake against the
onnxruntime wheel of this Python, it must give exactly the output of a Python ONNX Runtime
session with the same op library, for .npy and PPM input/output, and print the JSON schema of
`scales-edge bench --json`. Skipped when it cannot be built (no compiler / CMake / ORT headers),
except under CI (``CI`` set), where that fails.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from _opslib import KernelLib, require_library

REPO = Path(__file__).resolve().parent.parent
BUILD = REPO / "build" / "runner-host"
LIB_PATH = require_library()
LIB = KernelLib(LIB_PATH)


def _unavailable(reason: str):
    if os.environ.get("CI"):
        pytest.fail(f"CI: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def runner() -> Path:
    """scales-edge-run built for this machine ($SCALES_EDGE_RUNNER: use that binary instead)."""
    if os.environ.get("SCALES_EDGE_RUNNER"):
        return Path(os.environ["SCALES_EDGE_RUNNER"])
    for tool in ("cmake", "c++"):
        if shutil.which(tool) is None:
            _unavailable(f"cannot build scales-edge-run: no {tool}")
    cfg = ["cmake", "-S", str(REPO), "-B", str(BUILD), "-DCMAKE_BUILD_TYPE=Release",
           "-DSCALES_EDGE_BUILD_RUNNER=ON", f"-DPython3_EXECUTABLE={sys.executable}"]
    if shutil.which("ninja") and not (BUILD / "Makefile").exists():
        cfg += ["-G", "Ninja"]
    t0 = time.perf_counter()
    out = subprocess.run(cfg, capture_output=True, text=True)
    if out.returncode != 0:
        if "onnxruntime_cxx_api.h" in out.stderr + out.stdout:
            _unavailable("cannot build scales-edge-run: no ONNX Runtime headers (bash scripts/fetch-ort-headers.sh)")
        pytest.fail(f"configuring scales-edge-run failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    # Only the runner: the op library under test is the installed one (the Python session's).
    out = subprocess.run(["cmake", "--build", str(BUILD), "--target", "scales-edge-run", "-j", "2"],
                         capture_output=True, text=True)
    assert out.returncode == 0, f"building scales-edge-run failed:\n{out.stdout[-4000:]}\n{out.stderr[-2000:]}"
    print(f"[built scales-edge-run in {time.perf_counter() - t0:.1f} s]")
    exe = BUILD / "ops" / "scales-edge-run"
    assert exe.is_file()
    return exe


def run(runner: Path, *args, ops: str | None = str(LIB_PATH), env_extra=None, check=True):
    env = {k: v for k, v in os.environ.items() if k not in ("SCALES_EDGE_KERNEL", "SCALES_EDGE_OPS_LIB")}
    env.update(env_extra or {})
    cmd = [str(runner), *map(str, args)] + (["--ops", ops] if ops else [])
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    if check:
        assert out.returncode == 0, out.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    """A small SRResNet-SCALES x4 (40 channels, 2 blocks) with non-trivial thresholds, exported."""
    import torch

    import scales_edge
    from scales_edge.export import export_onnx
    from scales_edge.nn import ScalesConv2d, binary_layers

    torch.manual_seed(0)
    m = scales_edge.build_model("srresnet", scale=4, num_feat=40, num_block=2)
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for _, layer in binary_layers(m):
            if isinstance(layer, ScalesConv2d):
                layer.beta.copy_(torch.randn(layer.beta.shape, generator=g) * 0.2)
                layer.alpha.fill_(float(torch.rand((), generator=g)) + 0.5)
    path = tmp_path_factory.mktemp("runner") / "srresnet_x4.onnx"
    export_onnx(m.eval(), path)
    return path


def python_session(model: Path, threads: int = 1):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.register_custom_ops_library(str(LIB_PATH))
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(model), so, providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("threads", [1, 2])
def test_runner_output_equals_python_session(runner, model, tmp_path, threads):
    x = np.random.default_rng(threads).random((1, 3, 20, 27), dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    run(runner, model, "--input", tmp_path / "x.npy", "--output", tmp_path / "y.npy", "--threads", threads,
        "--runs", 2, "--warmup", 1, "-q")
    got = np.load(tmp_path / "y.npy")
    want = python_session(model, threads).run(None, {"input": x})[0]
    assert got.dtype == np.float32 and got.shape == want.shape == (1, 3, 80, 108)
    np.testing.assert_array_equal(got, want)


def test_runner_npy_chw_input(runner, model, tmp_path):
    x = np.random.default_rng(7).random((3, 9, 11), dtype=np.float32)  # [C, H, W]: N = 1 added
    np.save(tmp_path / "x.npy", x)
    run(runner, model, "--input", tmp_path / "x.npy", "--output", tmp_path / "y.npy", "--runs", 1, "--warmup", 0)
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), python_session(model).run(None, {"input": x[None]})[0])


def _write_ppm(path: Path, rgb: np.ndarray, comment: bool = False) -> None:
    h, w, _ = rgb.shape
    head = "P6\n" + ("# made by test_runner\n" if comment else "") + f"{w} {h}\n255\n"
    path.write_bytes(head.encode() + np.ascontiguousarray(rgb, np.uint8).tobytes())


def _read_pnm(path: Path) -> np.ndarray:
    data = path.read_bytes()
    parts = data.split(maxsplit=4)
    magic, w, h, maxval = parts[0], int(parts[1]), int(parts[2]), int(parts[3])
    assert maxval == 255
    c = 3 if magic == b"P6" else 1
    pixels = data[len(data) - w * h * c:]
    return np.frombuffer(pixels, np.uint8).reshape(h, w, c)


def test_runner_ppm_in_and_out_like_python_upscaler(runner, model, tmp_path):
    """PPM in (uint8 / 255 in float32), PPM out (clip, * 255, round half to even): the conversions
    of scales_edge.runtime.infer.Upscaler."""
    rgb = (np.random.default_rng(11).random((14, 18, 3)) * 256).astype(np.uint8)
    _write_ppm(tmp_path / "lr.ppm", rgb, comment=True)
    run(runner, model, "--input", tmp_path / "lr.ppm", "--output", tmp_path / "sr.ppm", "--runs", 1, "--warmup", 0)
    x = rgb.astype(np.float32).transpose(2, 0, 1)[None] / 255.0
    y = python_session(model).run(None, {"input": x})[0][0].transpose(1, 2, 0)
    want = np.round(np.clip(y, 0.0, 1.0) * 255.0).astype(np.uint8)
    got = _read_pnm(tmp_path / "sr.ppm")
    assert got.shape == (56, 72, 3)
    np.testing.assert_array_equal(got, want)


def test_runner_json_is_the_bench_schema(runner, model, tmp_path):
    from scales_edge.runtime.bench import JSON_SCHEMA, BenchResult, machine_info

    out = run(runner, model, "--size", "24x16", "--runs", 5, "--warmup", 2, "--threads", 1,
              "--json", tmp_path / "b.json", ops=None, env_extra={"SCALES_EDGE_OPS_LIB": str(LIB_PATH)})
    report = json.loads(out.stdout)
    assert report == json.loads((tmp_path / "b.json").read_text())
    assert report["schema"] == JSON_SCHEMA
    assert set(report["machine"]) == set(machine_info())
    assert report["machine"]["machine"] == machine_info()["machine"]
    assert report["machine"]["onnxruntime"] == machine_info()["onnxruntime"]
    assert report["peak_rss_mb"] > 0
    (res,) = report["results"]
    assert set(res) == set(BenchResult.__dataclass_fields__)
    assert res["model"] == str(model) and res["file_bytes"] == model.stat().st_size
    assert res["input_shape"] == [1, 3, 16, 24] and res["output_shape"] == [1, 3, 64, 96]
    assert (res["threads"], res["runs"], res["warmup"]) == (1, 5, 2)
    assert 0 < res["min_ms"] <= res["p10_ms"] <= res["median_ms"] <= res["p90_ms"]
    assert res["min_ms"] <= res["mean_ms"]
    assert res["megapixels_per_s"] == pytest.approx(64 * 96 / 1e6 / (res["median_ms"] / 1e3))
    assert report["runner"]["ops_library"] == str(LIB_PATH)
    assert report["runner"]["kernel"] == "auto"  # each op measures the supported paths
    # Every ScalesConv2d of the model (2 blocks x 2 convs) says which path it ran: measured once
    # per distinct geometry (the blocks' first and second convs differ in their branches), then
    # taken from that measurement.
    kernels = res["kernels"]
    assert [k["op"] for k in kernels] == ["ScalesConv2d"] * 4
    assert {k["path"] for k in kernels} <= set(LIB.paths())
    for shape in {k["shape"] for k in kernels}:
        hows = [k["how"] for k in kernels if k["shape"] == shape]
        assert hows.count("measured") == 1 and set(hows) <= {"measured", "cached"} or set(hows) == {"only"}
        measured = next(k for k in kernels if k["shape"] == shape and k["how"] != "cached")
        assert measured["unit_ms"][measured["path"]] == min(measured["unit_ms"].values())
        assert "C=40 M=40 k=3x3" in shape and "H=16 W=24" in shape
    assert "median" in out.stderr  # the one-line summary


def test_runner_kernel_option(runner, model, tmp_path):
    out = run(runner, model, "--size", "8x8", "--runs", 1, "--warmup", 0, "--kernel", "portable")
    report = json.loads(out.stdout)
    assert report["runner"]["kernel"] == "portable"
    kernels = report["results"][0]["kernels"]
    assert len(kernels) == 4 and all(k["path"] == "portable" and k["how"] == "forced" for k in kernels)


@pytest.mark.parametrize("args,message", [
    (["--size", "8x8", "--kernel", "bogus"], "SCALES_EDGE_KERNEL 'bogus' is unknown"),
    (["--size", "8"], "--size expects WxH"),
    (["--runs", "0"], "--runs expects an integer"),
    (["--frobnicate"], "unknown option '--frobnicate'"),
    (["--input", "missing.ppm"], "missing.ppm: cannot open"),
    (["--input", "x.png"], "unknown input format"),
])
def test_runner_errors_are_one_line(runner, model, tmp_path, args, message):
    if "x.png" in args:
        (tmp_path / "x.png").write_bytes(b"\x89PNG")
        args = [a if a != "x.png" else str(tmp_path / "x.png") for a in args]
    out = run(runner, model, *args, check=False)
    assert out.returncode == 2
    assert message in out.stderr, out.stderr
    assert out.stderr.strip().count("\n") == 0, out.stderr


def test_runner_rejects_a_mismatched_input(runner, model, tmp_path):
    gray = tmp_path / "g.pgm"
    gray.write_bytes(b"P5\n4 4\n255\n" + bytes(16))
    out = run(runner, model, "--input", gray, check=False)
    assert out.returncode == 2 and "does not fit the model's input" in out.stderr, out.stderr
    out = run(runner, tmp_path / "nope.onnx", "--size", "8x8", check=False)
    assert out.returncode == 2 and "no such ONNX model file" in out.stderr
    out = run(runner, model, "--size", "8x8", "--output", tmp_path / "y.pgm", "--runs", 1, "--warmup", 0, check=False)
    assert out.returncode == 2 and "3 channels: write .ppm" in out.stderr, out.stderr
