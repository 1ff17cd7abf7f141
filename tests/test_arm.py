"""aarch64 under emulation: the cross-built op library, kernel tests and native runner, run with
qemu-aarch64 (Debian 13's, see scripts/arm-setup.sh) on this x86-64 machine.

* the C++ kernel tests (every path against a scalar reference; on aarch64: portable and NEON), and
  those of the Transformer ops' float kernels;
* every kernel path of the aarch64 op library inside the aarch64 ONNX Runtime, through the native
  runner, against the numpy reference of docs/ops.md (a model with many BinaryConv2d and
  BinaryLinear nodes of assorted shapes, exact comparison), and the version-3 Transformer ops
  (within float rounding);
* an exported SRResNet-SCALES model run by the aarch64 runner under qemu, matching x86 ONNX
  Runtime at PSNR >= 60 dB, with the bench JSON of the runner;
* what the cross-built binaries need on a board: with the compatibility sysroot of
  scripts/arm-setup.sh (Debian 11), GLIBC_2.17 / GLIBCXX_3.4.21 symbols only, so they run wherever
  ONNX Runtime's aarch64 wheel runs (glibc >= 2.28). The emulated runs use that sysroot's
  userland (glibc 2.31) as the board's.

The artifacts come from ``bash scripts/arm-build.sh`` (run here; incremental). Without the
cross toolchain / qemu / aarch64 ONNX Runtime (``bash scripts/arm-setup.sh`` installs them) the
module is skipped, except under CI (``CI`` set), where that fails.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from _opslib import load_reference

REPO = Path(__file__).resolve().parent.parent
ENV_SH = REPO / ".cache" / "arm" / "env.sh"
BUILD_DIR = REPO / "build" / "aarch64"
QEMU_TIMEOUT = 600  # seconds for one emulated program (generous: the CI machine is shared)
PARITY_DB = 60.0

ref = load_reference()


def _unavailable(reason: str):
    if os.environ.get("CI"):
        pytest.fail(f"CI: aarch64 emulation is not set up: {reason}", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def _read_env_sh() -> dict[str, str]:
    env = {}
    for line in ENV_SH.read_text().splitlines():
        m = re.match(r'^export (\w+)="(.*)"$', line.strip())
        if m:
            env[m.group(1)] = m.group(2)
    return env


class Arm:
    """The aarch64 artifacts and how to run them."""

    def __init__(self, env: dict[str, str], ops_dir: Path):
        self.qemu = env["SCALES_EDGE_QEMU"]
        self.sysroot = env["SCALES_EDGE_AARCH64_SYSROOT"]
        self.ort_version = env.get("SCALES_EDGE_ORT_AARCH64_VERSION", "?")
        self.compat = env.get("SCALES_EDGE_AARCH64_COMPAT") == "1"
        self.ops_dir = ops_dir
        self.runner = ops_dir / "scales-edge-run"
        self.ops_lib = ops_dir / "libscales_edge_ops.so"
        self.kernel_tests = ops_dir / "scales_edge_kernel_tests"

    def run(self, args, *, kernel: str | None = None, timeout: int = QEMU_TIMEOUT):
        env = {k: v for k, v in os.environ.items() if k != "SCALES_EDGE_KERNEL"}
        env.pop("SCALES_EDGE_OPS_LIB", None)  # an x86 library must not leak into the aarch64 run
        if kernel:
            env["SCALES_EDGE_KERNEL"] = kernel
        cmd = [self.qemu]
        if os.environ.get("SCALES_EDGE_QEMU_CPU"):
            cmd += ["-cpu", os.environ["SCALES_EDGE_QEMU_CPU"]]
        cmd += ["-L", self.sysroot, *map(str, args)]
        t0 = time.perf_counter()
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
        print(f"[qemu {time.perf_counter() - t0:.1f} s] {' '.join(map(str, args))[:160]}")
        return out


@pytest.fixture(scope="module")
def arm() -> Arm:
    if shutil.which("aarch64-linux-gnu-g++") is None:
        _unavailable("no aarch64-linux-gnu-g++: run `bash scripts/arm-setup.sh` (Debian/Ubuntu, root)")
    if not ENV_SH.is_file():
        _unavailable(f"{ENV_SH} missing: run `bash scripts/arm-setup.sh`")
    env = _read_env_sh()
    missing = [k for k in ("SCALES_EDGE_QEMU", "SCALES_EDGE_ORT_AARCH64_LIB")
               if not env.get(k) or not Path(env[k]).is_file()]
    if missing or not Path(env.get("SCALES_EDGE_AARCH64_SYSROOT", "/nonexistent"), "lib").is_dir():
        _unavailable(f"{ENV_SH} names missing files ({', '.join(missing) or 'sysroot'}): "
                     "run `bash scripts/arm-setup.sh`")
    # The toolchain is there: from here on a problem is a real failure, CI or not.
    t0 = time.perf_counter()
    build = subprocess.run(["bash", str(REPO / "scripts" / "arm-build.sh"), str(BUILD_DIR)],
                           capture_output=True, text=True, timeout=3600)
    print(f"[arm-build {time.perf_counter() - t0:.1f} s]")
    assert build.returncode == 0, f"scripts/arm-build.sh failed:\n{build.stderr[-4000:]}"
    ops_dir = Path(build.stdout.strip().splitlines()[-1])
    a = Arm(env, ops_dir)
    for f in (a.runner, a.ops_lib, a.kernel_tests, ops_dir / "libonnxruntime.so.1"):
        assert f.is_file(), f"{f} was not built"
    return a


# --------------------------------------------------------------------------- kernel tests


def test_kernel_tests_under_qemu(arm):
    """tests/cpp/test_kernels.cc on aarch64: portable and NEON against the scalar reference,
    bit for bit, on fixed and randomized shapes."""
    out = arm.run([arm.kernel_tests])
    print(out.stdout[-2000:])
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert "kernel paths supported here: portable, neon" in out.stdout
    assert re.search(r"^\d+ passed, 0 failed$", out.stdout, re.M), out.stdout[-2000:]


def test_float_kernel_tests_under_qemu(arm):
    """tests/cpp/test_float_kernels.cc on aarch64: the portable and NEON float kernels of the
    Transformer ops (window attention, ScalesLinear's LayerNorm / GELU / output transform) against
    the scalar double reference."""
    exe = arm.ops_dir / "scales_edge_float_kernel_tests"
    assert exe.is_file(), f"{exe} was not built"
    out = arm.run([exe])
    print(out.stdout[-1000:])
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert "float kernels: portable neon" in out.stdout
    assert re.search(r"^\d+ passed, 0 failed$", out.stdout, re.M), out.stdout[-2000:]


# --------------------------------------------------------------------------- ops vs numpy

# (channels, kernel, strides, pads [t, l, b, r], dilations, M, scale/bias "exact" or "random")
CONV_CASES = [
    (1, 3, 1, [1, 1, 1, 1], 1, 17, "exact"),
    (5, 1, 1, [2, 3, 1, 2], 1, 9, "exact"),  # padding wider than the kernel: empty taps
    (40, 3, 1, [1, 1, 1, 1], 1, 40, "random"),  # the SRResNet-SCALES body layer
    (63, 3, 1, [1, 1, 1, 1], 1, 8, "exact"),
    (64, 3, 2, [1, 0, 1, 2], 1, 16, "exact"),
    (65, 1, 2, [0, 0, 0, 0], 1, 33, "random"),
    (127, 3, 1, [2, 2, 2, 2], 2, 3, "exact"),
    (130, 3, 2, [2, 1, 0, 2], 2, 64, "exact"),
    (192, 3, 1, [0, 1, 0, 1], 1, 1, "exact"),
    (300, 3, 1, [1, 1, 1, 1], 1, 24, "random"),
]
LINEAR_CASES = [(1, 5), (63, 8), (64, 17), (130, 33), (300, 40)]  # (K, M)
X_SHAPE = (1, 300, 7, 13)  # W = 13: NEON packs 8 + 4 pixels, then 1 scalar


def _ops_model(rng):
    """One model: X [1, 300, 7, 13] -> many BinaryConv2d (on channel slices) and BinaryLinear (on
    feature slices of the NHWC view), every output flattened and concatenated. Returns the model,
    X and the numpy-reference output."""
    beta_all = rng.uniform(-0.4, 0.4, X_SHAPE[1]).astype(np.float32)
    x = rng.standard_normal(X_SHAPE).astype(np.float32)
    b = np.broadcast_to(beta_all.reshape(1, -1, 1, 1), X_SHAPE)
    x = np.where(rng.random(X_SHAPE) < 0.05, b, x).astype(np.float32)  # on the threshold: +1
    x[rng.random(X_SHAPE) < 0.02] = np.nan  # sign -1
    x[rng.random(X_SHAPE) < 0.01] = -0.0
    nodes, inits, pieces, expected = [], [], [], []

    def const(name, value):
        inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    for i, (c, k, s, pads, d, m, mode) in enumerate(CONV_CASES):
        beta = beta_all[:c]
        wsign = np.where(rng.random((m, c, k, k)) < 0.5, 1, -1).astype(np.int8)
        wp = ref.pack_bits(wsign, axis=1)
        if mode == "exact":  # the float output is the integer accumulator itself
            scale, bias = np.ones(m, np.float32), None
        else:
            scale = rng.uniform(-0.2, 0.2, m).astype(np.float32)
            bias = rng.uniform(-1, 1, m).astype(np.float32)
        attrs = dict(kernel_shape=[k, k], strides=[s, s], pads=pads, dilations=[d, d])
        nodes.append(helper.make_node("Slice", ["X", const(f"c{i}_st", np.array([0], np.int64)),
                                                const(f"c{i}_en", np.array([c], np.int64)),
                                                const(f"c{i}_ax", np.array([1], np.int64))], [f"c{i}_x"]))
        ins = [f"c{i}_x", const(f"c{i}_beta", beta), const(f"c{i}_w", wp), const(f"c{i}_scale", scale)]
        if bias is not None:
            ins.append(const(f"c{i}_bias", bias))
        nodes.append(helper.make_node("BinaryConv2d", ins, [f"c{i}_y"], domain="scales_edge", **attrs))
        nodes.append(helper.make_node("Reshape", [f"c{i}_y", const(f"c{i}_flat", np.array([-1], np.int64))],
                                      [f"c{i}_f"]))
        pieces.append(f"c{i}_f")
        want = ref.binary_conv2d(x[:, :c], beta, wp, scale, bias, kernel_shape=[k, k], strides=[s, s],
                                 pads=pads, dilations=[d, d])
        expected.append(np.asarray(want, np.float32).ravel())

    nodes.append(helper.make_node("Transpose", ["X"], ["X_nhwc"], perm=[0, 2, 3, 1]))
    x_nhwc = x.transpose(0, 2, 3, 1)
    for i, (kk, m) in enumerate(LINEAR_CASES):
        beta = beta_all[:kk]
        wp = ref.pack_bits(np.where(rng.random((m, kk)) < 0.5, 1, -1).astype(np.int8), axis=1)
        scale = np.ones(m, np.float32) if i % 2 == 0 else rng.uniform(-0.2, 0.2, m).astype(np.float32)
        bias = rng.uniform(-1, 1, m).astype(np.float32)
        nodes.append(helper.make_node("Slice", ["X_nhwc", const(f"l{i}_st", np.array([0], np.int64)),
                                                const(f"l{i}_en", np.array([kk], np.int64)),
                                                const(f"l{i}_ax", np.array([3], np.int64))], [f"l{i}_x"]))
        nodes.append(helper.make_node("BinaryLinear", [f"l{i}_x", const(f"l{i}_beta", beta), const(f"l{i}_w", wp),
                                                       const(f"l{i}_scale", scale), const(f"l{i}_bias", bias)],
                                      [f"l{i}_y"], domain="scales_edge"))
        nodes.append(helper.make_node("Reshape", [f"l{i}_y", const(f"l{i}_flat", np.array([-1], np.int64))],
                                      [f"l{i}_f"]))
        pieces.append(f"l{i}_f")
        expected.append(np.asarray(ref.binary_linear(x_nhwc[..., :kk], beta, wp, scale, bias), np.float32).ravel())

    nodes.append(helper.make_node("Concat", pieces, ["Y"], axis=0))
    graph = helper.make_graph(nodes, "scales_edge_arm_ops", [helper.make_tensor_value_info("X", TensorProto.FLOAT, list(X_SHAPE))],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("scales_edge", 1)])
    model.ir_version = 8
    return model, x, np.concatenate(expected)


@pytest.fixture(scope="module")
def ops_case(tmp_path_factory):
    import onnx

    folder = tmp_path_factory.mktemp("arm_ops")
    model, x, want = _ops_model(np.random.default_rng(2024))
    onnx.save(model, folder / "ops.onnx")
    np.save(folder / "x.npy", x)
    return folder, want


@pytest.mark.parametrize("kernel,threads", [("neon", 2), ("portable", 1)])
def test_aarch64_ops_match_numpy_reference(arm, ops_case, kernel, threads):
    """The aarch64 op library in the aarch64 ONNX Runtime, per kernel path, equals the numpy
    reference exactly: accumulators (scale 1, no bias) and the float transform."""
    folder, want = ops_case
    out_path = folder / f"y_{kernel}.npy"
    out = arm.run([arm.runner, folder / "ops.onnx", "--input", folder / "x.npy", "--output", out_path,
                   "--runs", 1, "--warmup", 0, "--threads", threads], kernel=kernel)
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout)
    assert report["runner"]["kernel"] == kernel
    got = np.load(out_path)
    assert got.shape == want.shape
    bad = np.flatnonzero(got != want)
    assert bad.size == 0, f"{kernel}: {bad.size} of {want.size} outputs differ from the reference (first at {bad[:5]})"


def _transformer_ops_model(rng):
    """X [1, 8, 12, 36] (q|k|v of C = 12, 2 heads) -> shifted WindowAttention (window 4, shift 2),
    enlarged-key WindowAttention (window 4, keys 6), and ScalesLinear on the first 12 features
    (LayerNorm, spatial re-scaling, GELU, the next 12 as residual), flattened and concatenated.
    Returns the model, X, the numpy-reference output, and which outputs belong to a ScalesLinear
    row with a LayerNorm'd feature within rounding of its threshold (may binarize differently)."""
    from scales_edge.models.transformer_common import overlap_position_index, relative_position_index

    x = rng.standard_normal((1, 8, 12, 36)).astype(np.float32)
    nodes, inits, pieces, expected, loose = [], [], [], [], []

    def const(name, value):
        inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    for i, (shift, kws) in enumerate(((2, 4), (0, 6))):
        table = (rng.standard_normal(((4 + kws - 1) ** 2, 2)) * 0.5).astype(np.float32)
        index = (relative_position_index(4) if kws == 4 else overlap_position_index(4, kws)).numpy().astype(np.int64)
        attrs = dict(num_heads=2, window_size=4, shift_size=shift, key_window_size=kws, scale=6 ** -0.5)
        nodes.append(helper.make_node("WindowAttention", ["X", const(f"a{i}_t", table), const(f"a{i}_i", index)],
                                      [f"a{i}_y"], domain="scales_edge", **attrs))
        nodes.append(helper.make_node("Reshape", [f"a{i}_y", const(f"a{i}_flat", np.array([-1], np.int64))], [f"a{i}_f"]))
        pieces.append(f"a{i}_f")
        want = ref.window_attention(x, table, index, **attrs).ravel()
        expected.append(want)
        loose.append(np.zeros(want.size, bool))
    k = m = 12
    p = dict(beta=rng.uniform(-0.3, 0.3, k).astype(np.float32),
             W=ref.pack_bits(np.where(rng.random((m, k)) < 0.5, 1, -1).astype(np.int8), axis=1),
             scale=rng.uniform(0.05, 0.3, m).astype(np.float32), bias=rng.uniform(-1, 1, m).astype(np.float32),
             sw=rng.normal(0, 0.3, k).astype(np.float32), sb=np.array([0.2], np.float32),
             nw=rng.uniform(0.5, 1.5, k).astype(np.float32), nb=rng.normal(0, 0.2, k).astype(np.float32))
    for part, (a, b) in (("lx", (0, k)), ("lr", (k, 2 * k))):
        nodes.append(helper.make_node("Slice", ["X", const(f"{part}_st", np.array([a], np.int64)),
                                                const(f"{part}_en", np.array([b], np.int64)),
                                                const(f"{part}_ax", np.array([3], np.int64))], [part]))
    names = ["lx"] + [const(f"l_{n}", p[n]) for n in ("beta", "W", "scale", "bias", "sw", "sb")] + ["lr"]
    names += [const("l_nw", p["nw"]), const("l_nb", p["nb"])]
    nodes.append(helper.make_node("ScalesLinear", names, ["l_y"], domain="scales_edge", activation="gelu"))
    nodes.append(helper.make_node("Reshape", ["l_y", const("l_flat", np.array([-1], np.int64))], ["l_f"]))
    pieces.append("l_f")
    want = ref.scales_linear(x[..., :k], p["beta"], p["W"], p["scale"], p["bias"], p["sw"], p["sb"], x[..., k:2 * k],
                             p["nw"], p["nb"], activation="gelu")
    expected.append(want.ravel())
    normed = ref.layer_norm(x[..., :k], p["nw"], p["nb"], 1e-5)
    edge = (np.abs(normed - p["beta"]) < 1e-5).any(axis=-1, keepdims=True)
    loose.append(np.broadcast_to(edge, want.shape).ravel())

    nodes.append(helper.make_node("Concat", pieces, ["Y"], axis=0))
    graph = helper.make_graph(nodes, "scales_edge_arm_transformer_ops",
                              [helper.make_tensor_value_info("X", TensorProto.FLOAT, list(x.shape))],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("scales_edge", 3)])
    model.ir_version = 8
    return model, x, np.concatenate(expected), np.concatenate(loose)


