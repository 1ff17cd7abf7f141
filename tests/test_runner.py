"""The native runner scales-edge-run (runner/) on this machine, built with CMake (the op library under
test is the installed one).

* Whole images: exactly the output of a Python ONNX Runtime session with the same op library, for
  .npy and PPM input/output; the JSON schema of `scales-edge bench --json`.
* Images as `scales-edge upscale` does them: tiled PNG inputs (RGB, gray, RGBA; 8 and 16 bit) and
  JPEGs give the same pixels as `scales-edge upscale`, and the same PNG file bytes when the runner's
  zlib is the one OpenCV uses here (the encoders' settings are the same; another zlib compresses
  the same pixels into other bytes).
* The tiling plan: read from the model, refused when missing or made for another graph; a plan
  without the body/tail cut gives the same bytes (the sub-tiled tail equals the whole tile).
* The installed console script finds the op library and ONNX Runtime without LD_LIBRARY_PATH.

Skipped when the runner cannot be built (no compiler / CMake / ORT headers / static codecs), except
under CI (``CI`` set), where that fails.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from typer.testing import CliRunner

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
        if "static libpng" in out.stderr + out.stdout:
            _unavailable("cannot build scales-edge-run: no static libpng/libjpeg/zlib (apt-get install libpng-dev "
                         "libjpeg62-turbo-dev zlib1g-dev)")
        pytest.fail(f"configuring scales-edge-run failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
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


def _export(path: Path, seed: int = 0, scale: int = 4, num_feat: int = 40, num_block: int = 2) -> Path:
    """SRResNet-SCALES (2 blocks: 4 global channel pools) with non-trivial thresholds, exported."""
    import torch

    import scales_edge
    from scales_edge.export import export_onnx
    from scales_edge.nn import ScalesConv2d, binary_layers

    torch.manual_seed(seed)
    m = scales_edge.build_model("srresnet", scale=scale, num_feat=num_feat, num_block=num_block)
    g = torch.Generator().manual_seed(seed + 3)
    with torch.no_grad():
        for _, layer in binary_layers(m):
            if isinstance(layer, ScalesConv2d):
                layer.beta.copy_(torch.randn(layer.beta.shape, generator=g) * 0.2)
                layer.alpha.fill_(float(torch.rand((), generator=g)) + 0.5)
    export_onnx(m.eval(), path)
    return path


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    """A small SRResNet-SCALES x4 (40 channels), exported with its tiling plan."""
    return _export(tmp_path_factory.mktemp("runner") / "srresnet_x4.onnx")


def python_session(model: Path, threads: int = 1):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.register_custom_ops_library(str(LIB_PATH))
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(model), so, providers=["CPUExecutionProvider"])


def photo(h: int, w: int, name: str = "astronaut") -> np.ndarray:
    """An h x w BGR crop of a packaged photo (a textured part)."""
    from scales_edge.data import sample_photos

    photos = sample_photos()
    name = name if name in photos else sorted(photos)[0]
    img = cv2.imread(str(photos[name]), cv2.IMREAD_COLOR)
    y0, x0 = (img.shape[0] - h) // 3, (img.shape[1] - w) // 3
    return np.ascontiguousarray(img[y0 : y0 + h, x0 : x0 + w])


def upscale_cli(model: Path, src: Path, dst: Path, *args) -> None:
    """`scales-edge upscale` in this process (one ORT thread)."""
    from scales_edge.cli import app

    res = CliRunner().invoke(app, ["upscale", str(src), str(dst), "--model", str(model), "--threads", "1",
                                   *map(str, args)])
    assert res.exit_code == 0, res.output


def _same_zlib(report: dict) -> bool:
    """Whether OpenCV here compresses with the zlib the runner has (OpenCV links the system zlib,
    which Python's zlib module uses too)."""
    return report["runner"]["codecs"]["zlib"] == zlib.ZLIB_RUNTIME_VERSION


def assert_same_image(got: Path, want: Path, report: dict) -> None:
    a = cv2.imread(str(got), cv2.IMREAD_UNCHANGED)
    b = cv2.imread(str(want), cv2.IMREAD_UNCHANGED)
    assert a is not None and b is not None
    assert a.dtype == b.dtype and a.shape == b.shape, (a.dtype, a.shape, b.dtype, b.shape)
    diff = np.flatnonzero(a != b)
    assert diff.size == 0, f"{diff.size} of {a.size} samples differ (first at {diff[:5]})"
    if _same_zlib(report):
        assert got.read_bytes() == want.read_bytes(), "same pixels, but not the same PNG bytes"


def upscale_both(runner: Path, model: Path, src: Path, tmp_path: Path, *args, runner_model: Path | None = None,
                 runner_args=()) -> dict:
    """`scales-edge upscale` and the runner on `src` with the same options: the same image; the
    runner's report."""
    upscale_cli(model, src, tmp_path / "py.png", *args)
    out = run(runner, runner_model or model, "--input", src, "--output", tmp_path / "run.png", *args, *runner_args)
    report = json.loads(out.stdout)
    assert_same_image(tmp_path / "run.png", tmp_path / "py.png", report)
    return report


# ------------------------------------------------------------------------------ whole images


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
    run(runner, model, "--input", tmp_path / "x.npy", "--output", tmp_path / "y.npy")
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), python_session(model).run(None, {"input": x[None]})[0])


