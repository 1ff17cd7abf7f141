"""One 3x3 C->C convolution on 1xCx180x320 (C = 64, 40 and 128: 2.12, 0.83 and 8.49 G MACs): our
binary op on every kernel path against ORT's FP32 and INT8, OpenVINO's binary conv and a copy floor.

Models, all timed in one process with alternating runs (scales_edge.runtime.bench.benchmark):
  scales_conv        a full SCALES conv as our export writes it: one fused scales_edge.ScalesConv2d
                     (binary conv + spatial and channel re-scaling + skip; op-domain version 2),
                     kernel path measured per op (the default)
  scales_conv[P]     the same with kernel path P forced (SCALES_EDGE_KERNEL), for every path here
  binary_op          scales_edge.BinaryConv2d alone, float in/out (binarize+pack inside the op)
  scales_conv_v1     the same layer exported with fuse=False: BinaryConv2d + the branches and the
                     skip as standard ONNX ops (op-domain version 1)
  fp32_conv          ORT FP32 Conv
  int8_qlinear       ORT QLinearConv, uint8 in/out (NCHW), int8 weights
  int8_float_io      QuantizeLinear -> QLinearConv -> DequantizeLinear, float in/out
  copy_floor         ORT Neg on the layer's input: reads and writes the layer's bytes once (what any
                     float-in/float-out layer must move: its memcpy)
and, at 1 thread, through the library's C test ABI:
  kernel_packed_P    our binary convolution alone on bit-packed input, int32 accumulators out, on
                     path P ("auto": the measured choice)
and, when the optional `openvino` package is installed (pip install .[bench]):
  openvino_kernel_only / openvino_float_io   OpenVINO's BinaryConvolution (benchmarks/openvino_layer.py)
Prints a table per channel count and thread count and writes benchmarks/results/layer.json.
Ratios are medians of the same run.

    python benchmarks/bench_layer.py [--runs 20] [--threads 1 2] [--channels 64 40 128]
"""

from __future__ import annotations

import argparse
import ctypes
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))  # _opslib: the ctypes wrapper of the library's C ABI

from scales_edge.export import export_onnx, pack_conv_weight  # noqa: E402
from scales_edge.fileio import atomic_write_text  # noqa: E402
from scales_edge.nn import ScalesConv2d  # noqa: E402
from scales_edge.runtime import get_library_path  # noqa: E402
from scales_edge.runtime.bench import benchmark, machine_info  # noqa: E402


C, H, W = 64, 180, 320
CHANNELS = (64, 40, 128)


def _save(nodes, inputs, outputs, inits, path, opsets=(("", 17),)):
    graph = helper.make_graph(nodes, "layer", inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets])
    onnx.save(model, path)
    return path


def binary_op_model(path: Path, rng, c: int = C) -> Path:
    wsign = np.where(rng.random((c, c, 3, 3)) < 0.5, -1.0, 1.0)
    inits = [
        numpy_helper.from_array(rng.normal(0, 0.1, c).astype(np.float32), "beta"),
        numpy_helper.from_array(pack_conv_weight(wsign), "W"),
        numpy_helper.from_array(rng.random(c).astype(np.float32), "scale"),
        numpy_helper.from_array(rng.normal(0, 0.1, c).astype(np.float32), "bias"),
    ]
    node = helper.make_node(
        "BinaryConv2d", ["input", "beta", "W", "scale", "bias"], ["output"], domain="scales_edge",
        kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 1], dilations=[1, 1], group=1,
    )
    io = [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, c, None, None])]
    out = [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, c, None, None])]
    return _save([node], io, out, inits, path, (("", 17), ("scales_edge", 1)))


def fp32_conv_model(path: Path, rng, c: int = C) -> Path:
    inits = [
        numpy_helper.from_array(rng.normal(0, 0.05, (c, c, 3, 3)).astype(np.float32), "w"),
        numpy_helper.from_array(rng.normal(0, 0.1, c).astype(np.float32), "b"),
    ]
    node = helper.make_node("Conv", ["input", "w", "b"], ["output"], pads=[1, 1, 1, 1])
    io = [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, c, None, None])]
    out = [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, c, None, None])]
    return _save([node], io, out, inits, path)