@pytest.mark.parametrize("kernel", ["neon", "portable"])
def test_aarch64_transformer_ops_match_numpy_reference(arm, tmp_path, kernel):
    """The version-3 ops (WindowAttention shifted and with enlarged keys, ScalesLinear with
    LayerNorm, spatial branch, GELU and residual) in the aarch64 ONNX Runtime, per kernel path,
    match the numpy reference within float rounding (their sums' order is open, docs/ops.md)."""
    import onnx

    model, x, want, loose = _transformer_ops_model(np.random.default_rng(17))
    onnx.save(model, tmp_path / "tops.onnx")
    np.save(tmp_path / "x.npy", x)
    out = arm.run([arm.runner, tmp_path / "tops.onnx", "--input", tmp_path / "x.npy", "--output", tmp_path / "y.npy",
                   "--runs", 1, "--warmup", 0, "--threads", 1], kernel=kernel)
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads(out.stdout)["runner"]["kernel"] == kernel
    got = np.load(tmp_path / "y.npy")
    assert got.shape == want.shape and loose.mean() < 0.05
    np.testing.assert_allclose(got[~loose], want[~loose], rtol=3e-5, atol=3e-5)


# --------------------------------------------------------------------------- SRResNet parity


def _write_ppm(path: Path, rgb: np.ndarray) -> None:
    h, w, _ = rgb.shape
    path.write_bytes(f"P6\n{w} {h}\n255\n".encode() + np.ascontiguousarray(rgb, np.uint8).tobytes())