def _write_ppm(path: Path, rgb: np.ndarray, comment: bool = False) -> None:
    h, w, _ = rgb.shape
    head = "P6\n" + ("# made by test_runner\n" if comment else "") + f"{w} {h}\n255\n"
    path.write_bytes(head.encode() + np.ascontiguousarray(rgb, np.uint8).tobytes())


def test_runner_ppm_in_and_out_like_python_upscaler(runner, model, tmp_path):
    """PPM in (uint8 / 255 in float32), PPM out (clip, * 255, round half to even)."""
    rgb = (np.random.default_rng(11).random((14, 18, 3)) * 256).astype(np.uint8)
    _write_ppm(tmp_path / "lr.ppm", rgb, comment=True)
    run(runner, model, "--input", tmp_path / "lr.ppm", "--output", tmp_path / "sr.ppm")
    x = rgb.astype(np.float32).transpose(2, 0, 1)[None] / 255.0
    y = python_session(model).run(None, {"input": x})[0][0].transpose(1, 2, 0)
    want = np.round(np.clip(y, 0.0, 1.0) * 255.0).astype(np.uint8)
    got = cv2.imread(str(tmp_path / "sr.ppm"), cv2.IMREAD_UNCHANGED)[..., ::-1]
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
    r = report["runner"]
    assert r["ops_library"] == str(LIB_PATH)
    assert r["kernel"] == "auto"  # each op measures the supported paths
    assert r["tiling"] is None  # 24 x 16 fits in one tile: the model runs whole
    assert Path(r["onnxruntime_library"]).name.startswith("libonnxruntime.so")
    assert set(r["codecs"]) == {"zlib", "libpng", "libjpeg"}
    # Every ScalesConv2d of the model (2 blocks x 2 convs; upconv1, upconv2 and conv_hr in the
    # paper scope) says which path it ran: measured once per distinct geometry (the blocks' first
    # and second convs differ in their branches), then taken from that measurement.
    kernels = res["kernels"]
    assert [k["op"] for k in kernels] == ["ScalesConv2d"] * 7
    assert {k["path"] for k in kernels} <= set(LIB.paths())
    for shape in {k["shape"] for k in kernels}:
        hows = [k["how"] for k in kernels if k["shape"] == shape]
        assert hows.count("measured") == 1 and set(hows) <= {"measured", "cached"} or set(hows) == {"only"}
        measured = next(k for k in kernels if k["shape"] == shape and k["how"] != "cached")
        assert measured["unit_ms"][measured["path"]] == min(measured["unit_ms"].values())
        assert any(f"C=40 M={m} k=3x3" in shape and f"H={16 * f} W={24 * f}" in shape
                   for m, f in ((40, 1), (160, 1), (160, 2), (40, 4)))
    assert "median" in out.stderr  # the one-line summary


