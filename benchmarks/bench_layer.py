"""One 3x3 64->64 convolution on 1x64x180x320 (2.12 G MACs): our binary op against ORT's FP32 and INT8.

Models, all timed in one process with alternating runs (scales_edge.runtime.bench.benchmark):
  binary_op         scales_edge.BinaryConv2d alone, float in/out (binarize+pack inside the op)
  scales_conv       a full SCALES conv as our export writes it: one fused scales_edge.ScalesConv2d
                    (binary conv + spatial and channel re-scaling + skip; op-domain version 2)
  scales_conv_v1    the same layer exported with fuse=False: BinaryConv2d + the branches and the
                    skip as standard ONNX ops (op-domain version 1)
  scales_fp32_ref   the same ScalesConv2d with the binary conv as an FP32 Conv on +-1 values
  fp32_conv         ORT FP32 Conv
  int8_qlinear      ORT QLinearConv, uint8 in/out (NCHW), int8 weights
  int8_float_io     QuantizeLinear -> QLinearConv -> DequantizeLinear, float in/out
Prints a table and writes benchmarks/results/layer.json. Ratios are medians of the same run.

    python benchmarks/bench_layer.py [--runs 20] [--threads 1 2]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

from scales_edge.export import export_onnx, pack_conv_weight
from scales_edge.fileio import atomic_write_text
from scales_edge.nn import ScalesConv2d
from scales_edge.runtime.bench import benchmark, machine_info

C, H, W = 64, 180, 320


def _save(nodes, inputs, outputs, inits, path, opsets=(("", 17),)):
    graph = helper.make_graph(nodes, "layer", inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets])
    onnx.save(model, path)
    return path


def binary_op_model(path: Path, rng) -> Path:
    wsign = np.where(rng.random((C, C, 3, 3)) < 0.5, -1.0, 1.0)
    inits = [
        numpy_helper.from_array(rng.normal(0, 0.1, C).astype(np.float32), "beta"),
        numpy_helper.from_array(pack_conv_weight(wsign), "W"),
        numpy_helper.from_array(rng.random(C).astype(np.float32), "scale"),
        numpy_helper.from_array(rng.normal(0, 0.1, C).astype(np.float32), "bias"),
    ]
    node = helper.make_node(
        "BinaryConv2d", ["input", "beta", "W", "scale", "bias"], ["output"], domain="scales_edge",
        kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 1], dilations=[1, 1], group=1,
    )
    io = [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, C, None, None])]
    out = [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, C, None, None])]
    return _save([node], io, out, inits, path, (("", 17), ("scales_edge", 1)))


def fp32_conv_model(path: Path, rng) -> Path:
    inits = [
        numpy_helper.from_array(rng.normal(0, 0.05, (C, C, 3, 3)).astype(np.float32), "w"),
        numpy_helper.from_array(rng.normal(0, 0.1, C).astype(np.float32), "b"),
    ]
    node = helper.make_node("Conv", ["input", "w", "b"], ["output"], pads=[1, 1, 1, 1])
    io = [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, C, None, None])]
    out = [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, C, None, None])]
    return _save([node], io, out, inits, path)


def int8_model(path: Path, rng, float_io: bool) -> Path:
    inits = [
        numpy_helper.from_array(np.array(1 / 255, np.float32), "xs"),
        numpy_helper.from_array(np.array(128, np.uint8), "xz"),
        numpy_helper.from_array(rng.integers(-127, 128, (C, C, 3, 3), dtype=np.int8), "w"),
        numpy_helper.from_array(np.array(0.01, np.float32), "ws"),
        numpy_helper.from_array(np.array(0, np.int8), "wz"),
        numpy_helper.from_array(np.array(0.05, np.float32), "ys"),
        numpy_helper.from_array(np.array(128, np.uint8), "yz"),
        numpy_helper.from_array(rng.integers(-1000, 1000, C, dtype=np.int32), "b"),
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
    io = [helper.make_tensor_value_info("input", t, [1, C, None, None])]
    out = [helper.make_tensor_value_info("output", t, [1, C, None, None])]
    return _save(nodes, io, out, inits, path)


def scales_conv_models(d: Path) -> tuple[Path, Path, Path]:
    torch.manual_seed(0)
    layer = ScalesConv2d(C, C).eval()
    with torch.no_grad():
        layer.beta.normal_(0, 0.1)
    fused, unfused, ref = d / "scales_conv.onnx", d / "scales_conv_v1.onnx", d / "scales_fp32_ref.onnx"
    export_onnx(layer, fused, sample_size=(16, 16))
    export_onnx(layer, unfused, sample_size=(16, 16), fuse=False)
    export_onnx(layer, ref, sample_size=(16, 16), binary_as="fp32-reference")
    return fused, unfused, ref


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "layer.json")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    results = {"machine": machine_info(), "shape": [1, C, H, W], "macs": C * C * 9 * H * W, "runs": {}}
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        scales_conv, scales_v1, scales_ref = scales_conv_models(d)
        models = {
            "binary_op": binary_op_model(d / "binary_op.onnx", rng),
            "scales_conv": scales_conv,
            "scales_conv_v1": scales_v1,
            "scales_fp32_ref": scales_ref,
            "fp32_conv": fp32_conv_model(d / "fp32_conv.onnx", rng),
            "int8_qlinear": int8_model(d / "int8_qlinear.onnx", rng, float_io=False),
            "int8_float_io": int8_model(d / "int8_float_io.onnx", rng, float_io=True),
        }
        for threads in args.threads:
            res = benchmark(list(models.values()), size=(H, W), threads=threads, runs=args.runs, warmup=3)
            rows = {name: r.to_dict() for name, r in zip(models, res)}
            base = rows["fp32_conv"]["median_ms"]
            print(f"\n{threads} thread(s), median of {args.runs} alternating runs")
            print(f"{'model':18s} {'median ms':>10s} {'min ms':>8s} {'vs FP32 Conv':>13s}")
            for name, r in rows.items():
                r["speedup_vs_fp32_conv"] = base / r["median_ms"]
                print(f"{name:18s} {r['median_ms']:10.2f} {r['min_ms']:8.2f} {r['speedup_vs_fp32_conv']:12.2f}x")
            results["runs"][str(threads)] = rows
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out, json.dumps(results, indent=2))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