def _lr_image(h: int, w: int) -> np.ndarray:
    """An h x w RGB crop of a packaged photo (textured), else a smooth random image."""
    try:
        import cv2

        from scales_edge.data import sample_photos

        photos = sample_photos()
        name = next(n for n in ("astronaut", "coffee", "chelsea") if n in photos)
        bgr = cv2.imread(str(photos[name]), cv2.IMREAD_COLOR)
        y0, x0 = bgr.shape[0] // 3, bgr.shape[1] // 2
        return np.ascontiguousarray(bgr[y0:y0 + h, x0:x0 + w, ::-1])
    except Exception:
        rng = np.random.default_rng(5)
        return (rng.random((h, w, 3)) * 255).astype(np.uint8)


def test_srresnet_runner_parity_under_qemu(arm, tmp_path):
    """An exported SRResNet-SCALES x4 (40 channels, 2 blocks) run by the aarch64 runner with the
    aarch64 op library (found beside the runner) and the aarch64 ONNX Runtime, under qemu, matches
    x86 ONNX Runtime with the x86 op library at PSNR >= 60 dB; the runner's JSON is the bench schema."""
    import torch

    import scales_edge
    from scales_edge.export import export_onnx
    from scales_edge.nn import ScalesConv2d, binary_layers
    from scales_edge.runtime.bench import JSON_SCHEMA, BenchResult
    from scales_edge.runtime.session import make_session
    from scales_edge.runtime.validate import image_psnr

    torch.manual_seed(0)
    model = scales_edge.build_model("srresnet", scale=4, num_feat=40, num_block=2)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():  # non-trivial thresholds and scales (the initial ones are 0 / 1)
        for _, layer in binary_layers(model):
            if isinstance(layer, ScalesConv2d):
                layer.beta.copy_(torch.randn(layer.beta.shape, generator=g) * 0.2)
                layer.alpha.fill_(float(torch.rand((), generator=g)) + 0.5)
    onnx_path = tmp_path / "srresnet_x4.onnx"
    export_onnx(model.eval(), onnx_path)

    rgb = _lr_image(12, 16)
    _write_ppm(tmp_path / "lr.ppm", rgb)
    x = rgb.astype(np.float32).transpose(2, 0, 1)[None] / 255.0
    y_x86 = make_session(onnx_path, threads=1).run(None, {"input": x})[0]

    out = arm.run([arm.runner, onnx_path, "--input", tmp_path / "lr.ppm", "--output", tmp_path / "sr.npy",
                   "--runs", 1, "--warmup", 0, "--json", tmp_path / "bench.json"])
    assert out.returncode == 0, out.stderr[-3000:]
    y_arm = np.load(tmp_path / "sr.npy")
    assert y_arm.shape == y_x86.shape == (1, 3, 48, 64)
    psnr = image_psnr(y_arm, y_x86)
    print(f"aarch64 (qemu, neon, ORT {arm.ort_version}) vs x86 ORT: PSNR {psnr:.1f} dB, "
          f"max |diff| {float(np.abs(y_arm - y_x86).max()):.3g}")
    assert psnr >= PARITY_DB, f"PSNR {psnr:.2f} dB < {PARITY_DB}"

    report = json.loads(out.stdout)
    assert report == json.loads((tmp_path / "bench.json").read_text())
    assert report["schema"] == JSON_SCHEMA
    assert report["machine"]["machine"] == "aarch64"
    assert "asimd" in report["machine"]["cpu_flags"]
    # Each op measured the paths of this CPU (under qemu: emulated timings; either may win).
    assert report["runner"]["kernel"] == "auto"
    kernels = report["results"][0]["kernels"]
    assert kernels and {k["path"] for k in kernels} <= {"neon", "portable"}
    # (emulated timings are slow: a session's measuring budget may run out before its last shapes,
    # which then take the path that won most often: "budget")
    assert {k["how"] for k in kernels} <= {"measured", "cached", "budget"} and "measured" in {k["how"] for k in kernels}
    assert Path(report["runner"]["ops_library"]).resolve() == arm.ops_lib.resolve()
    (res,) = report["results"]
    assert set(res) == set(BenchResult.__dataclass_fields__)
    assert res["input_shape"] == [1, 3, 12, 16] and res["output_shape"] == [1, 3, 48, 64]