def test_runner_kernel_option(runner, model):
    out = run(runner, model, "--size", "8x8", "--runs", 1, "--warmup", 0, "--kernel", "portable")
    report = json.loads(out.stdout)
    assert report["runner"]["kernel"] == "portable"
    kernels = report["results"][0]["kernels"]
    assert len(kernels) == 7 and all(k["path"] == "portable" and k["how"] == "forced" for k in kernels)


# ------------------------------------------------------------------------------ images, tiled


def _image(kind: str, h: int, w: int) -> np.ndarray:
    """An image as OpenCV holds it: gray, BGR or BGRA, 8 or 16 bit."""
    bgr = photo(h, w)
    rng = np.random.default_rng(5)
    if kind.startswith("gray"):
        img = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    elif kind.startswith("rgba"):
        yy, xx = np.mgrid[0:h, 0:w]
        alpha = np.clip(255 - 4 * np.hypot(yy - h / 2, xx - w / 3), 0, 255).astype(np.uint8)
        img = np.dstack([bgr, alpha])
    else:
        img = bgr
    if kind.endswith("16"):
        img = (img.astype(np.uint16) * 257 + rng.integers(0, 257, img.shape)).astype(np.uint16)
    return np.ascontiguousarray(img)


@pytest.mark.parametrize("kind", ["rgb", "gray", "rgba", "rgb16", "gray16", "rgba16"])
def test_runner_tiles_png_like_upscale(runner, model, tmp_path, kind):
    """Tiles of 24 LR px over a 70 x 120 image: 3 x 5 output tiles, 1 x 2 statistics tiles (of 96
    px: several passes), the tail on 2 x 2 sub-tiles of each; the PNG equals `scales-edge upscale`'s."""
    src = tmp_path / f"{kind}.png"
    assert cv2.imwrite(str(src), _image(kind, 70, 120))
    tiling = upscale_both(runner, model, src, tmp_path, "--tile", 24)["runner"]["tiling"]
    assert tiling["tiles"] == 15 and tiling["statistics_passes"] >= 2 and tiling["tail_tiles"] == 60


@pytest.mark.parametrize("mode", ["palette", "palette_trns", "gray_alpha", "gray_1bit", "rgb_trns"])
def test_runner_reads_png_color_types_like_opencv(runner, model, tmp_path, mode):
    """PNG colour types OpenCV expands (palette, 1-bit gray, gray + alpha -> RGBA, tRNS on colour ->
    RGBA): the runner decodes them to the same layout and pixels."""
    from PIL import Image

    rgb = photo(21, 26)[..., ::-1]
    im = Image.fromarray(np.ascontiguousarray(rgb))
    src = tmp_path / f"{mode}.png"
    if mode == "palette":
        im.quantize(16).save(src)
    elif mode == "palette_trns":
        im.quantize(16).save(src, transparency=3)
    elif mode == "gray_alpha":
        Image.merge("LA", (im.convert("L"), im.convert("L").point(lambda v: 255 - v))).save(src)
    elif mode == "gray_1bit":
        im.convert("1").save(src)
    else:
        im.save(src, transparency=tuple(int(v) for v in rgb[0, 0]))
    upscale_both(runner, model, src, tmp_path, "--tile", 12)


def test_runner_threads_and_overlap(runner, model, tmp_path):
    src = tmp_path / "in.png"
    assert cv2.imwrite(str(src), _image("rgb", 50, 61))
    report = upscale_both(runner, model, src, tmp_path, "--tile", 16, "--overlap", 5, runner_args=("--threads", 2))
    assert report["runner"]["tiling"]["overlap"] == 5


@pytest.mark.parametrize("kind", ["rgb", "gray"])
def test_runner_reads_jpeg_like_upscale(runner, model, tmp_path, kind):
    src = tmp_path / f"{kind}.jpg"
    assert cv2.imwrite(str(src), _image(kind, 47, 53), [cv2.IMWRITE_JPEG_QUALITY, 85])
    upscale_both(runner, model, src, tmp_path, "--tile", 20)