def copy_floor_model(path: Path, c: int = C) -> Path:
    """Neg on [1, c, H, W]: one read and one write of the layer's floats (its memcpy in ORT)."""
    node = helper.make_node("Neg", ["input"], ["output"])
    io = [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, c, None, None])]
    out = [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, c, None, None])]
    return _save([node], io, out, [], path)


def int8_model(path: Path, rng, float_io: bool, c: int = C) -> Path:
    inits = [
        numpy_helper.from_array(np.array(1 / 255, np.float32), "xs"),
        numpy_helper.from_array(np.array(128, np.uint8), "xz"),
        numpy_helper.from_array(rng.integers(-127, 128, (c, c, 3, 3), dtype=np.int8), "w"),
        numpy_helper.from_array(np.array(0.01, np.float32), "ws"),
        numpy_helper.from_array(np.array(0, np.int8), "wz"),
        numpy_helper.from_array(np.array(0.05, np.float32), "ys"),
        numpy_helper.from_array(np.array(128, np.uint8), "yz"),
        numpy_helper.from_array(rng.integers(-1000, 1000, c, dtype=np.int32), "b"),
    ]
    nodes = []
    x, y = "input", "output"
    if float_io:
        nodes.append(helper.make_node("QuantizeLinear", ["input", "xs", "xz"], ["xq"]))
        x, y = "xq", "yq"
    nodes.append(helper.make_node("QLinearConv", [x, "xs", "xz", "w", "ws", "wz", "ys", "yz", "b"], [y], pads=[1, 1, 1, 1]))
    if float_io:
        nodes.append(helper.make_node("DequantizeLinear", ["yq", "ys", "yz"], ["output"]))
    t = TensorProto.FLOAT if float_io else TensorProto.UINT8
    io = [helper.make_tensor_value_info("input", t, [1, c, None, None])]
    out = [helper.make_tensor_value_info("output", t, [1, c, None, None])]
    return _save(nodes, io, out, inits, path)


def scales_conv_models(d: Path, c: int = C) -> tuple[Path, Path, Path]:
    torch.manual_seed(0)
    layer = ScalesConv2d(c, c).eval()
    with torch.no_grad():
        layer.beta.normal_(0, 0.1)
    fused, unfused, ref = d / f"scales_conv_{c}.onnx", d / f"scales_conv_v1_{c}.onnx", d / f"scales_fp32_ref_{c}.onnx"
    export_onnx(layer, fused, sample_size=(16, 16))
    export_onnx(layer, unfused, sample_size=(16, 16), fuse=False)
    export_onnx(layer, ref, sample_size=(16, 16), binary_as="fp32-reference")
    return fused, unfused, ref


def kernel_packed(path: str, c: int, runs: int) -> dict:
    """Our binary convolution alone on bit-packed input through the library's C test ABI
    (``scales_edge_bconv_int32``: int32 accumulators out, one thread), on kernel path ``path``
    (``"auto"``: the choice measured per geometry)."""
    from _opslib import KernelLib, _enc, _ptr

    lib = KernelLib(Path(get_library_path()))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, c, H, W)).astype(np.float32)
    xp = lib.pack_nchw(x, np.zeros(c, np.float32), path=None if path == "auto" else path)
    cw = (c + 63) // 64
    wp = np.ascontiguousarray(rng.integers(0, 2**63, (c, 3, 3, cw), dtype=np.uint64))
    if c % 64:
        wp[..., -1] &= np.uint64((1 << (c % 64)) - 1)
    acc = np.zeros((1, c, H, W), np.int32)
    st, pd, dl = (np.asarray(v, np.int64) for v in ((1, 1), (1, 1, 1, 1), (1, 1)))
    err = ctypes.create_string_buffer(512)
    times = []
    for i in range(runs + 2):
        t0 = time.perf_counter()
        rc = lib.lib.scales_edge_bconv_int32(_enc(path), _ptr(xp), 1, c, H, W, _ptr(wp), c, 3, 3,
                                             _ptr(st), _ptr(pd), _ptr(dl), _ptr(acc), err, 512)
        if i >= 2:
            times.append((time.perf_counter() - t0) * 1e3)
        if rc != 0:
            raise RuntimeError(err.value.decode())
    return {"median_ms": statistics.median(times), "min_ms": min(times), "runs": runs}