def test_aarch64_runner_tiles_png_like_upscale(arm, tmp_path):
    """An RGBA PNG through the aarch64 runner under qemu, tiled from the model's plan (2 statistics
    tiles, 20 output tiles, the tail on sub-tiles): the alpha channel (our own arithmetic) equals
    `scales-edge upscale`'s on x86 exactly; the colour, from another CPU's float kernels, to >= 60 dB."""
    import cv2
    import torch
    from typer.testing import CliRunner

    import scales_edge
    from scales_edge.cli import app
    from scales_edge.export import export_onnx

    torch.manual_seed(0)
    export_onnx(scales_edge.build_model("srresnet", scale=4, num_feat=40, num_block=2).eval(), tmp_path / "m.onnx")
    rgb = _lr_image(40, 52)
    yy, xx = np.mgrid[0:40, 0:52]
    alpha = np.clip(255 - 5 * np.hypot(yy - 20, xx - 20), 0, 255).astype(np.uint8)
    src = tmp_path / "in.png"
    assert cv2.imwrite(str(src), np.dstack([rgb[..., ::-1], alpha]))
    res = CliRunner().invoke(app, ["upscale", str(src), str(tmp_path / "x86.png"), "--model", str(tmp_path / "m.onnx"),
                                   "--tile", "12", "--threads", "1"])
    assert res.exit_code == 0, res.output
    out = arm.run([arm.runner, tmp_path / "m.onnx", "--input", src, "--output", tmp_path / "arm.png", "--tile", 12])
    assert out.returncode == 0, out.stderr[-3000:]
    tiling = json.loads(out.stdout)["runner"]["tiling"]
    assert tiling["tiles"] == 20 and tiling["statistics_passes"] >= 2 and tiling["tail_tiles"] == 80
    got = cv2.imread(str(tmp_path / "arm.png"), cv2.IMREAD_UNCHANGED)
    want = cv2.imread(str(tmp_path / "x86.png"), cv2.IMREAD_UNCHANGED)
    assert got.shape == want.shape == (160, 208, 4) and got.dtype == np.uint8
    np.testing.assert_array_equal(got[..., 3], want[..., 3])
    mse = float(np.mean((got[..., :3].astype(np.float64) - want[..., :3]) ** 2))
    psnr = 10 * np.log10(255.0**2 / mse) if mse else float("inf")
    print(f"aarch64 runner vs x86 scales-edge upscale (tiled RGBA PNG): colour {psnr:.1f} dB")
    assert psnr >= PARITY_DB