def test_runner_whole_image_like_upscale(runner, model, tmp_path):
    src = tmp_path / "in.png"
    assert cv2.imwrite(str(src), _image("rgba", 33, 41))
    assert upscale_both(runner, model, src, tmp_path, "--tile", 0)["runner"]["tiling"] is None


def test_runner_without_the_tail_cut_gives_the_same_bytes(runner, model, tmp_path):
    """A plan without the body/tail cut runs each tile's region whole (the `apply` graph): the
    same bytes as the sub-tiled tail Python runs."""
    from scales_edge.runtime.tileplan import PLAN_KEY, TilingPlan

    proto = onnx.load(str(model))
    plan = TilingPlan(proto, probe=False)
    assert plan.tail is None and plan.kinds[-1] == "apply"
    entry = next(p for p in proto.metadata_props if p.key == PLAN_KEY)
    entry.value = plan.to_json()
    onnx.save(proto, tmp_path / "apply.onnx")
    src = tmp_path / "in.png"
    assert cv2.imwrite(str(src), _image("rgb", 45, 60))
    report = upscale_both(runner, model, src, tmp_path, "--tile", 20, runner_model=tmp_path / "apply.onnx")
    assert report["runner"]["tiling"]["tail_tiles"] == 0


def test_runner_tiles_a_window_transformer_like_upscale(runner, tmp_path):
    """SwinIR-light (window 4): tiles on the window grid, statistics over the padded map."""
    import torch

    from scales_edge import build_model
    from scales_edge.export import export_onnx

    torch.manual_seed(0)
    m = build_model("swinir_light", scale=2, embed_dim=12, depths=[2, 1], num_heads=2, window_size=4)
    export_onnx(m.eval(), tmp_path / "swinir.onnx")
    src = tmp_path / "in.png"
    assert cv2.imwrite(str(src), _image("rgb", 45, 70))
    report = upscale_both(runner, tmp_path / "swinir.onnx", src, tmp_path, "--tile", 16)
    assert report["runner"]["tiling"]["statistics_passes"] >= 2


# ------------------------------------------------------------------------------ errors