def kernel_paths() -> list[str]:
    """The kernel paths this CPU supports (slowest first)."""
    from _opslib import KernelLib

    return KernelLib(Path(get_library_path())).paths()


def layer_group(d: Path, c: int, threads: int, runs: int, openvino: bool = True) -> dict:
    """Every row of the module docstring for one channel count and thread count: name -> stats."""
    rng = np.random.default_rng(0)
    fused, v1, _ = scales_conv_models(d, c)
    paths = kernel_paths()
    models = {"scales_conv": (fused, None)}
    models.update({f"scales_conv[{p}]": (fused, p) for p in paths})
    models.update({
        "binary_op": (binary_op_model(d / f"binary_op_{c}.onnx", rng, c), None),
        "scales_conv_v1": (v1, None),
        "fp32_conv": (fp32_conv_model(d / f"fp32_conv_{c}.onnx", rng, c), None),
        "int8_qlinear": (int8_model(d / f"int8_qlinear_{c}.onnx", rng, False, c), None),
        "int8_float_io": (int8_model(d / f"int8_float_io_{c}.onnx", rng, True, c), None),
        "copy_floor": (copy_floor_model(d / f"copy_floor_{c}.onnx", c), None),
    })
    res = benchmark([m for m, _ in models.values()], size=(H, W), threads=threads, runs=runs, warmup=3,
                    kernel_paths=[p for _, p in models.values()])
    rows = {name: r.to_dict() for name, r in zip(models, res)}
    if threads == 1:
        for p in ["auto", *paths]:
            rows[f"kernel_packed_{p}"] = kernel_packed(p, c, runs)
    if openvino:
        try:
            import openvino_layer

            if openvino_layer.available():
                ov = openvino_layer.time_layer(threads=threads, runs=runs, warmup=3, c=c)
                rows["openvino_kernel_only"] = {"median_ms": ov["kernel_only_ms"],
                                                **{k: v for k, v in ov.items() if k != "kernel_only_ms"}}
                rows["openvino_float_io"] = {"median_ms": ov["float_io_ms"]}
        except ImportError:
            pass
    return rows


def print_group(c: int, threads: int, runs: int, rows: dict) -> None:
    base = rows["fp32_conv"]["median_ms"]
    print(f"\n3x3 {c}->{c} on 1x{c}x{H}x{W}, {threads} thread(s), median of {runs} alternating runs")
    print(f"{'model':26s} {'median ms':>10s} {'min ms':>8s} {'vs FP32 Conv':>13s}  kernel paths")
    for name, r in rows.items():
        paths = ", ".join(sorted({k["path"] for k in r.get("kernels") or []}))
        mn = r.get("min_ms")
        print(f"{name:26s} {r['median_ms']:10.2f} {'' if mn is None else f'{mn:8.2f}':>8s} "
              f"{base / r['median_ms']:12.2f}x  {paths}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--channels", type=int, nargs="+", default=list(CHANNELS))
    ap.add_argument("--out", type=Path, default=HERE / "results" / "layer.json")
    args = ap.parse_args()
    results = {"machine": machine_info(), "size": [H, W], "kernel_paths": kernel_paths(), "layers": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for c in args.channels:
            results["layers"][str(c)] = {"shape": [1, c, H, W], "macs": c * c * 9 * H * W, "runs": {}}
            for threads in args.threads:
                rows = layer_group(Path(tmp), c, threads, args.runs)
                print_group(c, threads, args.runs, rows)
                results["layers"][str(c)]["runs"][str(threads)] = rows
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out, json.dumps(results, indent=2))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