# --------------------------------------------------------------------------- what a board needs


def _glibc_needs(path: Path) -> dict[str, tuple[int, ...]]:
    """Highest GLIBC_ / GLIBCXX_ symbol version the ELF file needs."""
    tool = shutil.which("aarch64-linux-gnu-objdump") or "objdump"
    text = subprocess.run([tool, "-T", str(path)], capture_output=True, text=True, check=True).stdout
    need: dict[str, tuple[int, ...]] = {}
    for lib, ver in re.findall(r"\((GLIBC|GLIBCXX)_([0-9.]+)\)", text):
        v = tuple(int(p) for p in ver.split("."))
        need[lib] = max(need.get(lib, v), v)
    return need


def test_aarch64_binaries_need_no_newer_glibc_than_onnxruntime(arm):
    """The op library (always) and, built against the compatibility sysroot, the runner need no
    newer glibc than ONNX Runtime's aarch64 wheel (manylinux_2_28: GLIBC_2.28, GLIBCXX_3.4.22)."""
    fmt = lambda d: ", ".join(f"{k} {'.'.join(map(str, v))}" for k, v in sorted(d.items()))  # noqa: E731
    ort_lib = arm.ops_dir / "libonnxruntime.so.1"
    needs = {p.name: _glibc_needs(p) for p in (arm.ops_lib, arm.runner, ort_lib)}
    print("; ".join(f"{name} needs {fmt(n)}" for name, n in needs.items()))
    ort = needs[ort_lib.name]
    limit = {"GLIBC": max(ort.get("GLIBC", (0,)), (2, 28)), "GLIBCXX": max(ort.get("GLIBCXX", (0,)), (3, 4, 22))}
    # Without the compatibility sysroot (ARM_SYSROOT_SUITE=none) only the op library's glibc is bounded.
    checked = {arm.ops_lib.name: ("GLIBC", "GLIBCXX"), arm.runner.name: ("GLIBC", "GLIBCXX")} if arm.compat \
        else {arm.ops_lib.name: ("GLIBC",)}
    for name, libs in checked.items():
        for lib in libs:
            assert needs[name].get(lib, (0,)) <= limit[lib], \
                f"{name} needs {fmt(needs[name])}, more than ONNX Runtime ({fmt(ort)})"