@pytest.mark.parametrize("args,message", [
    (["--size", "8x8", "--kernel", "bogus"], "SCALES_EDGE_KERNEL 'bogus' is unknown"),
    (["--size", "8"], "--size expects WxH"),
    (["--runs", "0"], "--runs expects an integer"),
    (["--tile", "-1"], "--tile expects an integer"),
    (["--frobnicate"], "unknown option '--frobnicate'"),
    (["--input", "missing.png"], "missing.png: cannot open"),
    (["--input", "x.png"], "corrupt PNG"),
    (["--input", "x.txt"], "not a PNG, JPEG or binary PPM/PGM image"),
    (["--size", "8x8", "--output", "y.gif"], "unknown output format"),
    (["--size", "8x8", "--ort-lib", "nope.so"], "nope.so: no such file"),
])
def test_runner_errors_are_one_line(runner, model, tmp_path, args, message):
    (tmp_path / "x.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    (tmp_path / "x.txt").write_text("hello")
    args = [str(tmp_path / a) if a in ("x.png", "x.txt", "y.gif") else a for a in args]
    out = run(runner, model, *args, check=False)
    assert out.returncode == 2
    assert message in out.stderr, out.stderr
    assert out.stderr.strip().count("\n") == 0, out.stderr


def test_runner_gray_pgm_on_an_rgb_model(runner, model, tmp_path):
    """Gray is replicated to RGB for the model and the output is gray (as `scales-edge upscale`)."""
    gray = cv2.cvtColor(photo(12, 10), cv2.COLOR_BGR2GRAY)
    (tmp_path / "g.pgm").write_bytes(b"P5\n10 12\n255\n" + gray.tobytes())
    run(runner, model, "--input", tmp_path / "g.pgm", "--output", tmp_path / "y.pgm")
    assert cv2.imwrite(str(tmp_path / "g.png"), gray)
    upscale_cli(model, tmp_path / "g.png", tmp_path / "py.png")
    got = cv2.imread(str(tmp_path / "y.pgm"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(got, cv2.imread(str(tmp_path / "py.png"), cv2.IMREAD_UNCHANGED))
    out = run(runner, model, "--input", tmp_path / "g.pgm", "--output", tmp_path / "y.ppm", check=False)
    assert out.returncode == 2 and "the output is gray: write .pgm or .png instead of .ppm" in out.stderr


def test_runner_never_overwrites_without_asking(runner, model, tmp_path):
    src = tmp_path / "in.png"
    assert cv2.imwrite(str(src), _image("rgb", 9, 8))
    (tmp_path / "out.png").write_bytes(b"mine")
    out = run(runner, model, "--input", src, "--output", tmp_path / "out.png", check=False)
    assert out.returncode == 2 and "exists; pass --overwrite" in out.stderr
    assert (tmp_path / "out.png").read_bytes() == b"mine"
    out = run(runner, model, "--input", src, "--output", src, "--overwrite", check=False)
    assert out.returncode == 2 and "is the input" in out.stderr
    run(runner, model, "--input", src, "--output", tmp_path / "out.png", "--overwrite")
    assert cv2.imread(str(tmp_path / "out.png")).shape == (36, 32, 3)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary file left


def test_runner_needs_a_plan_that_matches_the_graph(runner, model, tmp_path):
    from scales_edge.runtime.tileplan import PLAN_KEY

    src = tmp_path / "in.png"
    assert cv2.imwrite(str(src), _image("rgb", 30, 30))
    proto = onnx.load(str(model))
    keep = [p for p in proto.metadata_props if p.key != PLAN_KEY]
    del proto.metadata_props[:]
    proto.metadata_props.extend(keep)
    onnx.save(proto, tmp_path / "noplan.onnx")
    out = run(runner, tmp_path / "noplan.onnx", "--input", src, "--tile", 16, check=False)
    assert out.returncode == 2 and "has no tiling plan" in out.stderr and "--tile 0" in out.stderr, out.stderr
    run(runner, tmp_path / "noplan.onnx", "--input", src, "--tile", 0)  # whole images need none

    proto = onnx.load(str(model))
    proto.graph.node[0].name = "renamed"  # the graph changed after export: the plan is stale
    onnx.save(proto, tmp_path / "stale.onnx")
    out = run(runner, tmp_path / "stale.onnx", "--input", src, "--tile", 16, check=False)
    assert out.returncode == 2 and "made for another graph" in out.stderr, out.stderr


# ------------------------------------------------------------------------------ the install


def test_installed_console_script_finds_its_libraries(model, tmp_path):
    """`scales-edge-run` of the installed package: the op library beside it, ONNX Runtime from the
    onnxruntime wheel, no LD_LIBRARY_PATH."""
    from scales_edge.runner import executable

    script = Path(sys.executable).with_name("scales-edge-run")
    if not executable().is_file() or not script.is_file():
        _unavailable("the installed scales-edge has no native runner (built without static codecs)")
    import onnxruntime

    src = tmp_path / "in.png"
    assert cv2.imwrite(str(src), _image("rgb", 20, 30))
    env = {k: v for k, v in os.environ.items()
           if k not in ("LD_LIBRARY_PATH", "SCALES_EDGE_OPS_LIB", "SCALES_EDGE_ORT_LIB", "SCALES_EDGE_KERNEL")}
    out = subprocess.run([str(script), str(model), "--input", str(src), "--output", str(tmp_path / "o.png"),
                          "--tile", "16"], capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout)["runner"]
    assert Path(r["ops_library"]) == executable().with_name("libscales_edge_ops.so")
    assert Path(r["onnxruntime_library"]).parent == Path(onnxruntime.__file__).resolve().parent / "capi"
    upscale_cli(model, src, tmp_path / "py.png", "--tile", 16)
    assert_same_image(tmp_path / "o.png", tmp_path / "py.png", json.loads(out.stdout))
